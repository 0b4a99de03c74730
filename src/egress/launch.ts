// Starting and naming the egress proxy of one server at launch: the gateway
// calls this once per server whose network is an allowlist. Not responsible
// for binding the socket into the sandbox (the backends do, see buildAgentPlan).

import type { ServerSpec } from "../config/spec.js";
import type { Logger } from "../log.js";
import { startEgressProxy } from "./proxy.js";
import type { EgressResolver } from "./resolver.js";
import { egressSocketPath } from "./socket-path.js";
import type { EgressEvent, EgressLimits, EgressProxy } from "./types.js";

export interface ServerEgressContext {
  /** The gateway's private socket directory (createEgressSocketDir(), mode 0700). */
  readonly socketDir: string;
  /** The server's position in the config: keeps socket names unique. */
  readonly index: number;
  readonly audit: (event: EgressEvent) => void;
  readonly log: Logger;
  readonly resolver?: EgressResolver;
  readonly limits?: Partial<EgressLimits>;
  /** TEST ONLY, dangerous: see EgressProxyOptions.insecureTestPrivateRanges. Never set from configuration. */
  readonly insecureTestPrivateRanges?: readonly string[];
}

/** The proxy for this server, listening; null when network = "none" (no proxy, no socket). */
export async function startServerEgress(spec: ServerSpec, ctx: ServerEgressContext): Promise<EgressProxy | null> {
  if (spec.network.mode !== "allowlist") return null;
  return startEgressProxy({
    server: spec.name,
    rules: spec.network.hosts,
    socketPath: egressSocketPath(ctx.socketDir, ctx.index, spec.name),
    audit: ctx.audit,
    log: ctx.log,
    ...(ctx.resolver ? { resolver: ctx.resolver } : {}),
    ...(ctx.limits ? { limits: ctx.limits } : {}),
    ...(ctx.insecureTestPrivateRanges ? { insecureTestPrivateRanges: ctx.insecureTestPrivateRanges } : {}),
  });
}
