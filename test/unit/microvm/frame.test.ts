import { describe, expect, it, vi } from "vitest";
import { encodeFrame, FrameDecoder, FrameType, MAX_FRAME_PAYLOAD } from "../../../src/agent/guest/frame.js";

describe("control channel frames", () => {
  it("round-trips frames split at every byte boundary", () => {
    const bytes = Buffer.concat([
      encodeFrame(0, FrameType.control, '{"t":"hello"}'),
      encodeFrame(1, FrameType.data, Buffer.from([0, 1, 2, 255])),
      encodeFrame(16, FrameType.open, ""),
    ]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const d = new FrameDecoder();
      const frames = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
      expect(frames.map((f) => [f.stream, f.type, f.payload.toString("hex")])).toEqual([
        [0, FrameType.control, Buffer.from('{"t":"hello"}').toString("hex")],
        [1, FrameType.data, "000102ff"],
        [16, FrameType.open, ""],
      ]);
      expect(d.pending).toBe(0);
    }
  });

  it("writes the documented header: u32 stream, u8 type, u32 length, big-endian", () => {
    expect(encodeFrame(0x01020304, FrameType.data, "ab").toString("hex")).toBe("01020304" + "02" + "00000002" + "6162");
  });

  it("refuses an oversized or unknown frame instead of buffering it", () => {
    const huge = Buffer.alloc(9);
    huge.writeUInt32BE(0, 0);
    huge.writeUInt8(FrameType.data, 4);
    huge.writeUInt32BE(MAX_FRAME_PAYLOAD + 1, 5);
    expect(() => new FrameDecoder().push(huge)).toThrow(/exceeds/);
    const unknown = Buffer.from("000000000900000000", "hex");
    expect(() => new FrameDecoder().push(unknown)).toThrow(/unknown frame type 9/);
    expect(() => encodeFrame(0, FrameType.data, Buffer.alloc(MAX_FRAME_PAYLOAD + 1))).toThrow(/exceeds/);
  });

  it("joins a frame trickled in tiny pieces once, not once per piece (a guest sending 64-byte writes)", () => {
    const payload = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    const bytes = Buffer.concat([encodeFrame(1, FrameType.data, payload), encodeFrame(0, FrameType.control, "{}")]);
    // Count the bytes every Buffer.concat produces: the old decoder re-joined everything held on
    // each push (~8 GiB for this frame); one join per frame is ~1 MiB.
    let joined = 0;
    const concat = Buffer.concat.bind(Buffer);
    const spy = vi.spyOn(Buffer, "concat").mockImplementation((list, n) => {
      const out = concat(list, n);
      joined += out.length;
      return out;
    });
    const d = new FrameDecoder();
    const frames = [];
    try {
      for (let off = 0; off < bytes.length; off += 64) frames.push(...d.push(bytes.subarray(off, off + 64)));
    } finally {
      spy.mockRestore();
    }
    expect(frames.map((f) => [f.stream, f.type, f.payload.length])).toEqual([
      [1, FrameType.data, payload.length],
      [0, FrameType.control, 2],
    ]);
    expect(frames[0]!.payload.equals(payload)).toBe(true);
    expect(d.pending).toBe(0);
    expect(joined).toBeLessThan(2 * bytes.length);
  });
});
