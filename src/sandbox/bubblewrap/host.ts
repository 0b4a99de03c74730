// Gathers the host facts the argv builder needs (where bwrap is, the /usr
// layout, which /etc files exist, the interpreter's real path). Thin I/O;
// every decision about what to bind lives in argv.ts.

import { existsSync, lstatSync, readlinkSync, realpathSync } from "node:fs";
import { whichSync } from "../which.js";
import { seccompArchOf } from "../seccomp/syscalls.js";
import type { HostFacts, RuntimeEntry } from "./argv.js";

const RUNTIME_TOP = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"];
// SECURITY: only what a runtime needs from /etc; never the whole /etc (shadow, ssh keys, resolv.conf),
// and /etc/ssl/certs rather than /etc/ssl (which holds private keys on some hosts).
const ETC_ENTRIES = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ssl/certs", "/etc/pki/tls/certs", "/etc/ca-certificates", "/etc/alternatives", "/etc/localtime", "/etc/nsswitch.conf"];

/** /proc files masked inside the sandbox (bound to /dev/null) where the kernel has them. */
export const PROC_MASKS = [
  "/proc/keys", "/proc/key-users", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats", "/proc/kcore",
  "/proc/slabinfo", "/proc/vmallocinfo", "/proc/pagetypeinfo", "/proc/kpagecount", "/proc/kpageflags", "/proc/kpagecgroup",
];

export function findBwrap(pathEnv = process.env.PATH ?? ""): string | null {
  return whichSync("bwrap", pathEnv) ?? (existsSync("/usr/bin/bwrap") ? "/usr/bin/bwrap" : null);
}

export function runtimeEntries(): RuntimeEntry[] {
  const out: RuntimeEntry[] = [];
  for (const p of RUNTIME_TOP) {
    try {
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.push({ path: p, kind: "symlink", target: readlinkSync(p) });
      else if (st.isDirectory()) out.push({ path: p, kind: "dir" });
    } catch {
      /* not on this host */
    }
  }
  return out;
}

export function collectHostFacts(argv0: string, bwrap: string): HostFacts {
  const arch = seccompArchOf(process.arch);
  if (!arch) throw new Error(`seccomp filters are not available for the ${process.arch} architecture`);
  return {
    bwrap,
    arch,
    runtime: runtimeEntries(),
    etc: ETC_ENTRIES.filter((e) => existsSync(e)),
    interpreter: realpathSync(argv0),
    shell: realpathSync("/bin/sh"),
    procMasks: PROC_MASKS.filter((p) => existsSync(p)),
  };
}

