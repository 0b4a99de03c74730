// Dialling a checked address and joining two sockets: byte counts both ways,
// idle timeout, half-close, and one callback when both are gone.
// Not responsible for deciding where to dial.

import { connect, type NetConnectOpts, type Socket } from "node:net";

/** Dial the addresses in order (IP literals only, so no lookup happens here); the first that connects wins. */
export async function dialFirst(addresses: readonly string[], port: number, timeoutMs: number): Promise<{ socket: Socket; address: string }> {
  let last: Error = new Error("no address to dial");
  for (const address of addresses) {
    try {
      return { socket: await dialOne(address, port, timeoutMs), address };
    } catch (err) {
      last = err as Error;
    }
  }
  throw last;
}

function dialOne(address: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // SECURITY: `address` is the literal the policy checked; net.connect does not resolve it again.
    // Larger stream buffers: fewer pause/resume round trips on bulk transfers.
    const o: NetConnectOpts & { highWaterMark: number } = { host: address, port, allowHalfOpen: true, noDelay: true, highWaterMark: 256 * 1024 };
    const s = connect(o);
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
}

/** Join client and upstream until both are closed; `leftover` (bytes read past the handshake) goes upstream first. */
export function joinSockets(client: Socket, upstream: Socket, leftover: Buffer, idleTimeoutMs: number, done: (r: TunnelResult) => void): void {
  let bytesUp = 0;
  let bytesDown = 0;
  let reason = "closed";
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    client.destroy();
    upstream.destroy();
    done({ bytesUp, bytesDown, reason });
  };
  const idle = () => {
    reason = `idle for ${idleTimeoutMs} ms`;
    finish();
  };
  for (const s of [client, upstream]) {
    s.setTimeout(idleTimeoutMs, idle);
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
  client.on("data", (d: Buffer) => (bytesUp += d.length));
  upstream.on("data", (d: Buffer) => (bytesDown += d.length));
  if (leftover.length > 0) {
    bytesUp += leftover.length;
    upstream.write(leftover);
  }
  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
}
