// The control channel over a bridge process's pipes (Firecracker guests: socat
// between a vsock port and its stdio): bounded writes with backpressure, and a
// fresh bridge when the host's connection ends before the server started (a
// snapshot restore resets every vsock connection; listeners survive).
// Not responsible for framing or for what the frames mean. No imports outside src/agent/guest.

import type { Readable, Writable } from "node:stream";

/**
 * Most bytes ever queued toward the bridge. Every writer respects backpressure
 * (egress streams pause, stderr pauses), so reaching this means the host stopped
 * reading: the agent fails loudly instead of growing without bound.
 */
export const CONTROL_MAX_BUFFERED = 8 * 1024 * 1024;

export interface Bridge {
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** Ends the bridge process (its connection is gone). */
  kill(): void;
}

export interface ControlTransport {
  /** Writes one frame; false when the channel is congested (wait for `onDrain`). Throws past the bound. */
  write(buf: Buffer): boolean;
  /** `cb` runs whenever a congested channel accepts writes again. */
  onDrain(cb: () => void): void;
  /** Calls `onData` per chunk until the host goes away, then `onEnd` once (per connection). */
  listen(onData: (chunk: Buffer) => void, onEnd: () => void): void;
  /** vsock only: wait for a new host connection (the old one ended). Absent: the channel cannot come back. */
  readonly relisten?: () => void;
}

export class PipeControl implements ControlTransport {
  private bridge: Bridge;
  private readonly drainCbs: (() => void)[] = [];
  private listener: { onData: (chunk: Buffer) => void; onEnd: () => void } | null = null;

  constructor(private readonly spawnBridge: () => Bridge) {
    this.bridge = this.attach(spawnBridge());
  }

  write(buf: Buffer): boolean {
    const w = this.bridge.stdin;
    if (w.destroyed || w.writableEnded) return true; // the connection is gone; its bytes have no reader
    // SECURITY (availability): never buffer without bound toward a host that does not read.
    if (w.writableLength + buf.length > CONTROL_MAX_BUFFERED) {
      throw new Error(
        `the control channel to the host has ${w.writableLength} bytes queued, and ${buf.length} more would exceed its ${CONTROL_MAX_BUFFERED}-byte bound (the host stopped reading)`,
      );
    }
    return w.write(buf);
  }

  onDrain(cb: () => void): void {
    this.drainCbs.push(cb);
  }

  listen(onData: (chunk: Buffer) => void, onEnd: () => void): void {
    this.listener = { onData, onEnd };
    this.wire(this.bridge);
  }

  readonly relisten = (): void => {
    const old = this.bridge;
    old.stdout.removeAllListeners("data");
    old.kill();
    this.bridge = this.attach(this.spawnBridge());
    if (this.listener) this.wire(this.bridge);
  };

  private attach(b: Bridge): Bridge {
    b.stdin.on("error", () => {}); // EPIPE once the bridge is gone; its end is reported by stdout
    b.stdin.on("drain", () => {
      if (b === this.bridge) for (const cb of this.drainCbs) cb();
    });
    return b;
  }

  private wire(b: Bridge): void {
    const l = this.listener!;
    let ended = false;
    const end = () => {
      if (ended || b !== this.bridge) return;
      ended = true;
      l.onEnd();
    };
    b.stdout.on("data", (chunk: Buffer) => {
      if (b === this.bridge) l.onData(chunk);
    });
    b.stdout.once("end", end);
    b.stdout.once("close", end);
    b.stdout.on("error", end);
  }
}
