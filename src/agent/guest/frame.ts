// The frame format of the control channel between the host and the guest agent:
// [u32 stream id][u8 type][u32 payload length][payload], big-endian. One channel
// carries control messages (stream 0), the server's stderr (stream 1) and, later,
// egress connections (streams >= 16). Not responsible for what the payloads mean.
// Shared by host and guest: no imports outside src/agent/guest.

export const FRAME_HEADER_BYTES = 9;
/** Largest payload accepted; a peer that announces more is broken or hostile. */
export const MAX_FRAME_PAYLOAD = 1024 * 1024;

export const FrameType = {
  /** A JSON control message (stream 0). */
  control: 1,
  /** Raw bytes of a stream. */
  data: 2,
  /** Open a stream (payload: JSON describing it, e.g. an egress target). */
  open: 3,
  /** Close a stream (payload empty or a JSON reason). */
  close: 4,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export interface Frame {
  readonly stream: number;
  readonly type: FrameType;
  readonly payload: Buffer;
}

export function encodeFrame(stream: number, type: FrameType, payload: Buffer | string): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  if (body.length > MAX_FRAME_PAYLOAD) throw new Error(`frame payload of ${body.length} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
  if (!Number.isInteger(stream) || stream < 0 || stream > 0xffffffff) throw new Error(`invalid stream id ${stream}`);
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(stream, 0);
  header.writeUInt8(type, 4);
  header.writeUInt32BE(body.length, 5);
  return Buffer.concat([header, body]);
}

/**
 * Incremental decoder with a bounded buffer: push chunks, get whole frames. The chunks of an
 * incomplete frame are kept as they came and joined once the frame is whole, so a frame trickled
 * in tiny pieces costs one copy, not one per piece.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private total = 0;
  /** Header of the frame being received, once its 9 bytes are in. */
  private head: { stream: number; type: FrameType; len: number } | null = null;

  /** Returns the complete frames in `chunk`; throws on a malformed or oversized frame. */
  push(chunk: Buffer): Frame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.total += chunk.length;
    }
    const frames: Frame[] = [];
    for (;;) {
      if (!this.head) {
        if (this.total < FRAME_HEADER_BYTES) break;
        const h = this.take(FRAME_HEADER_BYTES, false);
        const type = h.readUInt8(4);
        const len = h.readUInt32BE(5);
        if (type < FrameType.control || type > FrameType.close) throw new Error(`unknown frame type ${type}`);
        if (len > MAX_FRAME_PAYLOAD) throw new Error(`frame of ${len} bytes exceeds the ${MAX_FRAME_PAYLOAD}-byte limit`);
        this.head = { stream: h.readUInt32BE(0), type: type as FrameType, len };
      }
      if (this.total < this.head.len) break;
      frames.push({ stream: this.head.stream, type: this.head.type, payload: this.take(this.head.len, true) });
      this.head = null;
    }
    return frames;
  }

  /** Bytes held waiting for the rest of a frame. */
  get pending(): number {
    return this.total + (this.head ? FRAME_HEADER_BYTES : 0);
  }

  /** Removes the first `n` bytes held; `copy`: always a fresh buffer (a payload must not pin a large chunk). */
  private take(n: number, copy: boolean): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    let used = 0;
    if (first && first.length >= n) {
      out = copy ? Buffer.from(first.subarray(0, n)) : first.subarray(0, n);
      if (first.length === n) used = 1;
      else this.chunks[0] = first.subarray(n);
    } else {
      const parts: Buffer[] = [];
      let left = n;
      while (left > 0) {
        const c = this.chunks[used]!;
        if (c.length <= left) {
          parts.push(c);
          used++;
          left -= c.length;
        } else {
          parts.push(c.subarray(0, left));
          this.chunks[used] = c.subarray(left);
          left = 0;
        }
      }
      out = Buffer.concat(parts, n);
    }
    if (used > 0) this.chunks.splice(0, used);
    this.total -= n;
    return out;
  }
}
