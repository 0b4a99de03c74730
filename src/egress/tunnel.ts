// Dialling a checked address and joining two sockets: byte counts both ways,
// idle timeout, half-close, an optional check of the client's first bytes, and
// one callback when both are gone.
// Not responsible for deciding where to dial.

import { connect, type NetConnectOpts, type Socket } from "node:net";
import { createPump, type Pump } from "../agent/pump.js";
import type { TlsGate } from "./tls-gate.js";
import { isHelloRetryRequest, SERVER_HELLO_PREFIX_BYTES } from "./tls-sni.js";

/** Dial the addresses in order (IP literals only, so no lookup happens here); the first that connects wins. */
export async function dialFirst(addresses: readonly string[], port: number, timeoutMs: number): Promise<{ socket: Socket; address: string; pump: Pump }> {
  let last: Error = new Error("no address to dial");
  for (const address of addresses) {
    try {
      const pump = createPump();
      return { socket: await dialOne(address, port, timeoutMs, pump), address, pump };
    } catch (err) {
      last = err as Error;
    }
  }
  throw last;
}

function dialOne(address: string, port: number, timeoutMs: number, pump: Pump): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // SECURITY: `address` is the literal the policy checked; net.connect does not resolve it again.
    // Larger stream buffers: fewer pause/resume round trips on bulk transfers.
    const o: NetConnectOpts & { highWaterMark: number } = { host: address, port, allowHalfOpen: true, noDelay: true, highWaterMark: 256 * 1024, onread: pump.onread };
    const s = connect(o);
    s.pause(); // read nothing until the tunnel is joined
    const timer = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error(`connecting to ${address} port ${port} timed out after ${timeoutMs} ms`), { code: "ETIMEDOUT" }));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(timer);
      s.removeAllListeners("error");
      resolve(s);
    });
    s.once("error", (err) => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    });
  });
}

export interface TunnelResult {
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly reason: string;
  /** Set when the first-bytes check refused the tunnel (bytesUp: what it had let through). */
  readonly refused?: string;
}

export interface TunnelOptions {
  /** Bytes read past the handshake: they go upstream first. */
  readonly leftover: Buffer;
  /** Bytes of the client's handshake (read before the tunnel), which are not traffic. */
  readonly handshakeBytes: number;
  readonly idleTimeoutMs: number;
  /** Judge the client's first bytes before any goes upstream (the TLS server name check). */
  readonly gate?: TlsGate;
}

/**
 * Join client and upstream until both are closed. Upstream was dialled with
 * `pump.onread` and is paused; its bytes flow to the client at once, while the
 * client's wait for the gate. Byte counts come from the sockets at the end, so
 * nothing runs per chunk but the copy itself.
 */
export function joinSockets(client: Socket, upstream: Socket, pump: Pump, opts: TunnelOptions, done: (r: TunnelResult) => void): void {
  let reason = "closed";
  let refused: string | undefined;
  let finished = false;
  // Until the gate opens the way up, only what it let through has gone upstream.
  let opened = false;
  let sentBeforeOpen = 0;
  const finish = () => {
    if (finished) return;
    finished = true;
    client.destroy();
    upstream.destroy();
    const bytesUp = opened ? Math.max(0, client.bytesRead - opts.handshakeBytes) : sentBeforeOpen;
    done({ bytesUp, bytesDown: upstream.bytesRead, reason, ...(refused === undefined ? {} : { refused }) });
  };
  const idle = () => {
    reason = `idle for ${opts.idleTimeoutMs} ms`;
    finish();
  };
  for (const s of [client, upstream]) {
    s.setTimeout(opts.idleTimeoutMs, idle);
    s.on("error", (err) => {
      reason = `closed on error: ${(err as NodeJS.ErrnoException).code ?? err.message}`;
      finish();
    });
    s.once("close", () => {
      const other = s === client ? upstream : client;
      if (other.destroyed) finish();
      // Flush what is left, then FIN. A peer that never closes its side does not keep
      // the tunnel (and a connection slot): it goes a second after the flush.
      else other.end(() => setTimeout(finish, 1000).unref());
    });
  }
  // Downstream: read into the pump's buffer, written straight to the client. With a
  // gate, the server's first bytes are looked at too: a HelloRetryRequest?
  let serverFirst: Promise<Buffer> | null = null;
  if (opts.gate) serverFirst = new Promise((r) => pump.watchFirst(SERVER_HELLO_PREFIX_BYTES, r));
  upstream.once("end", () => client.end());
  pump.start(upstream, client);
  // Upstream: the client's socket was accepted by a server, so it cannot take `onread`; pipe it.
  const open = (first: Buffer) => {
    if (finished) return;
    opened = true;
    if (first.length > 0) upstream.write(first);
    client.pipe(upstream);
  };
  if (!opts.gate) return open(opts.leftover);
  const gate = opts.gate;
  const refuse = (why: string) => {
    refused = reason = why;
    finish();
  };
  const judge = async () => {
    const v = await gate.first(client, opts.leftover);
    if (!v.pass) return refuse(v.reason);
    if (!v.clientHello) return open(v.bytes);
    // The ClientHello goes up; the client's next bytes wait for the server's answer.
    upstream.write(v.bytes);
    sentBeforeOpen += v.bytes.length;
    const answer = await serverFirst!;
    if (finished) return;
    if (!isHelloRetryRequest(answer)) return open(v.rest);
    // (What the client sent after its first ClientHello is judged as the retried one.)
    const retried = await gate.retried(client, v.rest);
    if (!retried.pass) return refuse(retried.reason);
    open(Buffer.concat([retried.bytes, retried.rest]));
  };
  judge().catch((err: Error) => refuse(`the first bytes could not be checked: ${err.message}`));
}
