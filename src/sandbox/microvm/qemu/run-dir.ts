// The run dir of one QEMU microVM (its console and control sockets) in $TMPDIR:
// named after the gateway's pid so that dirs left by a gateway that was killed
// outright (QEMU died with it, the dir stayed) can be found and removed, and
// opened up to a `run_as` user just enough to connect. Not responsible for the
// sockets' servers (backend.ts).

import { chmodSync, chownSync, lstatSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunAs } from "../../run-as.js";

const PREFIX = "nucleus-qemu-";
/** Our run dirs: the prefix, the owning gateway's pid, mkdtemp's six characters. */
const RUN_DIR = /^nucleus-qemu-([1-9][0-9]{0,9})-[A-Za-z0-9]{6}$/;

/** A fresh run dir (0700, this process's uid) under `root`, named after this process. */
export function createRunDir(root: string = tmpdir()): string {
  return mkdtempSync(join(root, `${PREFIX}${process.pid}-`));
}

/**
 * Lets `runAs` connect to `sockets` in `runDir`, and nothing more: each socket is handed to that user (0600:
 * connecting needs write permission on it), and the dir becomes enterable by the user's group (0710) but stays
 * the gateway's, so the user can neither list it nor create, rename or remove anything in it — which also
 * keeps the gateway's removal of the dir free of races with a compromised QEMU.
 */
export function openRunDirTo(runDir: string, sockets: readonly string[], runAs: RunAs): void {
  for (const s of sockets) {
    chownSync(s, runAs.uid, runAs.gid);
    chmodSync(s, 0o600);
  }
  // SECURITY: search (x) for the run_as group only; no read (listing), no write. The sockets inside are
  // 0600 to the run_as user, so another member of that group that enters still cannot connect.
  chownSync(runDir, process.getuid?.() ?? 0, runAs.gid);
  chmodSync(runDir, 0o710);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes run dirs under `root` left by gateways that are gone: only directories (never a symlink, never
 * followed) named like ours, owned by this uid, whose pid in the name is not a live process. Returns the
 * paths removed. A pid reused since by another process keeps its dir (the safe side).
 */
export function sweepStaleRunDirs(root: string = tmpdir(), isAlive: (pid: number) => boolean = alive): string[] {
  const uid = process.getuid?.();
  if (uid === undefined) return [];
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = RUN_DIR.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isAlive(pid)) continue;
    const path = join(root, name);
    try {
      // SECURITY: lstat: a symlink (someone else's, pointing anywhere) is not a directory here and stays.
      const st = lstatSync(path);
      if (!st.isDirectory() || st.uid !== uid) continue;
      // rm does not follow symlinks inside the tree either; the dir's contents are ours (see openRunDirTo).
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      /* gone meanwhile, or not removable: leave it */
    }
  }
  return removed;
}
