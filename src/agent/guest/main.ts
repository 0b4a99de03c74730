// The guest agent: PID 1 of every Nucleus microVM (started by /init after it
// mounts /proc, /sys and /dev). Loads the virtio modules, opens its host
// channels, waits for the start request (argv, env, mounts, secrets — they
// arrive only over the control channel, never on the kernel command line or in
// the image), starts the server with pipes for its stdio and relays them to the
// MCP channel, reports its exit and ends the VM. Not responsible for policy: the
// host decides everything.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { openChannels, type ControlTransport, type McpTransport } from "./channels.js";
import { startEgress } from "./egress.js";
import { EgressMux } from "./egress-mux.js";
import { encodeFrame, FrameDecoder, FrameType } from "./frame.js";
import {
  AGENT_PROTOCOL_VERSION,
  FIRST_EGRESS_STREAM,
  GUEST_SECRETS_DIR,
  STREAM_CONTROL,
  STREAM_STDERR,
  type GuestMessage,
  type HostMessage,
} from "./protocol.js";
import { kernelRelease, loadModules, mixEntropy, mountShare, mountTmpfs, powerOff, prepareBlockDevices } from "./system.js";

type StartRequest = Extract<HostMessage, { t: "start" }>;

/** How often the control channel may come back before a start request (each restore needs one). */
const MAX_RELISTENS = 16;

const say = (msg: string) => process.stderr.write(`nucleus-agent: ${msg}\n`);

async function main(): Promise<void> {
  loadModules();
  const { control, mcp } = await openChannels();
  mcp.stdin.on("error", (err) => say(`the MCP channel failed for writing: ${err.message}`));
  mcp.stdout.on("error", (err) => say(`the MCP channel failed for reading: ${err.message}`));
  const send = (msg: GuestMessage) => control.write(encodeFrame(STREAM_CONTROL, FrameType.control, JSON.stringify(msg)));
  send({ t: "hello", version: AGENT_PROTOCOL_VERSION, kernel: kernelRelease() });

  // virtio-serial writes synchronously (a congested port blocks here); the vsock bridge reports
  // congestion and the mux pauses its sockets until the bridge drains. Neither buffers without bound.
  const mux = new EgressMux({
    write: (frame) => control.write(frame),
    onViolation: (message) => say(`egress: ${message}`),
  });
  control.onDrain(() => mux.drained());

  let child: ChildProcess | null = null;
  let starting = false;
  let finished = false;
  const finish = (code: number | null, signal: string | null) => {
    if (finished) return;
    finished = true;
    try {
      send({ t: "exit", code, signal });
    } finally {
      // Give a piped control transport a moment to flush before the reset.
      setTimeout(powerOff, 50);
    }
  };

  const onMessage = (msg: HostMessage) => {
    if (msg.t === "start" && !starting) {
      starting = true;
      // Egress listeners are bound before the server starts, so its first connection finds them.
      const ready = msg.egress ? startEgress(msg.egress, mux) : Promise.resolve([]);
      ready.then(
        () => {
          try {
            const c = start(msg, mcp, control);
            child = c;
            c.on("error", (err) => {
              send({ t: "error", message: `could not start ${msg.argv[0]}: ${err.message}` });
              finish(127, null);
            });
            c.on("exit", (code, signal) => {
              // Relay the rest of its output first — bounded: a grandchild may hold the pipes open.
              void drained(c, mcp.stdin, 300).then(() => finish(code, signal));
            });
            if (c.pid !== undefined) send({ t: "started", pid: c.pid });
          } catch (err) {
            send({ t: "error", message: (err as Error).message });
            finish(null, null);
          }
        },
        (err: Error) => {
          send({ t: "error", message: `could not set up egress in the guest: ${err.message}` });
          finish(null, null);
        },
      );
    } else if (msg.t === "shutdown") {
      if (!child || child.exitCode !== null || child.signalCode !== null) return finish(child?.exitCode ?? null, child?.signalCode ?? null);
      child.kill("SIGTERM");
      setTimeout(() => child?.kill("SIGKILL"), Math.max(0, msg.graceMs)).unref();
    }
  };

  let decoder = new FrameDecoder();
  let relistens = 0;
  control.listen(
    (chunk) => {
      for (const f of decoder.push(chunk)) {
        if (f.stream === STREAM_CONTROL && f.type === FrameType.control) onMessage(JSON.parse(f.payload.toString("utf8")) as HostMessage);
        else if (f.stream >= FIRST_EGRESS_STREAM) mux.handle(f);
      }
    },
    () => {
      // Bounded: a bridge that cannot listen at all (socat missing) must not respawn forever.
      if (!starting && control.relisten && relistens++ < MAX_RELISTENS) {
        // Before the start request the connection may end without the host being gone: a
        // snapshot was taken (Firecracker resets vsock connections on restore). Listen again and
        // greet whoever connects next; nothing about a server has reached this guest yet.
        say("the host's control connection ended before a start request; listening again");
        decoder = new FrameDecoder();
        control.relisten();
        send({ t: "hello", version: AGENT_PROTOCOL_VERSION, kernel: kernelRelease() });
        return;
      }
      say("the host closed the control channel; powering off");
      mux.closeAll();
      child?.kill("SIGKILL");
      powerOff();
    },
  );
}

function start(msg: StartRequest, mcp: McpTransport, control: ControlTransport): ChildProcess {
  // SECURITY: a guest restored from a snapshot shares its RNG state with every other clone of it;
  // the host's fresh bytes are mixed into the pool before the server (and its TLS) starts.
  if (msg.entropy) mixEntropy(Buffer.from(msg.entropy, "base64"));
  mountTmpfs("/tmp", msg.tmpMiB);
  // Block devices (Firecracker) may have been swapped under a restored guest: wait for their new
  // sizes, then drop whatever the kernel cached of the placeholder images at boot.
  const blocks = msg.mounts.filter((m) => m.kind === "block");
  if (blocks.length > 0) prepareBlockDevices(blocks);
  // Parents before children, so a grant inside a code dir lands on top of it.
  for (const m of [...msg.mounts].sort((a, b) => a.path.length - b.path.length)) mountShare(m);
  const env: Record<string, string> = { ...msg.env };
  const files = msg.secrets.filter((s) => s.as === "file");
  if (files.length > 0) {
    // SECURITY: secrets live only in guest RAM (tmpfs), readable by the server's user only.
    mountTmpfs(GUEST_SECRETS_DIR, 1, "0700");
    for (const s of files) writeFileSync(`${GUEST_SECRETS_DIR}/${s.target}`, s.value, { mode: 0o400 });
  }
  for (const s of msg.secrets) if (s.as === "env") env[s.target] = s.value;
  const cwd = msg.cwd ?? env.HOME ?? "/tmp";
  mkdirSync(cwd, { recursive: true });
  const [file, ...args] = msg.argv;
  if (!file) throw new Error("the start request has an empty argv");
  const child = spawn(file, args, { env, cwd, stdio: ["pipe", "pipe", "pipe"] });
  // The agent relays the MCP channel; the server gets pipes, never the port (see channels.ts).
  child.stdin!.on("error", () => {}); // EPIPE once the server is gone
  mcp.stdout.pipe(child.stdin!);
  child.stdout!.pipe(mcp.stdin, { end: false });
  // Backpressure: a congested control channel pauses the server's stderr (it then blocks writing it).
  const stderr = child.stderr!;
  control.onDrain(() => stderr.resume());
  stderr.on("data", (chunk: Buffer) => {
    let ok = true;
    for (let off = 0; off < chunk.length; off += 60_000) {
      ok = control.write(encodeFrame(STREAM_STDERR, FrameType.data, chunk.subarray(off, off + 60_000))) && ok;
    }
    if (!ok) stderr.pause();
  });
  return child;
}

/** Resolves when the server's stdout and stderr have ended and its output reached the port, or after `maxMs`. */
function drained(c: ChildProcess, out: Writable, maxMs: number): Promise<void> {
  const ended = (r: Readable) => (r.readableEnded || r.destroyed ? Promise.resolve() : new Promise<void>((ok) => r.once("close", ok).once("end", ok)));
  const flushed = () => (out.writableLength === 0 ? Promise.resolve() : new Promise<void>((ok) => out.once("drain", ok)));
  const all = Promise.all([ended(c.stdout!), ended(c.stderr!)]).then(flushed);
  return Promise.race([all, new Promise<void>((ok) => setTimeout(ok, maxMs))]);
}

// PID 1 must never just die: Node would hang in exit joining the threads blocked on the ports.
process.on("uncaughtException", (err) => {
  say(`fatal: ${err.message}`);
  powerOff();
});

main().catch((err: unknown) => {
  say(`fatal: ${(err as Error).message}`);
  powerOff();
});
