// Which stream a server→client request (sampling, elicitation, roots) goes out
// on in an HTTP session: the newest client request still in flight whose
// response stream is open — never one whose stream the client dropped (the
// request would be lost there, with the session's GET stream still open).
import { describe, expect, it } from "vitest";
import type { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { TransportSendOptions } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { SessionTransport } from "../../../src/gateway/http/session-transport.js";

/** The SDK transport's surface SessionTransport uses, recording what is sent with which options. */
function fakeInner() {
  const sent: Array<{ message: JSONRPCMessage; options?: TransportSendOptions }> = [];
  const inner = {
    onmessage: undefined as ((m: JSONRPCMessage, extra?: unknown) => void) | undefined,
    onclose: undefined as (() => void) | undefined,
    onerror: undefined as ((e: Error) => void) | undefined,
    sessionId: "s",
    start: async () => {},
    close: async () => {},
    send: async (message: JSONRPCMessage, options?: TransportSendOptions) => void sent.push({ message, options }),
  };
  return { inner, sent };
}

const request = (id: number, method = "tools/call"): JSONRPCMessage => ({ jsonrpc: "2.0", id, method, params: {} });
const sampling: JSONRPCMessage = { jsonrpc: "2.0", id: 900, method: "sampling/createMessage", params: {} };

describe("SessionTransport", () => {
  it("sends a server→client request on the newest open client request's stream", async () => {
    const { inner, sent } = fakeInner();
    const t = new SessionTransport(inner as unknown as StreamableHTTPServerTransport);
    inner.onmessage!(request(1));
    inner.onmessage!(request(2));
    await t.send(sampling);
    expect(sent.at(-1)!.options?.relatedRequestId).toBe(2);
  });

  it("skips a request whose response stream the client dropped, falling back to an older one, then to none", async () => {
    const { inner, sent } = fakeInner();
    const t = new SessionTransport(inner as unknown as StreamableHTTPServerTransport);
    inner.onmessage!(request(1)); // Y: the call that will ask for sampling
    inner.onmessage!(request(2)); // X: a call whose stream the client drops without a cancellation
    t.streamClosed([2]);
    await t.send(sampling);
    expect(sent.at(-1)!.options?.relatedRequestId).toBe(1);
    t.streamClosed([1]);
    await t.send(sampling);
    // No open request stream: the SDK puts it on the session's GET stream.
    expect(sent.at(-1)!.options?.relatedRequestId).toBeUndefined();
  });

  it("forgets answered and cancelled requests", async () => {
    const { inner, sent } = fakeInner();
    const t = new SessionTransport(inner as unknown as StreamableHTTPServerTransport);
    inner.onmessage!(request(1));
    inner.onmessage!(request(2));
    inner.onmessage!(request(3));
    await t.send({ jsonrpc: "2.0", id: 3, result: {} });
    inner.onmessage!({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 2 } });
    await t.send(sampling);
    expect(sent.at(-1)!.options?.relatedRequestId).toBe(1);
  });
});
