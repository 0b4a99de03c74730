// A bounded, promise-based reader over a socket for the proxy's handshakes
// (HTTP head, SOCKS5, pin line). Never buffers more than its cap: a hostile
// peer's endless header is cut off. Not responsible for timeouts or parsing.

import type { Socket } from "node:net";

export class HandshakeError extends Error {
  constructor(
    message: string,
    readonly kind: "too-large" | "closed" | "malformed",
  ) {
    super(message);
  }
}

export class SocketReader {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private closed = false;
  private total = 0;
  private readonly onData = (chunk: Buffer) => {
    this.total += chunk.length;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    // SECURITY: bound memory even while nobody is waiting.
    if (this.buf.length > this.cap) this.socket.pause();
    this.wake?.();
  };
  private readonly onEnd = () => {
    this.closed = true;
    this.wake?.();
  };

  constructor(
    private readonly socket: Socket,
    private readonly cap: number,
  ) {
    socket.on("data", this.onData);
    socket.once("end", this.onEnd);
    socket.once("close", this.onEnd);
  }

  /** Every byte this reader has been given, handshake and beyond. */
  get received(): number {
    return this.total;
  }

  /** Peek at the first bytes once at least `n` have arrived. */
  async peek(n: number): Promise<Buffer> {
    await this.waitFor(() => this.buf.length >= n);
    return this.buf.subarray(0, n);
  }

  async exact(n: number): Promise<Buffer> {
    await this.waitFor(() => this.buf.length >= n);
    return this.take(n);
  }

  /** Bytes up to and including `delim`, which must arrive within `max` bytes. */
  async until(delim: string, max: number, totalLimit = max): Promise<Buffer> {
    const d = Buffer.from(delim, "latin1");
    let at = -1;
    await this.waitFor(() => {
      at = this.buf.indexOf(d);
      if (at < 0 && this.buf.length >= max) throw new HandshakeError(`the request head exceeds ${totalLimit} bytes`, "too-large");
      return at >= 0;
    });
    if (at + d.length > max) throw new HandshakeError(`the request head exceeds ${totalLimit} bytes`, "too-large");
    return this.take(at + d.length);
  }

  /** Stop reading; returns bytes received beyond the handshake (to forward as-is). */
  detach(): Buffer {
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
    this.socket.off("close", this.onEnd);
    this.socket.pause();
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    if (this.buf.length <= this.cap) this.socket.resume();
    return Buffer.from(out);
  }

  private waitFor(ready: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        try {
          if (ready()) {
            this.wake = null;
            resolve();
          } else if (this.closed) {
            this.wake = null;
            reject(new HandshakeError("the client closed the connection during the handshake", "closed"));
          }
        } catch (err) {
          this.wake = null;
          reject(err);
        }
      };
      this.wake = check;
      check();
    });
  }
}
