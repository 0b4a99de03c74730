import { PassThrough, Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import { encodeFrame, FrameType } from "../../../src/agent/guest/frame.js";
import { ControlChannel } from "../../../src/sandbox/microvm/channel.js";

/** A duplex whose readable side we feed (the guest) and whose writable side we read (the host's sends). */
function pair() {
  const fromGuest = new PassThrough();
  const toGuest = new PassThrough();
  const duplex = Duplex.from({ readable: fromGuest, writable: toGuest });
  return { fromGuest, toGuest, duplex };
}

describe("host control channel", () => {
  it("hands out control messages, stderr data, and the reported exit", async () => {
    const { fromGuest, duplex } = pair();
    const ch = new ControlChannel(duplex);
    let stderr = "";
    ch.stderr.on("data", (d: Buffer) => (stderr += d));
    fromGuest.write(encodeFrame(0, FrameType.control, JSON.stringify({ t: "hello", version: 1, kernel: "k" })));
    expect((await ch.waitFor("hello", 1000)).kernel).toBe("k");
    fromGuest.write(encodeFrame(1, FrameType.data, "oops\n"));
    fromGuest.write(encodeFrame(0, FrameType.control, JSON.stringify({ t: "exit", code: 3, signal: null })));
    await ch.waitFor("exit", 1000);
    expect(ch.reportedExit).toEqual({ t: "exit", code: 3, signal: null });
    expect(stderr).toBe("oops\n");
  });

  it("rejects a wait when the agent reports an error, and times out cleanly", async () => {
    const { fromGuest, duplex } = pair();
    const ch = new ControlChannel(duplex);
    const started = ch.waitFor("started", 1000);
    fromGuest.write(encodeFrame(0, FrameType.control, JSON.stringify({ t: "error", message: "mount failed" })));
    await expect(started).rejects.toThrow(/the guest agent reported: mount failed/);
    await expect(ch.waitFor("hello", 50)).rejects.toThrow(/no "hello" within 50 ms/);
  });

  it("drops the channel when a hostile guest announces an oversized frame", async () => {
    const { fromGuest, duplex } = pair();
    const ch = new ControlChannel(duplex);
    const err = new Promise<Error>((r) => ch.once("error", r));
    const header = Buffer.alloc(9);
    header.writeUInt32BE(0, 0);
    header.writeUInt8(FrameType.control, 4);
    header.writeUInt32BE(0xffffffff, 5);
    fromGuest.write(header);
    expect((await err).message).toMatch(/broke the control protocol/);
    expect(duplex.destroyed).toBe(true);
  });

  it("never crashes on a hostile guest with no listener attached: it records the error and cuts the channel", async () => {
    for (const bad of [encodeFrame(0, 9 as FrameType, "x"), encodeFrame(0, FrameType.control, "{not json"), encodeFrame(0, FrameType.control, "42")]) {
      const { fromGuest, duplex } = pair();
      const ch = new ControlChannel(duplex); // no 'error' listener, as in the backends
      fromGuest.write(bad);
      await new Promise((r) => setImmediate(r));
      expect(ch.protocolError?.message).toMatch(/the guest agent (broke the control protocol|sent a control message)/);
      expect(duplex.destroyed).toBe(true);
    }
  });

  it("keeps one message of each type however many the guest sends", async () => {
    const { fromGuest, duplex } = pair();
    const ch = new ControlChannel(duplex);
    for (let i = 0; i < 1000; i++) fromGuest.write(encodeFrame(0, FrameType.control, JSON.stringify({ t: "hello", version: 1, kernel: `k${i}` })));
    expect((await ch.waitFor("hello", 1000)).kernel).toBe("k0");
    expect((ch as unknown as { seen: Map<string, unknown> }).seen.size).toBe(1);
  });

  it("sends the start request as a framed JSON control message", async () => {
    const { toGuest, duplex } = pair();
    const ch = new ControlChannel(duplex);
    ch.send({ t: "shutdown", graceMs: 100 });
    const bytes = toGuest.read() as Buffer;
    expect(bytes.equals(encodeFrame(0, FrameType.control, JSON.stringify({ t: "shutdown", graceMs: 100 })))).toBe(true);
  });
});
