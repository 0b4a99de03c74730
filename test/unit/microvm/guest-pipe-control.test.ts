// The guest's control channel over a bridge process (what socat is in a
// Firecracker guest), with real child processes and real pipes standing in for
// socat: backpressure and the hard bound on queued bytes, listening again after
// the host's connection ends, and egress streams carried end to end — guest mux
// → pipe bridge → unix socket → the host's ControlChannel → a real "proxy" — with
// flow control holding when the bridge is slow.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EgressMux } from "../../../src/agent/guest/egress-mux.js";
import { encodeFrame, FrameDecoder, FrameType } from "../../../src/agent/guest/frame.js";
import { CONTROL_MAX_BUFFERED, PipeControl, type Bridge } from "../../../src/agent/guest/pipe-control.js";
import { FIRST_EGRESS_STREAM } from "../../../src/agent/guest/protocol.js";
import { ControlChannel } from "../../../src/sandbox/microvm/channel.js";

const children: ChildProcess[] = [];
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const c of cleanups.splice(0)) c();
});

/** A bridge process running `script` (node), its stdio being the pipes, as socat's are. */
function bridge(script: string, ...args: string[]): Bridge & { child: ChildProcess } {
  const child = spawn(process.execPath, ["-e", script, ...args], { stdio: ["pipe", "pipe", "ignore"] });
  children.push(child);
  return { child, stdin: child.stdin!, stdout: child.stdout!, kill: () => void child.kill("SIGKILL") };
}
const ECHO = "process.stdin.pipe(process.stdout)";
/** Reads nothing for `ms`, then echoes: a host that is slow to read. */
const SLOW_ECHO = "setTimeout(() => process.stdin.pipe(process.stdout), Number(process.argv[1]))";
/** Relays stdio to a unix socket: socat VSOCK-LISTEN:port STDIO, with the host at the other end. */
const TO_SOCKET = "const s = require('net').connect(process.argv[1]); process.stdin.pipe(s); s.pipe(process.stdout); s.on('close', () => process.exit(0))";
/** The same, but reading nothing from the guest for the first 500 ms: a congested link. */
const SLOW_TO_SOCKET = `setTimeout(() => { ${TO_SOCKET} }, 500)`;

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "nucleus-pipe-ctl-"));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe("guest control channel over a bridge process", () => {
  it("reports congestion instead of buffering, resumes on drain, and delivers every byte in order", async () => {
    const ctl = new PipeControl(() => bridge(SLOW_ECHO, "300"));
    let got = 0;
    const decoder = new FrameDecoder();
    const seqs: number[] = [];
    const ended = new Promise<void>((resolve) =>
      ctl.listen(
        (chunk) => {
          for (const f of decoder.push(chunk)) {
            seqs.push(f.payload.readUInt32BE(0));
            got += f.payload.length;
          }
          if (seqs.length === 400) resolve();
        },
        () => resolve(),
      ),
    );
    let drains = 0;
    ctl.onDrain(() => drains++);
    let sawFalse = false;
    // 400 frames of 16 KiB = 6.4 MiB, written as a well-behaved writer would: stop at false, go on at drain.
    for (let i = 0; i < 400; i++) {
      const payload = Buffer.alloc(16 * 1024);
      payload.writeUInt32BE(i, 0);
      if (!ctl.write(encodeFrame(FIRST_EGRESS_STREAM, FrameType.data, payload))) {
        sawFalse = true;
        await new Promise<void>((r) => ctl.onDrain(r));
      }
    }
    await ended;
    expect(sawFalse).toBe(true);
    expect(drains).toBeGreaterThan(0);
    expect(seqs).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(got).toBe(400 * 16 * 1024);
  }, 30_000);

  it(`refuses to queue more than ${CONTROL_MAX_BUFFERED} bytes toward a host that does not read, with a clear error`, () => {
    const ctl = new PipeControl(() => bridge("setInterval(() => {}, 1000)"));
    const frame = encodeFrame(FIRST_EGRESS_STREAM, FrameType.data, Buffer.alloc(512 * 1024));
    let thrown: Error | null = null;
    let written = 0;
    try {
      for (let i = 0; i < 64; i++) {
        ctl.write(frame); // ignoring `false` on purpose: the bound must hold anyway
        written += frame.length;
      }
    } catch (err) {
      thrown = err as Error;
    }
    expect(thrown?.message).toMatch(/the control channel to the host has \d+ bytes queued.*exceed its 8388608-byte bound \(the host stopped reading\)/);
    expect(written).toBeLessThanOrEqual(CONTROL_MAX_BUFFERED);
  });

  it("listens again with a new bridge when the connection ends (a snapshot restore resets it), and drops the old one", async () => {
    const bridges: (Bridge & { child: ChildProcess })[] = [];
    const ctl = new PipeControl(() => {
      const b = bridge(ECHO);
      bridges.push(b);
      return b;
    });
    const data: string[] = [];
    let ends = 0;
    ctl.listen(
      (c) => data.push(c.toString()),
      () => ends++,
    );
    ctl.write(Buffer.from("one"));
    for (let i = 0; i < 100 && !data.join("").includes("one"); i++) await new Promise((r) => setTimeout(r, 20));
    bridges[0]!.child.stdin!.end(); // the connection ends: echo's stdout ends too
    for (let i = 0; i < 100 && ends === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(ends).toBe(1);
    ctl.relisten!();
    expect(bridges).toHaveLength(2);
    ctl.write(Buffer.from("two"));
    for (let i = 0; i < 100 && !data.join("").includes("two"); i++) await new Promise((r) => setTimeout(r, 20));
    expect(data.join("")).toBe("onetwo");
    await new Promise((r) => setTimeout(r, 50));
    expect(bridges[0]!.child.exitCode !== null || bridges[0]!.child.signalCode !== null).toBe(true);
    expect(ends).toBe(1);
  }, 15_000);
});

describe("egress over the bridge, end to end", () => {
  it("carries 8 concurrent connections of 1 MiB each way between guest sockets and the host's proxy through a congested bridge, pausing them while it is congested", async () => {
    const dir = tmp();
    // The host: ControlChannel on the "vsock" unix socket, joined to a real echoing "proxy".
    const proxyPath = join(dir, "proxy.sock");
    const proxy: Server = createServer({ allowHalfOpen: true }, (s) => {
      s.on("data", (d: Buffer) => s.write(d));
      s.on("end", () => s.end());
      s.on("error", () => {});
    });
    await new Promise<void>((r) => proxy.listen(proxyPath, r));
    cleanups.push(() => proxy.close());
    const vsockPath = join(dir, "vsock.sock");
    const channels: ControlChannel[] = [];
    const hostSide = createServer((s) => channels.push(new ControlChannel(s, proxyPath)));
    await new Promise<void>((r) => hostSide.listen(vsockPath, r));
    cleanups.push(() => {
      for (const c of channels) c.close();
      hostSide.close();
    });

    // The guest: PipeControl over a bridge process relaying to that socket, an EgressMux on it.
    let b!: Bridge;
    const ctl = new PipeControl(() => (b = bridge(SLOW_TO_SOCKET, vsockPath)));
    let maxQueued = 0;
    const write = (f: Buffer) => {
      const ok = ctl.write(f);
      maxQueued = Math.max(maxQueued, b.stdin.writableLength);
      return ok;
    };
    const mux = new EgressMux({ write, onViolation: (m) => void expect.fail(m) });
    ctl.onDrain(() => mux.drained());
    const decoder = new FrameDecoder();
    ctl.listen(
      (chunk) => {
        for (const f of decoder.push(chunk)) if (f.stream >= FIRST_EGRESS_STREAM) mux.handle(f);
      },
      () => {},
    );

    // A "server" in the guest connects to the guest listener; the mux carries that connection.
    const listener = createServer({ allowHalfOpen: true }, (s) => mux.open(s, Buffer.alloc(0)));
    await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
    cleanups.push(() => listener.close());
    const port = (listener.address() as { port: number }).port;
    // Eight connections at once, 1 MiB each: together more than the window of any one stream.
    const size = 1024 * 1024;
    const runs = Array.from({ length: 8 }, async (_, k) => {
      const client: Socket = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
      cleanups.push(() => client.destroy());
      const payload = Buffer.alloc(size);
      for (let i = 0; i < size; i++) payload[i] = (i * 7 + k) & 0xff;
      const back: Buffer[] = [];
      let backLen = 0;
      const done = new Promise<void>((resolve) => {
        client.on("data", (d: Buffer) => {
          back.push(d);
          backLen += d.length;
          if (backLen >= size) resolve();
        });
      });
      client.end(payload);
      await done;
      return Buffer.concat(back).equals(payload);
    });
    expect(await Promise.all(runs)).toEqual(Array(8).fill(true));
    // The mux paused its sockets while the bridge was congested: about one socket read per stream
    // queued, not the 8 x 256 KiB the flow-control windows alone would allow.
    expect(maxQueued).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThan(1024 * 1024);
    expect(channels).toHaveLength(1);
    expect(channels[0]!.protocolError).toBeNull();
  }, 60_000);
});
