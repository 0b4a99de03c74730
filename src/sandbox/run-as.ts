// Dropping a root gateway's sandboxes to `[gateway] run_as`: the setpriv prefix
// every backend puts in front of its sandbox argv, and the check that a path is
// reachable by that user. Shared by the bubblewrap and QEMU backends; not
// responsible for which user (config) or for cgroups (cgroups/).

import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { refused } from "../errors.js";

/** An unprivileged host identity sandboxes run as. */
export interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

export const SETPRIV = "/usr/bin/setpriv";

/** setpriv's switches for `r`, without the program path and the "--". */
function dropArgs(r: RunAs): string[] {
  // SECURITY: real and effective uid/gid, no supplementary groups, no inheritable capabilities; the kernel
  // clears the permitted and effective sets on the switch away from uid 0.
  return ["--reuid", String(r.uid), "--regid", String(r.gid), "--clear-groups", "--inh-caps=-all"];
}

/**
 * The argv prefix that execs the rest as `runAs` (empty without one). Refuses when the gateway is not root,
 * since only root can switch to another user.
 */
export function runAsPrefix(runAs: RunAs | null | undefined): string[] {
  if (!runAs) return [];
  if (process.getuid?.() !== 0) throw refused("runAs needs a gateway running as root", "remove the runAs option, or start the gateway as root");
  // SECURITY: fail closed: without setpriv the sandbox would otherwise have to run as root.
  if (!existsSync(SETPRIV)) throw refused(`runAs needs ${SETPRIV}, which is missing`, "install util-linux (it ships setpriv), or remove [gateway] run_as");
  return [SETPRIV, ...dropArgs(runAs), "--"];
}

export interface AccessNeed {
  readonly path: string;
  /** Also needs write access (a writable share). */
  readonly write?: boolean;
}

/**
 * The paths of `needs` that `runAs` cannot read (list and enter, for a directory) or, where asked, write. The
 * kernel decides: each is tested by /usr/bin/test run as that user, so modes, ACLs and every parent directory
 * count. A path that does not exist counts as not accessible.
 */
export function inaccessibleTo(runAs: RunAs, needs: readonly AccessNeed[]): string[] {
  const bad: string[] = [];
  for (const n of needs) {
    let dir: boolean;
    try {
      dir = statSync(n.path).isDirectory();
    } catch {
      bad.push(n.path);
      continue;
    }
    const tests = ["-r", n.path, ...(dir ? ["-a", "-x", n.path] : []), ...(n.write ? ["-a", "-w", n.path] : [])];
    const r = spawnSync(SETPRIV, [...dropArgs(runAs), "--", "/usr/bin/test", ...tests], { env: {}, stdio: "ignore", timeout: 10_000 });
    if (r.status !== 0) bad.push(n.path);
  }
  return bad;
}
