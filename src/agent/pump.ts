// Moves bytes from a socket we dialled to another socket with no per-chunk
// allocation: the source reads straight into one reused buffer (net's `onread`)
// and each read is written on at once. Used by the agent and the host proxy.
// Not responsible for half-close, timeouts or errors (the caller's sockets own those).
// No imports beyond Node types: runs inside the sandbox too.

import type { Socket } from "node:net";

/**
 * Read sizes: a pump starts small and doubles its buffer each time a read fills
 * it, up to the maximum. Bulk transfers batch what queued up while the relay
 * waited for the CPU; a connection that carries little keeps 64 KiB.
 */
export const PUMP_FIRST_BUFFER_BYTES = 64 * 1024;
export const PUMP_MAX_BUFFER_BYTES = 1024 * 1024;

export interface Pump {
  /** Give as `onread` to net.connect: the socket then reads into the pump's buffer. */
  readonly onread: { buffer: () => Buffer; callback: (n: number, buf: Buffer) => boolean };
  /**
   * Start forwarding to `sink`. The source must have been created with `onread`
   * and kept paused until now; this resumes it.
   */
  start(source: Socket, sink: Socket): void;
  /**
   * Hand a copy of the first `n` bytes the source delivers (fewer if it ends
   * first) to `seen`, once. Call before `start`.
   */
  watchFirst(n: number, seen: (first: Buffer) => void): void;
}

export function createPump(maxBytes = PUMP_MAX_BUFFER_BYTES): Pump {
  let buffer = Buffer.allocUnsafe(Math.min(PUMP_FIRST_BUFFER_BYTES, maxBytes));
  let grow = false;
  let source: Socket | null = null;
  let sink: Socket | null = null;
  let waiting = false;
  // Write callbacks come in order; once every write issued has called back, none
  // of them holds the buffer any more (whatever else the sink may have queued).
  let issued = 0;
  let flushed = 0;
  let watch: { want: number; got: Buffer[]; size: number; seen: (first: Buffer) => void } | null = null;
  const endWatch = () => {
    if (!watch) return;
    const w = watch;
    watch = null;
    w.seen(Buffer.concat(w.got, w.size));
  };
  const written = () => {
    flushed++;
    if (!waiting || flushed !== issued || !source) return;
    waiting = false;
    if (!source.destroyed) source.resume();
  };
  return {
    onread: {
      // Asked for after every read: the buffer the next read goes into.
      buffer: () => {
        if (grow) {
          grow = false;
          buffer = Buffer.allocUnsafe(Math.min(buffer.length * 2, maxBytes));
        }
        return buffer;
      },
      callback: (n, buf) => {
        if (!sink || sink.destroyed) return false;
        if (n === buf.length && buf.length < maxBytes) grow = true;
        if (watch) {
          const take = Math.min(n, watch.want - watch.size);
          watch.got.push(Buffer.from(buf.subarray(0, take)));
          watch.size += take;
          if (watch.size >= watch.want) endWatch();
        }
        issued++;
        sink.write(buf.subarray(0, n), written);
        // Written to the kernel at once (the usual case): the buffer is free again.
        if (sink.writableLength === 0) return true;
        // SECURITY (memory): the write still holds this buffer; read nothing more
        // until it is flushed, so a connection holds one buffer at most.
        waiting = true;
        return false;
      },
    },
    start(src, dst) {
      source = src;
      sink = dst;
      if (watch) {
        src.once("end", endWatch);
        src.once("close", endWatch);
      }
      src.resume();
    },
    watchFirst(n, seen) {
      watch = { want: n, got: [], size: 0, seen };
    },
  };
}
