// Where a Firecracker VM's files and sockets live, as the host sees them and as
// Firecracker sees them: directly in a run dir, or staged into the jailer's
// chroot (hard links where possible, else copies; left owned by root and only
// readable by the jail's uid, so a compromised Firecracker cannot alter the shared image).
// Not responsible for the requests (config.ts) or the jailer argv (jailer.ts).

import { chmodSync, copyFileSync, linkSync, mkdirSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { buildJailerArgv, type JailerOptions } from "./jailer.js";

export interface FcLayout {
  readonly argv: string[];
  /** Host paths of the API socket and the vsock device socket. */
  readonly apiSocket: string;
  readonly vsockHost: string;
  /** Paths to put in API requests (inside the chroot when jailed). */
  readonly vsockInVm: string;
  inVm(hostFile: string): string;
  cleanup(): void;
}

export function directLayout(firecracker: string, runDir: string): FcLayout {
  const apiSocket = join(runDir, "api.sock");
  const vsock = join(runDir, "vsock.sock");
  return { argv: [firecracker, "--api-sock", apiSocket], apiSocket, vsockHost: vsock, vsockInVm: vsock, inVm: (f) => f, cleanup: () => {} };
}

export type JailConfig = Pick<JailerOptions, "jailer" | "uid" | "gid" | "chrootBase" | "cgroupVersion">;

/** Stage `files` into a fresh chroot for `id`; Firecracker then sees each as /<basename>. */
export function jailedLayout(jail: JailConfig, firecracker: string, id: string, files: readonly string[], limits: { memoryMiB: number; cpus: number }): FcLayout {
  const plan = buildJailerArgv({ ...jail, firecracker, id, ...limits });
  const jailDir = dirname(plan.chrootRoot);
  mkdirSync(plan.chrootRoot, { recursive: true });
  for (const f of files) {
    const dest = join(plan.chrootRoot, basename(f));
    try {
      linkSync(f, dest);
    } catch {
      copyFileSync(f, dest);
    }
    // SECURITY: no chown: a hard link shares the inode with the cached image, and the jailed
    // process must be able to read it (mode 0644), never to write it.
    chmodSync(dest, 0o644);
  }
  return {
    argv: plan.argv,
    apiSocket: plan.apiSocket,
    vsockHost: join(plan.chrootRoot, "vsock.sock"),
    vsockInVm: "/vsock.sock",
    inVm: (f) => `/${basename(f)}`,
    cleanup: () => rmSync(jailDir, { recursive: true, force: true }),
  };
}
