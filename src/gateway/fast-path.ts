// The fast path for the most frequent request, tools/call. A client's call to
// a tool that the settled catalog offers, on a server that is ready, without a
// progress token, is taken off the downstream transport before the SDK's
// server sees it and sent to the server as one raw request (raw-calls.ts).
// Everything the normal path checks is kept: the name lookup (a hidden or
// unknown tool never takes this path), the server's result validated as a
// CallToolResult, secrets redacted from results and errors, the audit record,
// the request timeout, cancellation both ways, and a crash failing the call at
// once. What it skips is the SDK's per-request machinery on both sides, most
// of the gateway's own cost per call (see bench/RESULTS.md). Anything else —
// other methods, progress, a server not ready, an odd shape — takes the normal
// path, which answers it fully (errors included).

import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { CallToolResultSchema, ErrorCode, type JSONRPCMessage, type Result } from "@modelcontextprotocol/sdk/types.js";
import type { RawCall } from "./raw-calls.js";
import type { Upstream } from "./upstream.js";
import { WireError } from "./wire-error.js";

export interface ToolOrigin {
  readonly server: string;
  readonly original: string;
}

/** What the fast path needs from the gateway. */
export interface FastPathHost {
  /** The origin of an offered tool when the catalog is settled (every server ready and listed); else null. */
  resolveTool(name: string): ToolOrigin | null;
  upstream(server: string): Upstream | undefined;
  /** Redaction of everything from `server` before the client sees it. */
  out<T>(server: string, value: T): T;
  /** A checked result's resource URIs put in `server`'s namespace (mapping.ts exposeResultUris). */
  exposeUris<T>(server: string, result: T): T;
  /** The audit record of one call. */
  audit(origin: ToolOrigin, args: unknown, outcome: "ok" | "error", startedMs: number, reason?: string): void;
}

type RequestId = string | number;
type CallParams = { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> };

/** Chains the fast path before the handler already on `transport` (the SDK server's): call after connect. */
export function installFastPath(transport: Transport, host: FastPathHost): void {
  const inFlight = new Map<RequestId, { call: RawCall; origin: ToolOrigin; args: unknown; started: number }>();
  const next = transport.onmessage;

  const send = (message: JSONRPCMessage): void => {
    // A client that went away is not an error of the call: the answer is simply not delivered.
    transport.send(message).catch(() => undefined);
  };

  const take = (message: JSONRPCMessage): boolean => {
    const m = message as { id?: unknown; method?: unknown; params?: unknown };
    if (m.method === "notifications/cancelled") return cancel(m.params);
    if (m.method !== "tools/call" || (typeof m.id !== "string" && typeof m.id !== "number")) return false;
    const id = m.id;
    const params = eligible(m.params);
    // (A client reusing the id of a call in flight gets the normal path's answer.)
    if (!params || inFlight.has(id)) return false;
    const origin = host.resolveTool(params.name);
    if (!origin) return false;
    const call = host.upstream(origin.server)?.rawRequest("tools/call", { ...params, name: origin.original });
    if (!call) return false;
    const args = params.arguments ?? {};
    const entry = { call, origin, args, started: Date.now() };
    inFlight.set(id, entry);
    const settle = (respond: () => void): void => {
      if (inFlight.get(id) !== entry) return;
      inFlight.delete(id);
      try {
        respond();
      } catch {
        // Whatever a hostile answer makes throw here (redaction of a pathological value, a
        // validator) fails this call, as the SDK fails a handler that throws: never the gateway.
        host.audit(origin, args, "error", entry.started, "internal error");
        send({ jsonrpc: "2.0", id, error: { code: ErrorCode.InternalError, message: "Internal error" } });
      }
    };
    call.promise.then(
      (result) => settle(() => answer(id, origin, args, entry.started, result)),
      (err: unknown) =>
        settle(() => {
          // SECURITY: a server's error text and data are redacted like its results.
          const error = wireError(err, (v) => host.out(origin.server, v));
          host.audit(origin, args, "error", entry.started);
          send({ jsonrpc: "2.0", id, error });
        }),
    );
    return true;
  };

  const answer = (id: RequestId, origin: ToolOrigin, args: unknown, started: number, result: Result): void => {
    // SECURITY: redacted first, then checked as the normal path checks it: a hostile
    // server's malformed result never reaches the client.
    const checked = CallToolResultSchema.safeParse(host.out(origin.server, result));
    if (!checked.success) {
      host.audit(origin, args, "error", started, "invalid result");
      send({ jsonrpc: "2.0", id, error: { code: ErrorCode.InvalidParams, message: `Invalid tools/call result: ${checked.error.message}` } });
      return;
    }
    host.audit(origin, args, checked.data.isError ? "error" : "ok", started);
    send({ jsonrpc: "2.0", id, result: host.exposeUris(origin.server, checked.data) });
  };

  const cancel = (params: unknown): boolean => {
    const p = params as { requestId?: unknown; reason?: unknown } | undefined;
    const id = p?.requestId;
    if (typeof id !== "string" && typeof id !== "number") return false;
    const entry = inFlight.get(id);
    if (!entry) return false;
    inFlight.delete(id);
    // A cancelled request is not answered (as the SDK does); the server hears of it.
    const reason = typeof p?.reason === "string" && p.reason.length <= 1000 ? p.reason : "cancelled by the client";
    entry.call.cancel(reason);
    host.audit(entry.origin, entry.args, "error", entry.started, "cancelled");
    return true;
  };

  transport.onmessage = (message, extra) => {
    let taken = false;
    try {
      taken = take(message);
    } catch {
      // (A hostile catalog entry the lookup trips on: the normal path answers with an error.)
      taken = false;
    }
    if (!taken) next?.call(transport, message, extra);
  };
}

/** The params of a tools/call the fast path may take; null sends it to the normal path. */
function eligible(params: unknown): CallParams | null {
  if (!isPlainObject(params)) return null;
  for (const key of Object.keys(params)) if (key !== "name" && key !== "arguments" && key !== "_meta") return null;
  if (typeof params.name !== "string") return null;
  if (params.arguments !== undefined && !isPlainObject(params.arguments)) return null;
  // Progress is relayed by the normal path (it maps tokens and orders progress before the result).
  if (params._meta !== undefined && (!isPlainObject(params._meta) || "progressToken" in params._meta)) return null;
  return params as CallParams;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** An error as the normal path sends it (the SDK's rules: a safe integer code, data only when present). */
function wireError(err: unknown, redact: <T>(v: T) => T): { code: number; message: string; data?: unknown } {
  const e = err instanceof WireError ? err : new WireError(ErrorCode.InternalError, err instanceof Error ? err.message : "Internal error");
  const code = Number.isSafeInteger(e.code) ? e.code : ErrorCode.InternalError;
  const message = redact(e.message);
  return e.data === undefined ? { code, message } : { code, message, data: redact(e.data) };
}
