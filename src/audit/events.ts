// The audit event types and their typed constructors, plus the canonical
// digest used for tool arguments and policies. Not responsible for writing
// (audit-log.ts) or for deciding when an event happens (the gateway).

import { createHash } from "node:crypto";

export type AuditEventType =
  | "audit.file"
  | "server.start"
  | "server.exit"
  | "server.oom"
  | "server.restart"
  | "tool.call"
  | "policy.refused"
  | "egress"
  | "egress.suppressed"
  | "config.reload"
  | "audit.dropped";

export interface AuditEvent {
  readonly type: AuditEventType;
  readonly fields: Readonly<Record<string, unknown>>;
}

export type ToolOutcome = "ok" | "error" | "refused";

/** JSON with object keys sorted at every level, so equal values give equal digests. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) return "null";
    if (typeof value === "bigint") return JSON.stringify(value.toString());
    return JSON.stringify(value) ?? "null";
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && typeof v !== "function")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** "sha256:<hex>" of the canonical JSON of a value (tool arguments, an effective policy). */
export function digestOf(value: unknown): string {
  return `sha256:${createHash("sha256").update(canonicalJson(value)).digest("hex")}`;
}

export function serverStart(e: { server: string; backend: string; policyDigest: string }): AuditEvent {
  return { type: "server.start", fields: { server: e.server, backend: e.backend, policyDigest: e.policyDigest } };
}

export function serverExit(e: { server: string; cause: string; code: number | null; signal: string | null }): AuditEvent {
  return { type: "server.exit", fields: { server: e.server, cause: e.cause, code: e.code, signal: e.signal } };
}

export function serverOom(e: { server: string; memoryMiB?: number }): AuditEvent {
  return { type: "server.oom", fields: { server: e.server, ...(e.memoryMiB === undefined ? {} : { memoryMiB: e.memoryMiB }) } };
}

export function serverRestart(e: { server: string; attempt: number; delayMs: number }): AuditEvent {
  return { type: "server.restart", fields: { server: e.server, attempt: e.attempt, delayMs: e.delayMs } };
}

/**
 * One tool call. The arguments are recorded as a digest; the arguments
 * themselves only when `includeArguments` (`[gateway] audit_arguments`).
 */
export function toolCall(e: {
  server: string;
  tool: string;
  arguments: unknown;
  outcome: ToolOutcome;
  durationMs: number;
  includeArguments: boolean;
  /** Short reason for error/refused outcomes (a rule, an error code); no payloads. */
  reason?: string;
}): AuditEvent {
  const fields: Record<string, unknown> = {
    server: e.server,
    tool: e.tool,
    argsDigest: digestOf(e.arguments ?? null),
    outcome: e.outcome,
    durationMs: Math.round(e.durationMs),
  };
  if (e.reason !== undefined) fields.reason = e.reason;
  if (e.includeArguments) fields.arguments = e.arguments ?? null;
  return { type: "tool.call", fields };
}

/** A refusal by policy: a hidden tool, a path, a start refused for a gap. `rule` is the TOML path. */
export function policyRefused(e: { server: string; what: string; rule: string }): AuditEvent {
  return { type: "policy.refused", fields: { server: e.server, what: e.what, rule: e.rule } };
}

/** An egress decision; the egress proxy chooses the fields (host, port, decision "allow"|"deny", rule…). */
export function egress(e: { server: string; decision: "allow" | "deny" } & Record<string, unknown>): AuditEvent {
  return { type: "egress", fields: { ...e } };
}

/** Egress records of one server counted, not written, because it went over its budget (egress-budget.ts). */
export function egressSuppressed(e: { server: string; allow: number; deny: number; firstHost: string; lastHost: string; from: string; to: string }): AuditEvent {
  return { type: "egress.suppressed", fields: { server: e.server, count: e.allow + e.deny, allow: e.allow, deny: e.deny, firstHost: e.firstHost, lastHost: e.lastHost, from: e.from, to: e.to } };
}

export function configReload(e: { source: string; changed: readonly string[] }): AuditEvent {
  return { type: "config.reload", fields: { source: e.source, changed: [...e.changed] } };
}

/** Records that were not written because too many were waiting (a flood, e.g. refused connections). */
export function auditDropped(e: { count: number }): AuditEvent {
  return { type: "audit.dropped", fields: { count: e.count } };
}

/** Whether a record is a refusal (for `nucleus audit tail --refused`). */
export function isRefusal(type: string, fields: Readonly<Record<string, unknown>>): boolean {
  return type === "policy.refused" || fields.outcome === "refused" || (type === "egress" && fields.decision === "deny") || (type === "egress.suppressed" && typeof fields.deny === "number" && fields.deny > 0);
}
