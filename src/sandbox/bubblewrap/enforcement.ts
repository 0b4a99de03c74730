// Which resource limits of a spec this host can enforce under bubblewrap, and
// the gaps that follow: an explicit limit that cannot be enforced refuses the
// start; a default one is only reported (doctor, explain). Pure.

import type { ServerSpec } from "../../config/spec.js";
import type { Gap } from "../backend.js";
import type { Controller } from "../cgroups/layout.js";
import type { ControllerStatus } from "../cgroups/manager.js";

export type LimitName = "memory" | "pids" | "cpus" | "tmp";

export interface LimitEnforcement {
  readonly limit: LimitName;
  /** The limit's value with its unit, e.g. "512 MiB". */
  readonly value: string;
  readonly explicit: boolean;
  readonly enforced: boolean;
  /** A sentence: how it is enforced, or why it is not. */
  readonly detail: string;
}

/** The TOML key of each limit, for gap rules and hints. */
export const LIMIT_KEYS: Record<Exclude<LimitName, "tmp">, string> = { memory: "memory_mib", pids: "pids", cpus: "cpus" };

const CONTROLLER_OF: Record<Exclude<LimitName, "tmp">, Controller> = { memory: "memory", pids: "pids", cpus: "cpu" };

export function limitEnforcement(spec: ServerSpec, controllers: Readonly<Record<Controller, ControllerStatus>>): LimitEnforcement[] {
  const l = spec.limits;
  const values: Record<Exclude<LimitName, "tmp">, string> = { memory: `${l.memoryMiB} MiB`, pids: String(l.pids), cpus: String(l.cpus) };
  const out: LimitEnforcement[] = (["memory", "pids", "cpus"] as const).map((name) => {
    const st = controllers[CONTROLLER_OF[name]];
    return { limit: name, value: values[name], explicit: l.explicit[name], enforced: st.usable, detail: st.detail };
  });
  out.push({ limit: "tmp", value: `${l.tmpMiB} MiB`, explicit: false, enforced: true, detail: "size of the private tmpfs /tmp and home" });
  return out;
}

export function limitGaps(spec: ServerSpec, enforcement: readonly LimitEnforcement[]): Gap[] {
  return enforcement
    .filter((e) => e.explicit && !e.enforced && e.limit !== "tmp")
    .map((e) => {
      const key = LIMIT_KEYS[e.limit as Exclude<LimitName, "tmp">];
      return {
        rule: `servers.${spec.name}.${key}`,
        message: `server "${spec.name}" sets ${key} = ${e.value}, which bubblewrap cannot enforce here: ${e.detail}`,
        hint: `run the gateway where the cgroup ${e.limit === "cpus" ? "cpu" : e.limit} controller is delegated to it (cgroup v2 with the controller enabled, or a writable v1 hierarchy), or remove ${key} to accept the default without enforcement`,
      };
    });
}
