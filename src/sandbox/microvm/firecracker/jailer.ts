// The `jailer` invocation that wraps Firecracker in production: a chroot per VM,
// an unprivileged uid/gid, its own cgroup limits, Firecracker's
// seccomp filters left on. Pure builder; not responsible for staging files into
// the chroot (paths in API requests are then relative to it).

import { basename, join } from "node:path";

export interface JailerOptions {
  readonly jailer: string;
  readonly firecracker: string;
  /** VM id: [A-Za-z0-9-]{1,64}. */
  readonly id: string;
  readonly uid: number;
  readonly gid: number;
  readonly chrootBase: string;
  readonly cgroupVersion: 1 | 2;
  readonly memoryMiB: number;
  readonly cpus: number;
}

export interface JailerPlan {
  readonly argv: string[];
  /** Root of the chroot: stage the kernel, initramfs and drives here. */
  readonly chrootRoot: string;
  /** The API socket as seen from the host. */
  readonly apiSocket: string;
  /** cgroup directories the jailer creates for this VM (removed once it is gone). */
  readonly cgroupDirs: readonly string[];
}

export function buildJailerArgv(o: JailerOptions): JailerPlan {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(o.id)) throw new Error(`invalid VM id "${o.id}"`);
  if (o.uid === 0 || o.gid === 0) throw new Error("the jailer must drop to a non-root uid and gid");
  // The jailer names the chroot and the parent cgroup after the exec file.
  const exec = basename(o.firecracker);
  const chrootRoot = join(o.chrootBase, exec, o.id, "root");
  const cgroupDirs = o.cgroupVersion === 2 ? [join("/sys/fs/cgroup", exec, o.id)] : [join("/sys/fs/cgroup/memory", exec, o.id)];
  // The VM's memory plus headroom for Firecracker itself (its documented overhead is < 5 MiB).
  const memBytes = (o.memoryMiB + 64) * 1024 * 1024;
  const cg = o.cgroupVersion === 2 ? ["--cgroup", `memory.max=${memBytes}`, "--cgroup", `cpu.max=${o.cpus * 100000} 100000`] : ["--cgroup", `memory.limit_in_bytes=${memBytes}`];
  const argv = [
    o.jailer,
    "--id", o.id,
    "--exec-file", o.firecracker,
    // SECURITY: Firecracker runs as an unprivileged user, chrooted, in its own cgroup. No
    // --new-pid-ns: with it the jailer forks and exits, and the gateway would lose the process
    // it supervises (stop(), exit reporting); the VM has no other process to hide from anyway.
    "--uid", String(o.uid),
    "--gid", String(o.gid),
    "--chroot-base-dir", o.chrootBase,
    "--cgroup-version", String(o.cgroupVersion),
    ...cg,
    "--",
    "--api-sock", "/run/firecracker.socket",
    // No --no-seccomp: Firecracker's own seccomp filters stay on.
  ];
  return { argv, chrootRoot, apiSocket: join(chrootRoot, "run", "firecracker.socket"), cgroupDirs };
}
