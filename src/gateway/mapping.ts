// Pure mappings between what a server says and what the client and the audit
// log see: notifications with exposed names and URIs, lifecycle events as
// audit records. Not responsible for sending anything.

import type { Notification } from "@modelcontextprotocol/sdk/types.js";
import { digestOf, serverExit, serverOom, serverRestart, serverStart, type AuditEvent } from "../audit/events.js";
import type { ServerSpec } from "../config/spec.js";
import { exposedUri } from "./names.js";
import type { LifecycleEvent } from "./upstream.js";

/** Notifications a server may send on to the client (list_changed, progress and cancelled are handled apart). */
const PASSED_ON = new Set(["notifications/message", "notifications/resources/updated", "notifications/elicitation/complete"]);

/**
 * A server's notification as the client sees it: log messages name the server, updated URIs are exposed;
 * null for anything else (SECURITY: a server's made-up notification method reaches no client).
 */
export function exposeNotification(server: string, n: Notification, prefix: boolean): Notification | null {
  if (!PASSED_ON.has(n.method)) return null;
  const params = (n.params ?? {}) as Record<string, unknown>;
  if (n.method === "notifications/message" && prefix) {
    const logger = typeof params.logger === "string" ? `${server}/${params.logger}` : server;
    return { method: n.method, params: { ...params, logger } };
  }
  if (n.method === "notifications/resources/updated" && typeof params.uri === "string") {
    return { method: n.method, params: { ...params, uri: exposedUri(server, params.uri, prefix) } };
  }
  return n;
}

type ContentItem = { type?: unknown; uri?: unknown; resource?: { uri?: unknown } };

/** One content item with its resource URI exposed (a resource link or an embedded resource). */
function exposeItem(server: string, item: unknown, prefix: boolean): void {
  const c = item as ContentItem | null;
  if (!c || typeof c !== "object") return;
  if (c.type === "resource_link" && typeof c.uri === "string") c.uri = exposedUri(server, c.uri, prefix);
  if (c.type === "resource" && c.resource && typeof c.resource === "object" && typeof c.resource.uri === "string") {
    c.resource.uri = exposedUri(server, c.resource.uri, prefix);
  }
}

/**
 * SECURITY: the resource URIs inside a tools/call or prompts/get result named in the server's own namespace
 * (as resources/read contents are): a server cannot present content as another server's resource, nor steer
 * the client into reading one (nucleus://b/… from server a becomes nucleus://a/nucleus://b/…, routed to a).
 * Changes `result` in place (it is the gateway's own copy) and returns it.
 */
export function exposeResultUris<T>(server: string, method: string, result: T, prefix: boolean): T {
  if (!prefix || !result || typeof result !== "object") return result;
  const r = result as { content?: unknown; messages?: unknown };
  if (method === "tools/call" && Array.isArray(r.content)) for (const c of r.content) exposeItem(server, c, prefix);
  if (method === "prompts/get" && Array.isArray(r.messages)) {
    for (const m of r.messages) exposeItem(server, (m as { content?: unknown } | null)?.content, prefix);
  }
  return result;
}

/** The audit records for one lifecycle event of a server (start, exit, OOM, restart). */
export function lifecycleAudit(e: LifecycleEvent, spec: ServerSpec | undefined): AuditEvent[] {
  if (e.type === "server.start") {
    const ev = serverStart({ server: e.server, backend: e.backend, policyDigest: digestOf(spec) });
    // The pid lets an operator match the record to the process (details hold no secrets).
    return [{ ...ev, fields: { ...ev.fields, details: e.details } }];
  }
  if (e.type === "server.exit") {
    const exit = serverExit({ server: e.server, cause: e.cause, code: e.code, signal: e.signal });
    return e.cause === "oom" ? [exit, serverOom({ server: e.server, memoryMiB: spec?.limits.memoryMiB })] : [exit];
  }
  return [serverRestart({ server: e.server, attempt: e.attempt, delayMs: e.delayMs })];
}
