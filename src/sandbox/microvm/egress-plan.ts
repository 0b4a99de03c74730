// Pure: what a microVM's guest agent sets up for an allowlist server (its
// listeners, pins and /etc/hosts) and the proxy variables its server gets —
// the same plan the bubblewrap agent follows (src/agent/plan.ts). Not
// responsible for carrying the streams (egress-streams.ts) or for policy.

import { proxyEnv } from "../../agent/config.js";
import { DEFAULT_AGENT_PROXY_PORT, buildAgentPlan } from "../../agent/plan.js";
import { formatPinLine } from "../../agent/protocol.js";
import type { EgressPlan } from "../../agent/guest/protocol.js";
import type { ServerSpec } from "../../config/spec.js";
import { refused } from "../../errors.js";
import type { LaunchContext } from "../backend.js";

export interface GuestEgress {
  readonly plan: EgressPlan;
  /** HTTP_PROXY, HTTPS_PROXY, ALL_PROXY (and lower case) at the guest's listener; NO_PROXY for loopback. */
  readonly env: Record<string, string>;
}

/** Null for network = "none"; refuses an allowlist without a proxy socket (fail closed). */
export function guestEgressPlan(spec: ServerSpec, ctx: Pick<LaunchContext, "egressSocket">): GuestEgress | null {
  if (spec.network.mode !== "allowlist") return null;
  // SECURITY: without its proxy an allowlist cannot be enforced, so the server does not start.
  if (!ctx.egressSocket) {
    throw refused(
      `server "${spec.name}" has an egress allowlist, but the gateway gave no egress proxy socket for it`,
      `start it through \`nucleus serve\` or \`nucleus run\` (which run the egress proxy), or set servers.${spec.name}.network = "none"`,
    );
  }
  const agent = buildAgentPlan(spec, { proxyPort: DEFAULT_AGENT_PROXY_PORT });
  // The same variables the bubblewrap agent gives its server (the socket field is unused here).
  const env = proxyEnv({ version: 1, socket: "/", proxy: { host: "127.0.0.1", port: DEFAULT_AGENT_PROXY_PORT }, pins: agent.pins });
  return {
    plan: {
      proxyPort: DEFAULT_AGENT_PROXY_PORT,
      pins: agent.pins.map((p) => ({ address: p.address, port: p.port, preamble: formatPinLine(p.host, p.port).toString("latin1") })),
      hosts: agent.hostsFile,
    },
    env,
  };
}
