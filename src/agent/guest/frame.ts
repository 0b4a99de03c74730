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

/** Incremental decoder with a bounded buffer: push chunks, get whole frames. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  /** Returns the complete frames in `chunk`; throws on a malformed or oversized frame. */
  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: Frame[] = [];
    while (this.buf.length >= FRAME_HEADER_BYTES) {
      const stream = this.buf.readUInt32BE(0);
      const type = this.buf.readUInt8(4);
      const len = this.buf.readUInt32BE(5);
      if (type < FrameType.control || type > FrameType.close) throw new Error(`unknown frame type ${type}`);
      if (len > MAX_FRAME_PAYLOAD) throw new Error(`frame of ${len} bytes exceeds the ${MAX_FRAME_PAYLOAD}-byte limit`);
      if (this.buf.length < FRAME_HEADER_BYTES + len) break;
      const payload = Buffer.from(this.buf.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + len));
      frames.push({ stream, type: type as FrameType, payload });
      this.buf = this.buf.subarray(FRAME_HEADER_BYTES + len);
    }
    return frames;
  }

  /** Bytes held waiting for the rest of a frame. */
  get pending(): number {
    return this.buf.length;
  }
}
