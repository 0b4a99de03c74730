// `nucleus run` stands in for one server, so its answer to initialize should be
// that server's: its instructions, and only the capabilities it has. The
// client's initialize is held (with everything the client sends after it,
// in order) until the server is up, then answered by the SDK's server with
// the server's instructions and capabilities in place. A lazy server, or one
// that does not come up within its startup timeout, gets the gateway's own
// answer (every capability, no instructions), as before.

import { setTimeout as sleep } from "node:timers/promises";
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { ClientCapabilities, JSONRPCMessage, ServerCapabilities } from "@modelcontextprotocol/sdk/types.js";
import type { Upstream } from "./upstream.js";

/**
 * Holds the client's initialize until `up` is ready (at most `waitMs`; it is
 * started with the capabilities the client declares there), then has `server`
 * answer with the server's instructions and capabilities. Call after connect.
 */
export function mirrorServer(transport: Transport, server: Server, up: Upstream, waitMs: number, redact: (text: string) => string): void {
  holdInitialize(transport, async (params) => {
    up.setClientCapabilities((params.capabilities ?? {}) as ClientCapabilities);
    const ready = up.ready().then(
      () => true,
      () => false, // the upstream logged why; the client gets the gateway's own answer
    );
    if (await Promise.race([ready, sleep(waitMs, false, { ref: false })])) {
      // SECURITY: the server's text, redacted like everything else it sends.
      const instructions = up.instructions();
      answerInitializeAs(server, { capabilities: up.serverCapabilities() ?? {}, instructions: instructions === undefined ? undefined : redact(instructions) });
    }
  });
}

/**
 * Holds the client's `initialize` and what follows it until `prepare` settled
 * (it gets the request's params), then delivers them all in order to the
 * handler already on `transport`. Call after connect.
 */
export function holdInitialize(transport: Transport, prepare: (params: Record<string, unknown>) => Promise<void>): void {
  const next = transport.onmessage;
  let held: Array<[JSONRPCMessage, unknown]> | null = null;
  let done = false;
  transport.onmessage = (message, extra) => {
    if (held) {
      held.push([message, extra]);
      return;
    }
    const m = message as { method?: unknown; params?: unknown; id?: unknown };
    if (done || m.method !== "initialize" || m.id === undefined) {
      next?.call(transport, message, extra);
      return;
    }
    done = true;
    held = [[message, extra]];
    const params = typeof m.params === "object" && m.params !== null ? (m.params as Record<string, unknown>) : {};
    void prepare(params)
      .catch(() => undefined)
      .then(() => {
        const queue = held ?? [];
        held = null;
        for (const [msg, ex] of queue) next?.call(transport, msg, ex as never);
      });
  };
}

/** The gateway's own capabilities narrowed to what `upstream` has (its flags kept: the gateway does list_changed). */
export function narrowCapabilities(gateway: ServerCapabilities, upstream: ServerCapabilities): ServerCapabilities {
  const out: ServerCapabilities = {};
  if (upstream.tools && gateway.tools) out.tools = gateway.tools;
  if (upstream.prompts && gateway.prompts) out.prompts = gateway.prompts;
  if (upstream.resources && gateway.resources) {
    out.resources = { ...gateway.resources, subscribe: Boolean(upstream.resources.subscribe) };
  }
  if (upstream.logging && gateway.logging) out.logging = gateway.logging;
  if (upstream.completions && gateway.completions) out.completions = gateway.completions;
  return out;
}

/**
 * Puts a server's instructions and capabilities into the SDK's server before
 * it answers initialize. The SDK keeps both private and offers no setter after
 * connect; test/integration/gateway-run-init.test.ts fails if that changes.
 */
export function answerInitializeAs(server: Server, upstream: { capabilities: ServerCapabilities; instructions: string | undefined }): void {
  const inner = server as unknown as { _capabilities: ServerCapabilities; _instructions?: string };
  inner._capabilities = narrowCapabilities(inner._capabilities, upstream.capabilities);
  inner._instructions = upstream.instructions;
}
