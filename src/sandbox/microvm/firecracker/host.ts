// What this host offers the Firecracker backend: the firecracker and jailer
// binaries, the uid/gid and chroot base the jailer uses, the cgroup version.
// Pure given its inputs (env, uid, file checks). Not responsible for running
// anything (backend.ts) or for the jailer's argv (jailer.ts).

import { existsSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { whichSync } from "../../which.js";

export interface FirecrackerHostOptions {
  /** Default: $NUCLEUS_FIRECRACKER_BIN, then `firecracker` on PATH. */
  readonly firecracker?: string;
  /** Default: $NUCLEUS_JAILER_BIN, then `jailer` next to the firecracker binary, then on PATH. */
  readonly jailer?: string;
  /** `[gateway] run_as`: the jailed Firecracker runs as this user (required: the jailer runs as root). */
  readonly runAs?: { readonly uid: number; readonly gid: number } | null;
  /** Where the jailer builds each VM's chroot (default: $NUCLEUS_JAILER_CHROOT_BASE, then <cache>/nucleus/jail). */
  readonly chrootBase?: string;
  /**
   * SECURITY: run Firecracker without the jailer (no chroot, no uid switch, no cgroup of its own).
   * Only by explicit choice: this option or NUCLEUS_FIRECRACKER_INSECURE_NO_JAILER=1.
   */
  readonly insecureNoJailer?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

export type FirecrackerHost =
  | { readonly ok: true; readonly firecracker: string; readonly jail: JailSetup | null }
  | { readonly ok: false; readonly missing: string; readonly hint: string };

export interface JailSetup {
  readonly jailer: string;
  readonly uid: number;
  readonly gid: number;
  readonly chrootBase: string;
  readonly cgroupVersion: 1 | 2;
}

export function findFirecracker(o: FirecrackerHostOptions, ids: { uid: number; gid: number }, cacheRoot: string): FirecrackerHost {
  const env = o.env ?? process.env;
  const firecracker = o.firecracker ?? (env.NUCLEUS_FIRECRACKER_BIN ? whichSync(env.NUCLEUS_FIRECRACKER_BIN) : whichSync("firecracker", env.PATH));
  if (!firecracker) return { ok: false, missing: "the firecracker binary", hint: "install Firecracker and set NUCLEUS_FIRECRACKER_BIN to its path" };
  return withJailer(o, env, firecracker, ids, cacheRoot);
}

function withJailer(o: FirecrackerHostOptions, env: NodeJS.ProcessEnv, given: string, ids: { uid: number; gid: number }, cacheRoot: string): FirecrackerHost {
  // The real path: the jailer names the chroot and the cgroup after the exec file's canonical name.
  const firecracker = realpathSync(given);
  if (o.insecureNoJailer ?? env.NUCLEUS_FIRECRACKER_INSECURE_NO_JAILER === "1") return { ok: true, firecracker, jail: null };
  const jailer = o.jailer ?? (env.NUCLEUS_JAILER_BIN ? whichSync(env.NUCLEUS_JAILER_BIN) : (whichSync(join(dirname(given), "jailer")) ?? whichSync(join(dirname(firecracker), "jailer")) ?? whichSync("jailer", env.PATH)));
  if (!jailer) {
    return {
      ok: false,
      missing: "the jailer binary",
      hint: "install Firecracker's jailer next to firecracker or set NUCLEUS_JAILER_BIN (Firecracker runs only under it unless NUCLEUS_FIRECRACKER_INSECURE_NO_JAILER=1)",
    };
  }
  // The jailer chroots, creates device nodes, joins cgroups and then drops to the jail user: it needs root.
  if (ids.uid !== 0) {
    return {
      ok: false,
      missing: "root privileges for the jailer",
      hint: 'the jailer must be started by root: run the gateway as root with [gateway] run_as = "<a dedicated system user>", or use backend = "qemu"',
    };
  }
  const user = o.runAs ?? ids;
  if (user.uid === 0 || user.gid === 0) {
    return {
      ok: false,
      missing: "an unprivileged user for the jailer",
      hint: 'a gateway running as root must name one: set [gateway] run_as = "<a dedicated system user>"',
    };
  }
  return {
    ok: true,
    firecracker,
    jail: {
      jailer,
      uid: user.uid,
      gid: user.gid,
      chrootBase: o.chrootBase ?? (env.NUCLEUS_JAILER_CHROOT_BASE || join(cacheRoot, "jail")),
      cgroupVersion: existsSync("/sys/fs/cgroup/cgroup.controllers") ? 2 : 1,
    },
  };
}
