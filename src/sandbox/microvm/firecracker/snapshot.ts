// Warm starts: the API requests that pause a booted guest and snapshot it, load
// that snapshot into a fresh Firecracker, and swap in the new server's drive
// images; and the cache of snapshots, one per image + machine size + drive
// count. Not responsible for when a snapshot is taken or used (warm.ts).
//
// A snapshot is taken once the guest agent said hello and BEFORE any start
// request: it holds the kernel and the idle agent, never a secret, a server's
// argv or its files. Drives cannot be hot-plugged in Firecracker, so the
// snapshot records N placeholder drives at the chroot paths /d0.ext4 … and a
// restored VM gets the new server's images at those same paths (the jailer's
// chroot makes the paths stable), announced to the guest with PATCH /drives.

import { createHash } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { FirecrackerRequest } from "./config.js";

/** Bumped when what a snapshot holds changes (layout, boot protocol). */
export const SNAPSHOT_FORMAT = 1;

export function pauseVm(): FirecrackerRequest {
  return { method: "PATCH", path: "/vm", body: { state: "Paused" } };
}

export function createSnapshot(snapshotPath: string, memPath: string): FirecrackerRequest {
  return { method: "PUT", path: "/snapshot/create", body: { snapshot_type: "Full", snapshot_path: snapshotPath, mem_file_path: memPath } };
}

/**
 * Load and resume at once: the restored agent only waits for a host connection, and touches no
 * drive before the start request, so the drives are swapped (updateDrive) after the resume.
 */
export function loadSnapshot(snapshotPath: string, memPath: string): FirecrackerRequest {
  return {
    method: "PUT",
    path: "/snapshot/load",
    body: {
      snapshot_path: snapshotPath,
      mem_backend: { backend_type: "File", backend_path: memPath },
      resume_vm: true,
      // The guest's wall clock would otherwise stand where it was when the snapshot was taken.
      clock_realtime: true,
    },
  };
}

/** Point drive `id` at `path` again: Firecracker re-reads its size and tells the guest. */
export function updateDrive(id: string, path: string): FirecrackerRequest {
  return { method: "PATCH", path: `/drives/${id}`, body: { drive_id: id, path_on_host: path } };
}

export interface SnapshotKeyInput {
  /** The guest image's id (a hash of all its inputs). */
  readonly imageId: string;
  /** The firecracker binary: snapshots are only loadable by the version that wrote them. */
  readonly firecracker: { readonly path: string; readonly size: number; readonly mtimeMs: number };
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly drives: number;
}

/** `<image id>-<hash>`: the image id first, so snapshots of removed images can be pruned. */
export function snapshotKey(k: SnapshotKeyInput): string {
  if (!/^[A-Za-z0-9]{1,64}$/.test(k.imageId)) throw new Error(`invalid image id "${k.imageId}"`);
  const h = createHash("sha256");
  h.update(JSON.stringify({ f: SNAPSHOT_FORMAT, ...k }));
  return `${k.imageId}-${h.digest("hex").slice(0, 24)}`;
}

export interface StoredSnapshot {
  readonly dir: string;
  readonly vmstate: string;
  readonly mem: string;
}

/** Snapshots under `root`/<key>/{vmstate,mem}; complete ones only (installed by rename). */
export class SnapshotStore {
  constructor(readonly root: string) {}

  get(key: string): StoredSnapshot | null {
    const dir = join(this.root, key);
    const s = { dir, vmstate: join(dir, "vmstate"), mem: join(dir, "mem") };
    return existsSync(s.vmstate) && existsSync(s.mem) ? s : null;
  }

  /** A fresh directory on the store's filesystem to write a snapshot into (then `install`). */
  staging(key: string): string {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const dir = join(this.root, `.${key}.${process.pid}.${Date.now()}`);
    mkdirSync(dir, { mode: 0o700 });
    return dir;
  }

  /** Moves `vmstate` and `mem` into place as one rename; a concurrent writer's copy is kept instead. */
  install(key: string, staging: string, vmstate: string, mem: string): StoredSnapshot {
    for (const f of [vmstate, mem]) if (!statSync(f).isFile()) throw new Error(`${f} is not a snapshot file`);
    renameSync(vmstate, join(staging, "vmstate"));
    renameSync(mem, join(staging, "mem"));
    for (const f of ["vmstate", "mem"]) {
      // SECURITY: Firecracker wrote these as the jail user. Every later VM gets a hard link to
      // them: owned by root and read-only, so no jailed Firecracker can alter what others restore.
      if (process.getuid?.() === 0) chownSync(join(staging, f), 0, 0);
      chmodSync(join(staging, f), 0o444);
    }
    try {
      renameSync(staging, join(this.root, key));
    } catch {
      rmSync(staging, { recursive: true, force: true });
    }
    const got = this.get(key);
    if (!got) throw new Error(`the snapshot ${key} could not be installed in ${this.root}`);
    return got;
  }

  remove(key: string): void {
    rmSync(join(this.root, key), { recursive: true, force: true });
  }

  /**
   * Removes snapshots of images that no longer exist (each holds a whole guest's memory) and
   * staging directories left by a process that died more than an hour ago. Returns what it removed.
   */
  prune(liveImageIds: ReadonlySet<string>, now = Date.now()): string[] {
    if (!existsSync(this.root)) return [];
    const removed: string[] = [];
    for (const name of readdirSync(this.root)) {
      const m = /^([A-Za-z0-9]+)-[0-9a-f]{24}$/.exec(name);
      const stale = m ? !liveImageIds.has(m[1]!) : name.startsWith(".") && now - statSync(join(this.root, name)).mtimeMs > 3600_000;
      if (!stale) continue;
      rmSync(join(this.root, name), { recursive: true, force: true });
      removed.push(name);
    }
    return removed;
  }
}
