// The host end of a microVM's egress streams against a fake channel (frames in,
// frames out) and a real unix-socket "proxy": relaying, flow control, and a
// hostile guest's frames (unknown stream, data before open, reused ids, too many
// streams, oversized preambles, window overruns) — never a crash, always bounded.
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EGRESS_CHUNK, EGRESS_WINDOW, EgressMux, MAX_EGRESS_STREAMS, MAX_OPEN_PAYLOAD, RESET } from "../../../src/agent/guest/egress-mux.js";
import { encodeFrame, FrameDecoder, FrameType, type Frame } from "../../../src/agent/guest/frame.js";
import { FIRST_EGRESS_STREAM } from "../../../src/agent/guest/protocol.js";
import { ControlChannel } from "../../../src/sandbox/microvm/channel.js";
import { hostEgressMux } from "../../../src/sandbox/microvm/egress-streams.js";

const S = FIRST_EGRESS_STREAM;
const frame = (stream: number, type: FrameType, payload: Buffer | string = ""): Frame => ({ stream, type, payload: Buffer.from(payload) });
const tick = (ms = 30) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await tick(10);
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

let dir: string;
let proxy: Server;
let proxySocket: string;
/** What the "proxy" received on each connection, in order; it echoes by default. */
let received: Buffer[][];
let conns: Socket[];
let echo: boolean;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "nucleus-egress-mux-"));
  proxySocket = join(dir, "proxy.sock");
  received = [];
  conns = [];
  echo = true;
  proxy = createServer({ allowHalfOpen: true }, (s) => {
    const got: Buffer[] = [];
    received.push(got);
    conns.push(s);
    s.on("data", (d: Buffer) => {
      got.push(d);
      if (echo) s.write(d);
    });
    s.on("end", () => s.end());
    s.on("error", () => {});
  });
  await new Promise<void>((r) => proxy.listen(proxySocket, r));
});

afterEach(async () => {
  for (const c of conns) c.destroy();
  await new Promise((r) => proxy.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function host(socket: string | null = proxySocket) {
  const out: Frame[] = [];
  const violations: { message: string; fatal: boolean }[] = [];
  const mux = hostEgressMux({
    write: (f) => (out.push(...new FrameDecoder().push(f)), true),
    proxySocket: socket,
    onViolation: (message, fatal) => void violations.push({ message, fatal }),
  });
  const data = (stream: number) => Buffer.concat(out.filter((f) => f.stream === stream && f.type === FrameType.data).map((f) => f.payload));
  const closed = (stream: number) => out.some((f) => f.stream === stream && f.type === FrameType.close);
  return { mux, out, violations, data, closed };
}

describe("host egress streams", () => {
  it("joins a stream to the proxy socket: preamble first, bytes both ways, close both ways", async () => {
    const h = host();
    h.mux.handle(frame(S, FrameType.open, "NUCLEUS-PIN db.test 5432\n"));
    h.mux.handle(frame(S, FrameType.data, "hello"));
    await until(() => h.data(S).toString().length > 0, "the echo");
    expect(Buffer.concat(received[0]!).toString()).toBe("NUCLEUS-PIN db.test 5432\nhello");
    expect(h.data(S).toString()).toBe("NUCLEUS-PIN db.test 5432\nhello");
    h.mux.handle(frame(S, FrameType.close));
    await until(() => h.closed(S), "the close frame");
    await until(() => h.mux.size === 0, "the stream to go");
    expect(h.violations).toEqual([]);
  });

  it("half-closes when the proxy ends, drops the stream once both sides ended, and drops the connection on the guest's reset", async () => {
    const h = host();
    h.mux.handle(frame(S, FrameType.open));
    await until(() => conns.length === 1, "the proxy connection");
    conns[0]!.destroy();
    await until(() => h.closed(S), "the half-close");
    expect(h.out.find((f) => f.stream === S && f.type === FrameType.close)!.payload.toString()).toBe("");
    expect(h.mux.size).toBe(1);
    h.mux.handle(frame(S, FrameType.close));
    await until(() => h.mux.size === 0, "the stream to go");
    h.mux.handle(frame(S + 1, FrameType.open));
    await until(() => conns.length === 2, "the second proxy connection");
    let gone = false;
    conns[1]!.on("close", () => (gone = true));
    h.mux.handle(frame(S + 1, FrameType.close, RESET));
    expect(h.mux.size).toBe(0);
    await until(() => gone, "the proxy connection to close");
    expect(h.violations).toEqual([]);
  });

  it("refuses every stream when the server has no proxy socket", async () => {
    const h = host(null);
    h.mux.handle(frame(S, FrameType.open));
    expect(h.closed(S)).toBe(true);
    expect(h.mux.size).toBe(0);
    expect(received).toEqual([]);
  });

  it("cuts the channel for data before open and for a reused stream id; ignores a stream it already closed", async () => {
    const h = host(null);
    h.mux.handle(frame(S + 5, FrameType.data, "x"));
    expect(h.violations).toEqual([{ message: expect.stringMatching(/never opened/), fatal: true }]);
    const g = host(null);
    g.mux.handle(frame(S + 3, FrameType.open)); // refused (no socket), id consumed
    g.mux.handle(frame(S + 3, FrameType.data, "late")); // a race after our close: ignored
    expect(g.violations).toEqual([]);
    g.mux.handle(frame(S + 1, FrameType.open));
    expect(g.violations).toEqual([{ message: expect.stringMatching(/ids must grow/), fatal: true }]);
  });

  it("refuses an oversized preamble and more than MAX_EGRESS_STREAMS streams at once", async () => {
    const h = host();
    h.mux.handle(frame(S, FrameType.open, Buffer.alloc(MAX_OPEN_PAYLOAD + 1, 65)));
    expect(h.closed(S)).toBe(true);
    for (let i = 1; i <= MAX_EGRESS_STREAMS + 1; i++) h.mux.handle(frame(S + i, FrameType.open));
    expect(h.mux.size).toBe(MAX_EGRESS_STREAMS);
    expect(h.closed(S + MAX_EGRESS_STREAMS + 1)).toBe(true);
    expect(h.violations.map((v) => v.fatal)).toEqual([false, false]);
    await until(() => conns.length === MAX_EGRESS_STREAMS, "the proxy connections");
    h.mux.closeAll();
    expect(h.mux.size).toBe(0);
  });

  it("cuts a stream whose peer overruns the window, and a malformed credit grant", async () => {
    echo = false;
    const h = host();
    h.mux.handle(frame(S, FrameType.open));
    const big = Buffer.alloc(EGRESS_CHUNK, 1);
    for (let i = 0; i < (EGRESS_WINDOW + EGRESS_CHUNK) / EGRESS_CHUNK + 1; i++) h.mux.handle(frame(S, FrameType.data, big));
    expect(h.closed(S)).toBe(true);
    expect(h.violations[0]).toEqual({ message: expect.stringMatching(/overran the flow-control window/), fatal: false });
    h.mux.handle(frame(S + 1, FrameType.open));
    h.mux.handle(frame(S + 1, FrameType.control, "not-a-u32"));
    expect(h.closed(S + 1)).toBe(true);
    expect(h.mux.size).toBe(0);
  });

  it("sends no more than the window until the guest grants credit", async () => {
    echo = false;
    const h = host();
    h.mux.handle(frame(S, FrameType.open));
    await until(() => conns.length === 1, "the proxy connection");
    conns[0]!.write(Buffer.alloc(4 * EGRESS_WINDOW, 7));
    await until(() => h.data(S).length >= EGRESS_WINDOW, "a window of data");
    await tick(200);
    const first = h.data(S).length;
    expect(first).toBeLessThanOrEqual(EGRESS_WINDOW + EGRESS_CHUNK);
    const grant = Buffer.alloc(4);
    grant.writeUInt32BE(EGRESS_WINDOW, 0);
    h.mux.handle(frame(S, FrameType.control, grant));
    await until(() => h.data(S).length > first, "more data after the grant");
  });
});

describe("guest and host muxes joined", () => {
  it("carries 2 MiB each way through an echoing proxy, with flow control", async () => {
    let hostMux!: EgressMux;
    const fail = (m: string) => {
      throw new Error(m);
    };
    // Frames cross asynchronously, as over a real channel.
    const guest = new EgressMux({ write: (f) => (setImmediate(() => feed(hostMux, f)), true), onViolation: fail });
    hostMux = hostEgressMux({ write: (f) => (setImmediate(() => feed(guest, f)), true), proxySocket, onViolation: fail });
    // The guest's listener: every accepted connection becomes a stream (as src/agent/guest/egress.ts does).
    const listener = createServer({ allowHalfOpen: true }, (s) => guest.open(s, Buffer.alloc(0)));
    await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
    try {
      const payload = Buffer.alloc(2 * 1024 * 1024);
      for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
      const port = (listener.address() as { port: number }).port;
      const echoed = await new Promise<Buffer>((resolve, reject) => {
        const c = connect({ host: "127.0.0.1", port });
        const got: Buffer[] = [];
        c.on("data", (d: Buffer) => got.push(d));
        c.on("error", reject);
        c.on("end", () => resolve(Buffer.concat(got)));
        c.end(payload);
      });
      expect(echoed.equals(payload)).toBe(true);
      await until(() => guest.size === 0 && hostMux.size === 0, "both ends to drop the stream");
    } finally {
      await new Promise((r) => listener.close(r));
    }
  });
});

const decoders = new WeakMap<EgressMux, FrameDecoder>();
function feed(mux: EgressMux, bytes: Buffer): void {
  let d = decoders.get(mux);
  if (!d) decoders.set(mux, (d = new FrameDecoder()));
  for (const f of d.push(bytes)) mux.handle(f);
}

describe("ControlChannel with a hostile guest's egress frames", () => {
  it("records the violation and cuts the channel instead of crashing", async () => {
    const sock = new PassThrough();
    const ch = new ControlChannel(sock, proxySocket);
    let closed = false;
    ch.on("close", () => (closed = true));
    sock.emit("data", encodeFrame(S + 9, FrameType.data, "data before open"));
    await until(() => closed, "the channel to close");
    expect(ch.protocolError?.message).toMatch(/never opened/);
  });
});
