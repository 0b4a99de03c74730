// The host end of a guest agent's control channel: decodes frames from a byte
// stream (a QEMU chardev socket, a Firecracker vsock connection), hands out the
// guest's control messages (checked by guest-messages.ts) and stderr, sends the
// start and shutdown requests, and joins the guest's egress streams to the
// server's proxy (egress-streams.ts). Not responsible for the transport or for
// the VM's lifetime (vm-sandbox.ts ends a VM whose channel was cut).

import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { PassThrough } from "node:stream";
import { encodeFrame, FrameDecoder, FrameType, MAX_FRAME_PAYLOAD, type Frame } from "../../agent/guest/frame.js";
import { EGRESS_CHUNK, EGRESS_WINDOW, MAX_EGRESS_STREAMS, type EgressMux } from "../../agent/guest/egress-mux.js";
import { FIRST_EGRESS_STREAM, STREAM_CONTROL, STREAM_STDERR, type GuestMessage, type HostMessage } from "../../agent/guest/protocol.js";
import { hostEgressMux } from "./egress-streams.js";
import { parseGuestMessage } from "./guest-messages.js";

/**
 * Most bytes the host lets queue toward a guest that does not read. An honest guest can have at
 * most every stream's window plus one chunk of data in flight (64 × (256 + 64) KiB = 20 MiB), a
 * chunk more per stream while a socket pauses, and a few control frames (the start request ≤ 1 MiB).
 */
export const MAX_QUEUED_TO_GUEST = MAX_EGRESS_STREAMS * (EGRESS_WINDOW + 2 * EGRESS_CHUNK) + 4 * MAX_FRAME_PAYLOAD;
/**
 * Most frames queued toward the guest. Small frames cost far more memory than their bytes (each
 * queued write is a Buffer and a write request, ~170 bytes), so a flood of opens each answered by a
 * 9-byte close is bounded by count: 256 Ki frames is ~45 MiB of heap at worst.
 */
export const MAX_QUEUED_FRAMES = 256 * 1024;
/** The server's stderr held for a reader that does not keep up; past it stderr is dropped. */
export const MAX_STDERR_BUFFERED = 1024 * 1024;

export class ControlChannel extends EventEmitter<{ message: [GuestMessage]; error: [Error]; warning: [Error]; close: [] }> {
  /** The server's stderr as relayed by the agent. */
  readonly stderr = new PassThrough();
  private readonly decoder = new FrameDecoder();
  /** The first message of each known type (hello, started, exit, ...): at most five, each checked. */
  private readonly seen = new Map<GuestMessage["t"], GuestMessage>();
  /** Why the channel was cut, when the guest broke the protocol. */
  protocolError: Error | null = null;
  /** Egress streams; without `egressSocket` every stream the guest opens is refused. */
  private readonly egress: EgressMux;
  /** Frames written to the socket and not yet flushed. */
  private queuedFrames = 0;
  private readonly flushed = () => void this.queuedFrames--;
  /** Bytes of the server's stderr dropped because nobody read them. */
  stderrDropped = 0;

  /** `egressSocket`: this server's egress proxy socket (allowlist servers), or null. */
  constructor(
    private readonly socket: Duplex,
    egressSocket: string | null = null,
  ) {
    super();
    this.egress = hostEgressMux({
      write: (frame) => this.write(frame),
      proxySocket: egressSocket,
      onViolation: (message, fatal) => {
        const err = new Error(`the guest agent broke the egress protocol: ${message}`);
        if (fatal) this.cut(err);
        else this.emit("warning", err);
      },
    });
    socket.on("drain", () => this.egress.drained());
    // SECURITY: the guest is untrusted. A protocol error must never become an
    // unhandled 'error' event (which would crash the gateway): it is recorded,
    // logged by listeners if any, and the channel is cut.
    this.on("error", (err) => {
      this.protocolError ??= err;
    });
    socket.on("data", (chunk: Buffer) => {
      let frames;
      try {
        frames = this.decoder.push(chunk);
      } catch (err) {
        // SECURITY: a guest that breaks the framing is not trusted further.
        return this.cut(new Error(`the guest agent broke the control protocol: ${(err as Error).message}`));
      }
      for (const f of frames) {
        if (socket.destroyed) return;
        this.onFrame(f);
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.egress.closeAll();
      this.stderr.end();
      this.emit("close");
    });
  }

  private onFrame(f: Frame): void {
    if (f.stream >= FIRST_EGRESS_STREAM) return this.egress.handle(f);
    if (f.stream === STREAM_STDERR && f.type === FrameType.data) return this.onStderr(f.payload);
    if (f.stream !== STREAM_CONTROL || f.type !== FrameType.control) {
      // SECURITY: a missing rule means deny: the agent sends nothing else below the egress streams.
      return this.cut(new Error(`the guest agent broke the control protocol: a frame of type ${f.type} on stream ${f.stream}`));
    }
    let msg: GuestMessage;
    try {
      // SECURITY: only the protocol's message types, each with its fields checked, are kept or
      // handed on; `seen` therefore holds at most one small message per type.
      msg = parseGuestMessage(f.payload);
    } catch (err) {
      return this.cut(err as Error);
    }
    if (!this.seen.has(msg.t)) this.seen.set(msg.t, msg);
    this.emit("message", msg);
  }

  private onStderr(payload: Buffer): void {
    // SECURITY: nobody may be reading yet (before "started") or the reader may be slow; the guest
    // can send stderr far faster. Past the cap it is dropped (reported once): the server keeps
    // running, only its diagnostics are lost, and the host's memory stays bounded.
    if (this.stderr.writableLength + payload.length > MAX_STDERR_BUFFERED) {
      if (this.stderrDropped === 0) {
        this.emit("warning", new Error(`the server's stderr is not being read (over ${MAX_STDERR_BUFFERED} bytes held); dropping what does not fit, further drops are not reported`));
      }
      this.stderrDropped += payload.length;
      return;
    }
    this.stderr.write(payload);
  }

  /** Writes one frame; cuts the channel when the guest has stopped reading. False when congested. */
  private write(frame: Buffer): boolean {
    if (this.socket.destroyed) return true;
    this.queuedFrames++;
    const ok = this.socket.write(frame, this.flushed);
    // SECURITY: the guest decides how much the host sends it (each `open` is answered) and whether
    // it reads. Pausing our reading instead would deadlock an agent blocked in a synchronous write.
    const queued = this.socket.writableLength;
    if (queued > MAX_QUEUED_TO_GUEST || this.queuedFrames > MAX_QUEUED_FRAMES) {
      this.cut(new Error(`the guest stopped reading its control channel: ${queued} bytes in ${this.queuedFrames} frames queued (limits ${MAX_QUEUED_TO_GUEST} bytes, ${MAX_QUEUED_FRAMES} frames)`));
    }
    return ok;
  }

  /** Records why and cuts the channel (the first reason wins). */
  private cut(err: Error): void {
    this.emit("error", err);
    this.socket.destroy();
  }

  send(msg: HostMessage): void {
    this.write(encodeFrame(STREAM_CONTROL, FrameType.control, JSON.stringify(msg)));
  }

  /** The first message of type `t` (already received or still to come); rejects when the channel closes first. */
  waitFor<T extends GuestMessage["t"]>(t: T, timeoutMs: number): Promise<Extract<GuestMessage, { t: T }>> {
    const early = this.seen.get(t);
    if (early) return Promise.resolve(early as Extract<GuestMessage, { t: T }>);
    if (this.closed) return Promise.reject(this.closedError(t));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`the guest agent sent no "${t}" within ${timeoutMs} ms`)), timeoutMs);
      const onMsg = (m: GuestMessage) => {
        if (m.t === t) done(null, m as Extract<GuestMessage, { t: T }>);
        else if (m.t === "error") done(new Error(`the guest agent reported: ${m.message}`));
      };
      const onClose = () => done(this.closedError(t));
      const done = (err: Error | null, m?: Extract<GuestMessage, { t: T }>) => {
        clearTimeout(timer);
        this.off("message", onMsg);
        this.off("close", onClose);
        if (err) reject(err);
        else resolve(m!);
      };
      this.on("message", onMsg);
      this.on("close", onClose);
    });
  }

  private closedError(t: string): Error {
    const why = this.protocolError ? `: ${this.protocolError.message}` : "";
    return new Error(`the control channel closed before the guest agent sent "${t}"${why}`);
  }

  /** The server's exit as reported by the agent, if it was. */
  get reportedExit(): Extract<GuestMessage, { t: "exit" }> | null {
    return (this.seen.get("exit") as Extract<GuestMessage, { t: "exit" }> | undefined) ?? null;
  }

  /** The channel is gone (closed by either side, or cut). */
  get closed(): boolean {
    return this.socket.destroyed;
  }

  close(): void {
    this.socket.destroy();
  }
}
