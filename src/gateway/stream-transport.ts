// An MCP transport over a pair of byte streams (a sandbox's stdout/stdin, or
// the gateway's own stdin/stdout): newline-delimited JSON-RPC with a bounded
// line buffer, so a hostile peer's endless line or 100 MB frame is cut off
// with an error instead of exhausting memory. Not responsible for spawning.

import type { Readable, Writable } from "node:stream";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Deepest nesting of arrays and objects accepted in one message (no honest MCP message comes close). */
export const MAX_DEPTH = 256;

export interface StreamTransportOptions {
  /** Largest accepted line (one JSON-RPC message), in bytes. */
  readonly maxMessageBytes?: number;
  /**
   * "server": answer unparsable input with JSON-RPC errors (-32700 / -32600), as a
   * server must. "client": report it through onerror only.
   */
  readonly role: "server" | "client";
  /** A name for error messages, e.g. `server "fs"`. */
  readonly peer: string;
  /** Close the transport (and report an error) when a frame is too large; default true. */
  readonly closeOnOversize?: boolean;
}

export class FrameTooLargeError extends Error {
  constructor(peer: string, limit: number) {
    super(`${peer} sent a message larger than ${limit} bytes; the connection was cut`);
    this.name = "FrameTooLargeError";
  }
}

export class StreamTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  sessionId?: string;

  private readonly max: number;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Discarding the rest of an oversized line (when not closing). */
  private skipping = false;
  private closed = false;
  private started = false;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly opts: StreamTransportOptions,
  ) {
    this.max = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  async start(): Promise<void> {
    if (this.started) throw new Error("StreamTransport already started");
    this.started = true;
    this.input.on("data", this.onData);
    this.input.on("end", this.onEnd);
    this.input.on("close", this.onEnd);
    this.input.on("error", this.onStreamError);
    this.output.on("error", this.onStreamError);
  }

  private readonly onData = (chunk: Buffer | string): void => {
    let buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    while (buf.length > 0 && !this.closed) {
      const nl = buf.indexOf(0x0a);
      if (nl === -1) {
        this.append(buf);
        return;
      }
      this.append(buf.subarray(0, nl));
      buf = buf.subarray(nl + 1);
      if (this.skipping) {
        this.skipping = false;
        this.reset();
        continue;
      }
      const line = Buffer.concat(this.chunks, this.buffered).toString("utf8");
      this.reset();
      this.pending.push(line);
    }
    void this.drain();
  };

  /** Complete lines not yet delivered, in order. */
  private pending: string[] = [];
  private delivering = false;
  private drained: Promise<void> = Promise.resolve();

  /**
   * Delivers lines in order. After a notification it yields one microtask: the
   * SDK runs notification handlers (progress) a microtask later but handles a
   * response at once, so a progress notification followed by its response in
   * one chunk would otherwise reach a handler that the response already removed.
   */
  private drain(): Promise<void> {
    // (Streams may emit several 'data' events synchronously: the flag, set and
    // cleared synchronously, is what tells whether a pass is still running.)
    if (!this.delivering) this.drained = this.deliverPending();
    return this.drained;
  }

  private async deliverPending(): Promise<void> {
    this.delivering = true;
    try {
      while (this.pending.length > 0 && !this.closed) {
        const line = this.pending.shift()!;
        if (this.handleLine(line) === "notification") await Promise.resolve();
      }
    } finally {
      this.delivering = false;
    }
  }

  private append(part: Buffer): void {
    if (this.skipping || part.length === 0) return;
    if (this.buffered + part.length > this.max) {
      this.reset();
      const err = new FrameTooLargeError(this.opts.peer, this.max);
      if (this.opts.closeOnOversize ?? true) {
        this.onerror?.(err);
        void this.close();
      } else {
        this.skipping = true;
        this.onerror?.(err);
        if (this.opts.role === "server") this.sendError(null, -32600, `Invalid Request: message larger than ${this.max} bytes`);
      }
      return;
    }
    this.chunks.push(part);
    this.buffered += part.length;
  }

  private reset(): void {
    this.chunks = [];
    this.buffered = 0;
  }

  private handleLine(raw: string): "notification" | "other" {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") return "other";
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.onerror?.(new Error(`${this.opts.peer} sent invalid JSON`));
      if (this.opts.role === "server") this.sendError(null, -32700, "Parse error");
      return "other";
    }
    if (nestedDeeperThan(value, MAX_DEPTH)) {
      // SECURITY: every later step (redaction, validation, serialising) recurses; a hostile
      // peer's 200,000-deep value would overflow the stack there. An answer becomes an error
      // for its request, so the caller hears at once; anything else is dropped.
      const id = idOf(value);
      const msg = `${this.opts.peer} sent a message nested deeper than ${MAX_DEPTH} levels`;
      this.onerror?.(new Error(msg));
      const isAnswer = typeof value === "object" && value !== null && !("method" in value);
      if (this.opts.role === "client" && isAnswer && id !== undefined && id !== null) {
        this.onmessage?.({ jsonrpc: "2.0", id, error: { code: -32603, message: msg } } as JSONRPCMessage);
      } else if (this.opts.role === "server" && id !== undefined) this.sendError(id, -32600, `Invalid Request: nested deeper than ${MAX_DEPTH} levels`);
      return "other";
    }
    const parsed = checkEnvelope(value);
    if (!parsed.success) {
      this.onerror?.(new Error(`${this.opts.peer} sent a message that is not JSON-RPC 2.0`));
      if (this.opts.role === "server") {
        const id = idOf(value);
        // Notifications (no id) get no answer, per JSON-RPC.
        if (id !== undefined) this.sendError(id, -32600, "Invalid Request");
      }
      return "other";
    }
    try {
      this.onmessage?.(parsed.data);
    } catch (err) {
      this.onerror?.(err instanceof Error ? err : new Error(String(err)));
    }
    return "method" in parsed.data && !("id" in parsed.data) ? "notification" : "other";
  }

  private sendError(id: string | number | null, code: number, message: string): void {
    const msg = { jsonrpc: "2.0", id, error: { code, message } };
    // A peer that stopped reading is not worth a crash: the error is simply not delivered.
    this.write(JSON.stringify(msg) + "\n").catch(() => undefined);
  }

  private write(data: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed || this.output.destroyed || this.output.writableEnded) {
        reject(new Error(`connection to ${this.opts.peer} is closed`));
        return;
      }
      const ok = this.output.write(data, (err) => (err ? reject(err) : undefined));
      if (ok) {
        resolve();
        return;
      }
      // Wait for room — or for the end of the stream, which must not leave the sender hanging.
      const done = () => {
        this.output.off("drain", done);
        this.output.off("close", done);
        if (this.output.destroyed && !this.output.writableFinished) reject(new Error(`connection to ${this.opts.peer} is closed`));
        else resolve();
      };
      this.output.once("drain", done);
      this.output.once("close", done);
    });
  }

  async send(message: JSONRPCMessage): Promise<void> {
    await this.write(JSON.stringify(message) + "\n");
  }

  private readonly onEnd = (): void => {
    // Deliver what arrived before the end (a last response) before closing.
    void this.drain().then(() => this.close());
  };

  private readonly onStreamError = (err: Error): void => {
    if ((err as NodeJS.ErrnoException).code === "EPIPE") {
      void this.close();
      return;
    }
    this.onerror?.(err);
  };

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.input.off("data", this.onData);
    this.input.off("end", this.onEnd);
    this.input.off("close", this.onEnd);
    this.reset();
    this.pending = [];
    // Ending our side lets a well-behaved peer see EOF.
    try {
      if (!this.output.writableEnded && this.output !== process.stdout) this.output.end();
    } catch {
      /* ignore */
    }
    this.onclose?.();
  }
}

/**
 * The JSON-RPC 2.0 envelope, checked structurally (the SDK validates each
 * method's params and results with its own schemas); a full schema parse per
 * message would cost more than the rest of the relay.
 */
function checkEnvelope(value: unknown): { success: true; data: JSONRPCMessage } | { success: false } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { success: false };
  const v = value as Record<string, unknown>;
  if (v.jsonrpc !== "2.0") return { success: false };
  const id = v.id;
  const idOk = typeof id === "string" || (typeof id === "number" && Number.isFinite(id));
  const paramsOk = v.params === undefined || (typeof v.params === "object" && v.params !== null);
  if (typeof v.method === "string") {
    if (!paramsOk) return { success: false };
    if ("id" in v && !idOk) return { success: false };
    return { success: true, data: v as JSONRPCMessage };
  }
  if (!idOk && !("error" in v && id === null)) return { success: false };
  if ("result" in v && typeof v.result === "object" && v.result !== null && !("error" in v)) return { success: true, data: v as JSONRPCMessage };
  if ("error" in v && !("result" in v)) {
    const e = v.error as Record<string, unknown> | null;
    if (e && typeof e === "object" && typeof e.code === "number" && typeof e.message === "string") return { success: true, data: v as JSONRPCMessage };
  }
  return { success: false };
}

/** True when `value` nests arrays/objects deeper than `max` (iterative: safe on any depth). */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

function idOf(value: unknown): string | number | null | undefined {
  if (value && typeof value === "object" && "id" in value) {
    const id = (value as { id: unknown }).id;
    if (typeof id === "string" || typeof id === "number") return id;
    return null;
  }
  return undefined;
}
