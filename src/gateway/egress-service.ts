// The gateway's egress proxies: one private socket directory per gateway
// session (removed at close) and one proxy per server launch, whose decisions
// become audit events. Not responsible for the rules (policy/) or the sandbox binds.

import { egressBudget, type EgressBudgetOptions } from "../audit/egress-budget.js";
import { egress as egressAuditEvent, type AuditEvent } from "../audit/events.js";
import type { ServerSpec } from "../config/spec.js";
import { createEgressSocketDir, removeEgressSocketDir, startServerEgress, type EgressEvent, type EgressLimits, type EgressProxy, type EgressResolver } from "../egress/index.js";
import type { Logger } from "../log.js";
import type { EgressHandle } from "./runtime.js";

/** Options a program embedding the gateway may inject; the configuration file sets none of them. */
export interface EgressServiceOptions {
  /** How proxies resolve names; default getaddrinfo (the host's resolver). */
  readonly resolver?: EgressResolver;
  readonly limits?: Partial<EgressLimits>;
  /** Parent of the socket directory; default the OS temp dir. */
  readonly socketBase?: string;
  /**
   * TEST ONLY, dangerous: addresses in these CIDRs count as private (see EgressProxyOptions). Only tests that
   * build the services in-process pass it; nothing in the configuration or the CLI can.
   */
  readonly insecureTestPrivateRanges?: readonly string[];
  /** Each server's budget for egress records (default: a burst of 200, then 50/s; summaries every 10 s). */
  readonly auditBudget?: EgressBudgetOptions;
}

export interface EgressService {
  /** Starts the proxy of one launch of `spec` (an allowlist server); close the handle when its sandbox exits. */
  start(spec: ServerSpec): Promise<EgressHandle>;
  /** Closes every proxy still open and removes the socket directory. */
  close(): Promise<void>;
}

/** An egress decision as an audit event (`decision` allow/deny, then the proxy's fields). */
export function egressAudit(e: EgressEvent): AuditEvent {
  return egressAuditEvent({
    server: e.server,
    decision: e.allowed ? "allow" : "deny",
    protocol: e.protocol,
    host: e.host,
    port: e.port,
    address: e.address,
    resolved: [...e.resolved],
    rule: e.rule,
    reason: e.reason,
    bytesUp: e.bytesUp,
    bytesDown: e.bytesDown,
    durationMs: e.durationMs,
  });
}

export function createEgressService(opts: { log: Logger; audit: ((event: AuditEvent) => void) | undefined } & EgressServiceOptions): EgressService {
  let dir: Promise<string> | null = null;
  let launches = 0;
  let closed = false;
  const open = new Set<EgressProxy>();
  // SECURITY: one budget per server across its launches, so a flood of refused connections cannot flush others' records.
  const budget = opts.audit ? egressBudget(opts.audit, opts.auditBudget) : null;
  const audit = (e: EgressEvent) => budget?.audit(egressAudit(e));

  return {
    async start(spec) {
      if (closed) throw new Error(`the gateway is shutting down; server "${spec.name}" gets no egress proxy`);
      if (spec.network.mode !== "allowlist") throw new Error(`server "${spec.name}" has network = "none": it gets no egress proxy`);
      // SECURITY: one 0700 directory (mkdtemp) per gateway session, created when first needed.
      const socketDir = await (dir ??= createEgressSocketDir(opts.socketBase));
      // A number per launch: two sessions (or a restart racing the old proxy's close) never share a socket.
      const proxy = await startServerEgress(spec, {
        socketDir,
        index: launches++,
        audit,
        log: opts.log,
        ...(opts.resolver ? { resolver: opts.resolver } : {}),
        ...(opts.limits ? { limits: opts.limits } : {}),
        ...(opts.insecureTestPrivateRanges ? { insecureTestPrivateRanges: opts.insecureTestPrivateRanges } : {}),
      });
      if (!proxy) throw new Error(`server "${spec.name}" got no egress proxy`);
      if (closed) {
        // close() ran while this proxy was starting: it must not outlive the session.
        await proxy.close().catch(() => undefined);
        throw new Error(`the gateway is shutting down; server "${spec.name}" gets no egress proxy`);
      }
      open.add(proxy);
      opts.log.debug("egress proxy listening", { server: spec.name, socket: proxy.socketPath });
      return {
        socketPath: proxy.socketPath,
        adopt: (listener, pin) => proxy.adopt(listener, pin),
        close: async () => {
          open.delete(proxy);
          await proxy.close();
        },
      };
    },
    async close() {
      closed = true;
      await Promise.all([...open].map((p) => p.close().catch(() => undefined)));
      open.clear();
      budget?.flush(); // after the proxies closed: their last decisions are counted too
      if (dir) await removeEgressSocketDir(await dir.catch(() => "")).catch(() => undefined);
    },
  };
}
