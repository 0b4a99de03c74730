// The reused-buffer pump (src/agent/pump.ts) between real sockets: every byte
// arrives intact and in order although one buffer is reused, and a sink that
// stops reading stops the source (memory stays bounded).
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createPump, PUMP_MAX_BUFFER_BYTES } from "../../../src/agent/pump.js";

const cleanup: (() => unknown)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c();
});

function listen(server: Server, where: { port: number; host: string } | { path: string }): Promise<void> {
  cleanup.push(() => server.close());
  return new Promise((r) => server.listen(where, r));
}

/** source (a TCP server sending `payload`) → pump → a unix socket whose far end is `reader`. */
async function chain(payload: Buffer): Promise<{ source: Socket; sink: Socket; reader: Promise<Socket> }> {
  const dir = mkdtempSync(join(tmpdir(), "nucleus-pump-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const origin = createServer((s) => s.end(payload));
  await listen(origin, { port: 0, host: "127.0.0.1" });
  let gotReader!: (s: Socket) => void;
  const reader = new Promise<Socket>((r) => (gotReader = r));
  const far = createServer({ pauseOnConnect: true }, gotReader);
  await listen(far, { path: join(dir, "far.sock") });
  const sink = connect({ path: join(dir, "far.sock"), allowHalfOpen: true });
  await new Promise((r) => sink.once("connect", r));
  const pump = createPump();
  const source = connect({ port: (origin.address() as AddressInfo).port, host: "127.0.0.1", onread: pump.onread });
  source.pause();
  await new Promise((r) => source.once("connect", r));
  source.once("end", () => sink.end());
  pump.start(source, sink);
  cleanup.push(() => (source.destroy(), sink.destroy()));
  return { source, sink, reader };
}

function drain(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on("data", (d: Buffer) => chunks.push(d));
  s.resume();
  return new Promise((r) => s.once("end", () => r(Buffer.concat(chunks))));
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("createPump", () => {
  it("delivers 24 MiB intact and in order, then the FIN", async () => {
    const payload = randomBytes(24 * 1024 * 1024);
    const { reader } = await chain(payload);
    const got = await drain(await reader);
    expect(got.length).toBe(payload.length);
    expect(sha(got)).toBe(sha(payload));
  });

  it("stops reading while the sink cannot take more, and resumes intact", async () => {
    const payload = randomBytes(24 * 1024 * 1024);
    const { source, reader } = await chain(payload);
    const far = await reader; // paused: reads nothing yet
    await new Promise((r) => setTimeout(r, 500));
    // What the pump took from the source is bounded by its one buffer plus the
    // unix socket's kernel buffer: nowhere near the 24 MiB on offer.
    expect(source.bytesRead).toBeLessThan(PUMP_MAX_BUFFER_BYTES + 2 * 1024 * 1024);
    const got = await drain(far);
    expect(sha(got)).toBe(sha(payload));
  });

  it("keeps going when something else also writes to the sink", async () => {
    const payload = randomBytes(16 * 1024 * 1024);
    const { sink, reader } = await chain(payload);
    const far = await reader;
    // Another writer (the proxy's own replies, say) queues bytes behind the pump's.
    let extra = 0;
    const other = setInterval(() => {
      if (sink.writableEnded || extra >= 200) return;
      sink.write(Buffer.from([0x2a]));
      extra++;
    }, 1);
    cleanup.push(() => clearInterval(other));
    setTimeout(() => far.resume(), 200);
    const got = await drain(far);
    clearInterval(other);
    expect(got.length).toBe(payload.length + extra);
  });
});
