// A Transport around the SDK's StreamableHTTPServerTransport for one MCP
// session. It sends a server→client request (sampling, elicitation, roots) on
// the SSE stream of an in-flight client request when the gateway names none, so
// a client that never opens the optional GET stream (or has not opened it yet)
// still receives it instead of the request being dropped. Not responsible for
// HTTP checks or for session bookkeeping.

import type { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { Transport, TransportSendOptions } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type MessageExtraInfo,
  type RequestId,
} from "@modelcontextprotocol/sdk/types.js";

/** Bound on tracked client requests (the SDK itself bounds nothing here). */
const MAX_TRACKED = 1024;

export class SessionTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined;
  /** Client requests the gateway has not answered yet, oldest first. */
  private readonly inflight: RequestId[] = [];

  constructor(readonly inner: StreamableHTTPServerTransport) {
    inner.onmessage = (message, extra) => {
      if (isJSONRPCRequest(message)) {
        this.inflight.push(message.id);
        if (this.inflight.length > MAX_TRACKED) this.inflight.shift();
      } else if (isJSONRPCNotification(message) && message.method === "notifications/cancelled") {
        const id = (message.params as { requestId?: RequestId } | undefined)?.requestId;
        if (id !== undefined) this.forget(id);
      }
      this.onmessage?.(message, extra);
    };
    inner.onclose = () => this.onclose?.();
    inner.onerror = (err) => this.onerror?.(err);
  }

  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      if (message.id !== undefined) this.forget(message.id);
    } else if (isJSONRPCRequest(message) && options?.relatedRequestId === undefined) {
      // The request belongs to this session's client whichever of its streams carries it;
      // the newest open request's stream is the one most likely to be still open.
      const related = this.inflight.at(-1);
      if (related !== undefined) options = { ...options, relatedRequestId: related };
    }
    return this.inner.send(message, options);
  }

  /**
   * The HTTP response stream that carried these client requests is gone (the client dropped it without a
   * cancellation): a server→client request must not be sent there, where it would be lost.
   */
  streamClosed(ids: readonly RequestId[]): void {
    for (const id of ids) this.forget(id);
  }

  private forget(id: RequestId): void {
    const i = this.inflight.lastIndexOf(id);
    if (i >= 0) this.inflight.splice(i, 1);
  }
}
