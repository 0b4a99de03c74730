// Egress connections multiplexed over the control channel, both ends (host and
// guest): one stream id per TCP connection (>= FIRST_EGRESS_STREAM, opened by the
// guest), `data` frames both ways with per-stream flow control, `close` frames
// (empty: half-close; "reset": the sender's socket is gone). Not responsible
// for policy (the host's egress proxy) or for which socket a stream is joined
// to (the caller's `accept`). No imports outside src/agent/guest: runs in the guest.
//
// Flow control: each side may have at most EGRESS_WINDOW bytes of a stream
// unacknowledged; the receiver grants credit (a `control` frame on the stream, a
// u32) once the bytes reached its socket. A sender out of credit, or whose link
// is congested, pauses its socket. A receiver holding more than it granted cuts
// the stream: buffering stays bounded whatever the peer does.

import type { Duplex } from "node:stream";
import { encodeFrame, FrameType, type Frame } from "./frame.js";
import { FIRST_EGRESS_STREAM } from "./protocol.js";

export const EGRESS_WINDOW = 256 * 1024;
/** Largest data frame a sender cuts; also the slack a receiver allows over the window (one socket read). */
export const EGRESS_CHUNK = 64 * 1024;
export const MAX_EGRESS_STREAMS = 64;
/** An open frame's payload (the pin preamble) is short; more is a broken or hostile peer. */
export const MAX_OPEN_PAYLOAD = 512;
/** Payload of a `close` frame whose sender's socket is gone (both directions); empty means half-close. */
export const RESET = "reset";

export interface EgressMuxOptions {
  /** Writes one encoded frame to the channel; false when the channel is congested (call `drained()` later). */
  readonly write: (frame: Buffer) => boolean;
  /**
   * Host only: joins a stream the guest opened to a socket (payload: the open frame's bytes), or
   * returns null to refuse it. The guest never accepts opens.
   */
  readonly accept?: (payload: Buffer) => Duplex | null;
  /** A peer broke the protocol. `fatal`: the caller should cut the whole channel. */
  readonly onViolation: (message: string, fatal: boolean) => void;
}

interface Stream {
  readonly sock: Duplex;
  /** Bytes we may still send before the peer grants more. */
  credit: number;
  /** Bytes received and not yet granted back. */
  held: number;
  /** Bytes written to our socket (flushed) since the last grant. */
  flushed: number;
  sentClose: boolean;
  /** The peer sent `close`: it writes no more. */
  peerEnded: boolean;
}

export class EgressMux {
  private readonly streams = new Map<number, Stream>();
  /** Highest stream id opened so far: ids only grow, so a closed id is never reused. */
  private lastId = FIRST_EGRESS_STREAM - 1;
  private congested = false;

  constructor(private readonly o: EgressMuxOptions) {}

  get size(): number {
    return this.streams.size;
  }

  /** Guest: a new connection; sends the open frame with `payload` (pin preamble or empty). False when refused. */
  open(sock: Duplex, payload: Buffer): boolean {
    if (this.streams.size >= MAX_EGRESS_STREAMS || this.lastId >= 0xfffffffe || payload.length > MAX_OPEN_PAYLOAD) {
      sock.destroy();
      return false;
    }
    const id = ++this.lastId;
    this.send(encodeFrame(id, FrameType.open, payload));
    this.attach(id, sock);
    return true;
  }

  /** A frame on an egress stream (stream >= FIRST_EGRESS_STREAM) from the peer. */
  handle(f: Frame): void {
    const st = this.streams.get(f.stream);
    if (f.type === FrameType.open) return this.onOpen(f);
    if (!st) {
      // A frame for a stream we closed is a race, not an attack; one never opened is.
      if (f.stream > this.lastId) this.o.onViolation(`the peer sent a frame for egress stream ${f.stream}, which was never opened`, true);
      return;
    }
    if (f.type === FrameType.data) {
      st.held += f.payload.length;
      if (st.held > EGRESS_WINDOW + EGRESS_CHUNK) {
        this.o.onViolation(`the peer overran the flow-control window of egress stream ${f.stream}; the stream was cut`, false);
        return this.cut(f.stream, st);
      }
      const n = f.payload.length;
      st.sock.write(f.payload, (err) => {
        if (err) return;
        st.flushed += n;
        // Grant credit in batches once a quarter of the window reached the socket.
        if (st.flushed >= EGRESS_WINDOW / 4 && this.streams.get(f.stream) === st) {
          const grant = Buffer.alloc(4);
          grant.writeUInt32BE(st.flushed, 0);
          st.held -= st.flushed;
          st.flushed = 0;
          this.send(encodeFrame(f.stream, FrameType.control, grant));
        }
      });
    } else if (f.type === FrameType.control) {
      if (f.payload.length !== 4) {
        this.o.onViolation(`the peer sent a malformed credit grant on egress stream ${f.stream}; the stream was cut`, false);
        return this.cut(f.stream, st);
      }
      // Credit beyond the window is capped: a peer that grants too much only buffers more itself.
      st.credit = Math.min(EGRESS_WINDOW, st.credit + f.payload.readUInt32BE(0));
      this.resume(st);
    } else if (f.type === FrameType.close) {
      st.peerEnded = true;
      // "reset": the peer's socket is gone altogether; else it only writes no more (half-close),
      // and our socket's writing side ends once the rest is flushed.
      if (f.payload.toString("latin1") === RESET) this.cut(f.stream, st, false);
      else st.sock.end();
    }
  }

  /** The channel accepts writes again: resume every stream that has credit. */
  drained(): void {
    this.congested = false;
    for (const st of this.streams.values()) this.resume(st);
  }

  /** Destroys every stream (the channel is gone). */
  closeAll(): void {
    const all = [...this.streams.values()];
    this.streams.clear();
    for (const st of all) st.sock.destroy();
  }

  private onOpen(f: Frame): void {
    // SECURITY: only the guest opens streams, with ids that only grow, a bounded count and payload.
    if (!this.o.accept) return this.o.onViolation("the host tried to open an egress stream", true);
    if (f.stream <= this.lastId) return this.o.onViolation(`the guest reopened egress stream ${f.stream} (ids must grow)`, true);
    this.lastId = f.stream;
    if (f.payload.length > MAX_OPEN_PAYLOAD) {
      this.o.onViolation(`the guest opened egress stream ${f.stream} with a ${f.payload.length}-byte preamble; refused`, false);
      return void this.send(encodeFrame(f.stream, FrameType.close, ""));
    }
    if (this.streams.size >= MAX_EGRESS_STREAMS) {
      this.o.onViolation(`the guest has ${MAX_EGRESS_STREAMS} egress streams open already; stream ${f.stream} refused`, false);
      return void this.send(encodeFrame(f.stream, FrameType.close, ""));
    }
    const sock = this.o.accept(f.payload);
    if (!sock) return void this.send(encodeFrame(f.stream, FrameType.close, ""));
    this.attach(f.stream, sock);
  }

  private attach(id: number, sock: Duplex): void {
    const st: Stream = { sock, credit: EGRESS_WINDOW, held: 0, flushed: 0, sentClose: false, peerEnded: false };
    this.streams.set(id, st);
    sock.on("data", (chunk: Buffer) => {
      for (let off = 0; off < chunk.length; off += EGRESS_CHUNK) {
        const part = chunk.subarray(off, off + EGRESS_CHUNK);
        st.credit -= part.length;
        this.send(encodeFrame(id, FrameType.data, part));
      }
      if (st.credit <= 0 || this.congested) sock.pause();
    });
    const sendClose = () => {
      if (st.sentClose) return;
      st.sentClose = true;
      this.send(encodeFrame(id, FrameType.close, ""));
    };
    sock.on("end", sendClose);
    sock.on("error", () => sock.destroy());
    sock.on("close", () => {
      if (this.streams.get(id) !== st) return;
      this.streams.delete(id);
      // Our socket is gone: if the peer still writes, its bytes have nowhere to go — reset.
      if (!st.peerEnded) {
        st.sentClose = true;
        this.send(encodeFrame(id, FrameType.close, RESET));
      } else sendClose();
    });
  }

  private resume(st: Stream): void {
    if (st.credit > 0 && !this.congested && !st.sock.destroyed) st.sock.resume();
  }

  /** Drops a stream at once; tells the peer (reset) unless it asked for this itself. */
  private cut(id: number, st: Stream, tell = true): void {
    this.streams.delete(id);
    st.sentClose = true;
    if (tell) this.send(encodeFrame(id, FrameType.close, RESET));
    st.sock.destroy();
  }

  private send(frame: Buffer): void {
    if (!this.o.write(frame)) this.congested = true;
  }
}
