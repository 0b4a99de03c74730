// `explain`'s view of this host for one server: the backend `auto` (or the named
// one) picks here and why, the rules it would refuse, how each limit is
// enforced, and the egress path (proxy, agent, pinned names). Probes the host
// (spawns bwrap, tries a cgroup) but starts no server and reads no secret.
// Not responsible for the policy itself (explain.ts prints that).

import { buildAgentPlan, DEFAULT_AGENT_PROXY_PORT } from "../agent/plan.js";
import type { BackendChoice, ServerSpec } from "../config/spec.js";
import { defaultBackends } from "../gateway/services.js";
import type { Backend, Gap } from "../sandbox/backend.js";
import type { LimitEnforcement } from "../sandbox/bubblewrap/enforcement.js";
import { findLowPortTools, UNPRIVILEGED_PORT_START } from "../sandbox/bubblewrap/low-ports.js";
import { selectBackend } from "../sandbox/select.js";

export interface HostPin {
  readonly host: string;
  readonly port: number;
  readonly address: string;
  /** Whether the agent can listen there under this backend (bubblewrap: below 1024 only with perl). */
  readonly pinned: boolean;
}

export interface HostView {
  /** The backend chosen here, or null when none can run this server. */
  readonly backend: string | null;
  /** Why it was chosen (or why none was). */
  readonly reason: string;
  /** Rules the chosen backend cannot enforce here: the start would be refused (exit 3). */
  readonly refusals: readonly Gap[];
  /** How each limit is enforced; null when the backend gives no report. */
  readonly limits: readonly LimitEnforcement[] | null;
  /** Allowlist servers only: the proxy address inside the sandbox and the pinned names. */
  readonly egress: { readonly proxy: string; readonly pins: readonly HostPin[] } | null;
}

type WithEnforcement = Backend & { enforcement(spec: ServerSpec): LimitEnforcement[] };
const hasEnforcement = (b: Backend): b is WithEnforcement => typeof (b as Partial<WithEnforcement>).enforcement === "function";

export async function hostView(spec: ServerSpec, gatewayChoice: BackendChoice, backends: readonly Backend[] = defaultBackends()): Promise<HostView> {
  let backend: Backend;
  let reason: string;
  try {
    ({ backend, reason } = await selectBackend(spec, gatewayChoice, backends));
  } catch (err) {
    return { backend: null, reason: (err as Error).message, refusals: [], limits: null, egress: null };
  }
  const refusals = await backend.gaps(spec);
  const limits = hasEnforcement(backend) ? backend.enforcement(spec) : null;
  let egress: HostView["egress"] = null;
  if (spec.network.mode === "allowlist") {
    const plan = buildAgentPlan(spec);
    const lowPortsOk = backend.name !== "bubblewrap" || findLowPortTools() !== null;
    egress = {
      proxy: `http://127.0.0.1:${DEFAULT_AGENT_PROXY_PORT}`,
      pins: plan.pins.map((p) => ({ ...p, pinned: lowPortsOk || p.port >= UNPRIVILEGED_PORT_START })),
    };
  }
  return { backend: backend.name, reason, refusals, limits, egress };
}

/** The text block, indented like the rest of `explain`. */
export function hostViewText(v: HostView): string[] {
  const out = ["  on this host (probed now; the gateway probes again when it starts):"];
  out.push(`    backend:   ${v.backend ?? "(none)"} (${v.reason})`);
  if (v.backend === null) return out;
  if (v.refusals.length === 0) out.push("    refuses:   nothing: every rule is enforced here");
  else {
    out.push("    refuses:   the server would NOT start (exit 3):");
    for (const g of v.refusals) out.push(`      ${g.rule}: ${g.message}`, `        Hint: ${g.hint}`);
  }
  if (v.limits) {
    out.push("    limits:");
    for (const e of v.limits) out.push(`      ${e.limit.padEnd(7)} ${e.value} ${e.explicit ? "(explicit)" : "(default)"}: ${e.enforced ? "enforced" : "NOT ENFORCED"} (${e.detail})`);
  } else out.push("    limits:    (this backend gives no per-limit report)");
  if (v.egress) {
    out.push(`    egress:    a proxy on the host holding only this server's rules; inside, the agent at ${v.egress.proxy} (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY); no resolver`);
    if (v.egress.pins.length === 0) out.push("      pins:    (none: only exact name rules are pinned)");
    for (const p of v.egress.pins) {
      out.push(p.pinned
        ? `      pin:     ${p.host}:${p.port} → the agent at ${p.address}:${p.port} (for clients that ignore proxies${v.backend === "bubblewrap" && p.port < UNPRIVILEGED_PORT_START ? "; below 1024 once the gateway lowers the sandbox's start port: \`nucleus doctor\` checks that here" : ""})`
        : `      pin:     ${p.host}:${p.port}: none (bubblewrap needs perl to listen below port ${UNPRIVILEGED_PORT_START}; proxy-aware clients only)`);
    }
  } else if (v.backend === "bubblewrap") out.push("    egress:    none (loopback-only network namespace, no proxy socket; inet sockets refused by seccomp)");
  else out.push("    egress:    none (no proxy)");
  return out;
}
