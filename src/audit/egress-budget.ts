// A per-server budget for egress records: a token bucket per server (a burst,
// then a steady rate); past it that server's egress records are counted, not
// written, and summarised in one `egress.suppressed` record per server per
// interval. So one server's flood cannot push others' records out of the
// rotated files, and the flood itself stays on the record. Not responsible for
// writing (the sink it wraps) or for the egress decisions themselves.

import { egressSuppressed, type AuditEvent } from "./events.js";

export interface EgressBudgetOptions {
  /** Egress records a server may write at once (the bucket's size). */
  readonly burst?: number;
  /** Records per second the bucket refills with. */
  readonly perSecond?: number;
  /** At most one `egress.suppressed` record per server per this many ms. */
  readonly summaryMs?: number;
  /** Clock, for tests. */
  readonly now?: () => number;
}

export const EGRESS_AUDIT_BURST = 200;
export const EGRESS_AUDIT_PER_SECOND = 50;
export const EGRESS_SUMMARY_MS = 10_000;

interface Suppressed {
  allow: number;
  deny: number;
  firstHost: string;
  lastHost: string;
  firstAt: number;
  lastAt: number;
  timer: NodeJS.Timeout;
}

interface Bucket {
  tokens: number;
  at: number;
  suppressed: Suppressed | null;
}

export interface EgressBudget {
  /** Passes an event on: any non-egress event always, an egress one while its server has budget. */
  readonly audit: (event: AuditEvent) => void;
  /** Writes every pending summary now (at shutdown). */
  flush(): void;
}

export function egressBudget(write: (event: AuditEvent) => void, opts: EgressBudgetOptions = {}): EgressBudget {
  const burst = Math.max(1, opts.burst ?? EGRESS_AUDIT_BURST);
  const perMs = Math.max(0, opts.perSecond ?? EGRESS_AUDIT_PER_SECOND) / 1000;
  const summaryMs = Math.max(1, opts.summaryMs ?? EGRESS_SUMMARY_MS);
  const now = opts.now ?? Date.now;
  const buckets = new Map<string, Bucket>();

  const summarise = (server: string) => {
    const b = buckets.get(server);
    const s = b?.suppressed;
    if (!b || !s) return;
    clearTimeout(s.timer);
    b.suppressed = null;
    write(
      egressSuppressed({
        server,
        allow: s.allow,
        deny: s.deny,
        firstHost: s.firstHost,
        lastHost: s.lastHost,
        from: new Date(s.firstAt).toISOString(),
        to: new Date(s.lastAt).toISOString(),
      }),
    );
  };

  const audit = (event: AuditEvent) => {
    const server = event.fields.server;
    if (event.type !== "egress" || typeof server !== "string") return write(event);
    const t = now();
    let b = buckets.get(server);
    if (!b) buckets.set(server, (b = { tokens: burst, at: t, suppressed: null }));
    b.tokens = Math.min(burst, b.tokens + Math.max(0, t - b.at) * perMs);
    b.at = t;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return write(event);
    }
    // SECURITY: over budget, the decision is still accounted for: counted here, written in the summary.
    const host = typeof event.fields.host === "string" ? event.fields.host : "";
    const s = (b.suppressed ??= { allow: 0, deny: 0, firstHost: host, lastHost: host, firstAt: t, lastAt: t, timer: setTimeout(() => summarise(server), summaryMs).unref() });
    if (event.fields.decision === "allow") s.allow++;
    else s.deny++;
    s.lastHost = host;
    s.lastAt = t;
  };

  return {
    audit,
    flush() {
      for (const server of [...buckets.keys()]) summarise(server);
    },
  };
}
