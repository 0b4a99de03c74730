// Where a Firecracker VM's files and sockets live, as the host sees them and as
// Firecracker sees them: directly in a run dir (only when the jailer is
// explicitly waived), or staged into the jailer's chroot (hard links where
// possible, else copies). Cleanup removes the chroot and the VM's cgroups.
// Not responsible for the requests (config.ts) or the jailer argv (jailer.ts).

import { chmodSync, chownSync, copyFileSync, linkSync, mkdirSync, rmdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { buildJailerArgv, type JailerOptions } from "./jailer.js";

export interface FcLayout {
  readonly argv: string[];
  /** Host paths of the API socket and the vsock device socket. */
  readonly apiSocket: string;
  readonly vsockHost: string;
  /** The vsock socket's path in API requests. */
  readonly vsockInVm: string;
  /** Host directory for this VM's own files (drive images); Firecracker sees it as `inVm(name)`. */
  readonly dir: string;
  /** Host directory Firecracker may write (snapshot output); `runInVm(name)` is its view. */
  readonly runDir: string;
  /** Makes `source` readable to Firecracker as `name` and returns the path for API requests. */
  stage(source: string, name: string): string;
  inVm(name: string): string;
  runInVm(name: string): string;
  /** Removes everything this VM left on the host. Call once Firecracker is gone. */
  cleanup(): void;
}

/** No jailer: Firecracker runs as the gateway's user with plain host paths (insecure, explicit opt-in). */
export function directLayout(firecracker: string, runDir: string): FcLayout {
  const apiSocket = join(runDir, "api.sock");
  const vsock = join(runDir, "vsock.sock");
  return {
    argv: [firecracker, "--api-sock", apiSocket],
    apiSocket,
    vsockHost: vsock,
    vsockInVm: vsock,
    dir: runDir,
    runDir,
    stage: (source) => source,
    inVm: (name) => join(runDir, name),
    runInVm: (name) => join(runDir, name),
    cleanup: () => rmSync(runDir, { recursive: true, force: true }),
  };
}

export type JailConfig = Pick<JailerOptions, "jailer" | "uid" | "gid" | "chrootBase" | "cgroupVersion">;

/** Hard link `source` to `dest`, or copy it when they are on different filesystems. */
export function linkOrCopy(source: string, dest: string): "linked" | "copied" {
  try {
    linkSync(source, dest);
    return "linked";
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EXDEV" && (err as NodeJS.ErrnoException).code !== "EPERM") throw err;
    copyFileSync(source, dest);
    return "copied";
  }
}

/** A fresh chroot for VM `id`: Firecracker sees staged files at /<name>, its sockets under /run. */
export function jailedLayout(jail: JailConfig, firecracker: string, id: string, limits: { memoryMiB: number; cpus: number }): FcLayout {
  const plan = buildJailerArgv({ ...jail, firecracker, id, ...limits });
  const jailDir = dirname(plan.chrootRoot);
  // SECURITY: a leftover chroot with this id would mix another VM's files in: refuse (mkdir fails).
  mkdirSync(dirname(jailDir), { recursive: true, mode: 0o700 });
  mkdirSync(jailDir, { mode: 0o700 });
  mkdirSync(plan.chrootRoot, { mode: 0o755 });
  const run = join(plan.chrootRoot, "run");
  mkdirSync(run, { mode: 0o700 });
  // SECURITY: the one directory the jailed Firecracker may write: its sockets and snapshot output.
  chownSync(run, jail.uid, jail.gid);
  return {
    argv: plan.argv,
    apiSocket: plan.apiSocket,
    vsockHost: join(run, "vsock.sock"),
    vsockInVm: "/run/vsock.sock",
    dir: plan.chrootRoot,
    runDir: run,
    stage: (source, name) => {
      const dest = join(plan.chrootRoot, name);
      linkOrCopy(source, dest);
      // SECURITY: no chown: a hard link shares the inode with the cached file (owned by root), and
      // the jailed process must be able to read it, never to write it.
      chmodSync(dest, 0o444);
      return `/${name}`;
    },
    inVm: (name) => `/${name}`,
    runInVm: (name) => `/run/${name}`,
    cleanup: () => {
      rmSync(jailDir, { recursive: true, force: true });
      for (const cg of plan.cgroupDirs) {
        try {
          rmdirSync(cg);
        } catch {
          /* not created, or already gone */
        }
      }
    },
  };
}
