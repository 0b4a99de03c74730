// Raw requests to one upstream server on the transport its SDK client uses:
// the fast path for tools/call (fast-path.ts) sends its request as one line and
// takes the matching response before the SDK client sees it. Ids are negative
// integers, which the SDK client (counting up from 0) never uses, so the two
// never collide. Not responsible for deciding what may be sent (the gateway
// does) or for validating results (the caller does).

import { ErrorCode, McpError, type JSONRPCMessage, type Result } from "@modelcontextprotocol/sdk/types.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";

/** One raw request in flight. */
export interface RawCall {
  /** The server's result, or an McpError: its own error, a timeout, or the connection closing. */
  readonly promise: Promise<Result>;
  /** Stop waiting and tell the server (notifications/cancelled); the promise never settles. */
  cancel(reason: string): void;
}

interface Pending {
  resolve(result: Result): void;
  reject(err: McpError): void;
  timer: NodeJS.Timeout;
}

export class RawCalls {
  private nextId = -1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Takes responses to our ids off the transport; everything else goes on to the
   * handler already installed (the SDK client's). Call after the client connected.
   */
  install(): void {
    const next = this.transport.onmessage;
    this.transport.onmessage = (message, extra) => {
      if (this.take(message)) return;
      next?.call(this.transport, message, extra);
    };
  }

  private take(message: JSONRPCMessage): boolean {
    const m = message as { id?: unknown; method?: unknown; result?: unknown; error?: unknown };
    if (typeof m.id !== "number" || m.id >= 0 || m.method !== undefined) return false;
    const p = this.pending.get(m.id);
    // SECURITY: a response to an id we are not waiting for (late, after a timeout or
    // cancel, or made up by a hostile server) is dropped, never delivered anywhere.
    if (!p) return true;
    this.settle(m.id);
    if (m.error !== undefined) {
      // (The transport checked the envelope: error has a numeric code and a string message.)
      const e = m.error as { code: number; message: string; data?: unknown };
      p.reject(new McpError(Number.isSafeInteger(e.code) ? e.code : ErrorCode.InternalError, e.message, e.data));
    } else p.resolve(m.result as Result);
    return true;
  }

  call(method: string, params: Record<string, unknown>): RawCall {
    const id = this.nextId--;
    const promise = new Promise<Result>((resolve, reject) => {
      if (this.closed) {
        reject(new McpError(ErrorCode.ConnectionClosed, "Connection closed"));
        return;
      }
      const timer = setTimeout(() => {
        this.settle(id);
        this.sendCancel(id, "Request timed out");
        reject(new McpError(ErrorCode.RequestTimeout, "Request timed out", { timeout: this.timeoutMs }));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.transport.send({ jsonrpc: "2.0", id, method, params }).catch((err: Error) => {
        if (this.settle(id)) reject(new McpError(ErrorCode.ConnectionClosed, `Connection closed: ${err.message}`));
      });
    });
    return {
      promise,
      cancel: (reason) => {
        if (this.settle(id)) this.sendCancel(id, reason);
      },
    };
  }

  /** The connection closed: every call in flight fails at once. */
  closeAll(): void {
    this.closed = true;
    for (const [id, p] of this.pending) {
      this.settle(id);
      p.reject(new McpError(ErrorCode.ConnectionClosed, "Connection closed"));
    }
  }

  get inFlight(): number {
    return this.pending.size;
  }

  private settle(id: number): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    clearTimeout(p.timer);
    this.pending.delete(id);
    return true;
  }

  private sendCancel(id: number, reason: string): void {
    if (this.closed) return;
    this.transport.send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: id, reason } }).catch(() => undefined);
  }
}
