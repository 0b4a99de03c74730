// The normal path of tools/call (the fast path is fast-path.ts): the name
// looked up in the settled catalog, a hidden tool refused and audited as a
// policy refusal, an unknown one refused, the call forwarded and its outcome
// audited. Not responsible for forwarding itself (gateway.ts).

import { CallToolResultSchema, ErrorCode, type Notification, type Request, type Result } from "@modelcontextprotocol/sdk/types.js";
import { policyRefused, toolCall, type AuditEvent } from "../audit/events.js";
import type { ToolOrigin } from "./fast-path.js";
import { WireError, wire } from "./wire-error.js";

/** The part of the SDK's request context the gateway uses. */
export type ExtraLike = { signal: AbortSignal; sendNotification: (n: Notification) => Promise<void>; _meta?: { progressToken?: string | number } };

export interface ToolCallHost {
  /** Waits until the tools catalog is settled for the server `name` comes from (or as long as a list waits). */
  ensureTools(name: string): Promise<void>;
  tools(): { lookup: Map<string, ToolOrigin>; hidden: Map<string, ToolOrigin> };
  forward(server: string, request: Request, extra: ExtraLike): Promise<Result>;
  /** undefined when no audit log is kept (no record is built then). */
  readonly audit: ((event: AuditEvent) => void) | undefined;
  auditArguments(): boolean;
}

type CallRequest = { method: string; params: { name: string; arguments?: Record<string, unknown> } };

export async function callTool(host: ToolCallHost, req: CallRequest, extra: ExtraLike): Promise<Result> {
  await host.ensureTools(req.params.name);
  const { lookup, hidden } = host.tools();
  const name = req.params.name;
  const origin = lookup.get(name);
  if (!origin) {
    const h = hidden.get(name);
    if (h) {
      const rule = `servers.${h.server}.tools`;
      host.audit?.(policyRefused({ server: h.server, what: `tool "${h.original}"`, rule }));
      host.audit?.(toolCall({ server: h.server, tool: h.original, arguments: req.params.arguments ?? {}, outcome: "refused", durationMs: 0, includeArguments: host.auditArguments(), reason: rule }));
      throw wire.invalidParams(`tool "${name}" is not allowed by the policy of server "${h.server}" (tools.allow / tools.deny)`);
    }
    throw wire.invalidParams(`unknown tool "${name}"`);
  }
  const started = Date.now();
  const args = req.params.arguments ?? {};
  let outcome: "ok" | "error" = "ok";
  let reason: string | undefined;
  try {
    const result = await host.forward(origin.server, { method: req.method, params: { ...req.params, name: origin.original } }, extra);
    // Checked here as well as by the SDK's server, so that the audit record says what the client got.
    const checked = CallToolResultSchema.safeParse(result);
    if (!checked.success) {
      reason = "invalid result";
      throw new WireError(ErrorCode.InvalidParams, `Invalid tools/call result: ${checked.error.message}`);
    }
    if (checked.data.isError) outcome = "error";
    return result;
  } catch (err) {
    outcome = "error";
    throw err;
  } finally {
    auditToolCall(host, origin, args, outcome, started, reason);
  }
}

/** The audit record of one call, on either path. */
export function auditToolCall(host: ToolCallHost, origin: ToolOrigin, args: unknown, outcome: "ok" | "error", started: number, reason?: string): void {
  if (!host.audit) return;
  host.audit(toolCall({ server: origin.server, tool: origin.original, arguments: args, outcome, durationMs: Date.now() - started, includeArguments: host.auditArguments(), ...(reason ? { reason } : {}) }));
}
