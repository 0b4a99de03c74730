// The guest agent: PID 1 of every Nucleus microVM (started by /init after it
// mounts /proc, /sys and /dev). Loads the virtio modules, opens its host
// channels, waits for the start request (argv, env, mounts, secrets — they
// arrive only over the control channel, never on the kernel command line or in
// the image), starts the server with its stdio on the MCP channel, reports its
// exit and ends the VM. Not responsible for policy: the host decides everything.

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { openChannels, type ControlTransport, type McpTransport } from "./channels.js";
import { encodeFrame, FrameDecoder, FrameType } from "./frame.js";
import {
  AGENT_PROTOCOL_VERSION,
  GUEST_SECRETS_DIR,
  STREAM_CONTROL,
  STREAM_STDERR,
  type GuestMessage,
  type HostMessage,
} from "./protocol.js";
import { kernelRelease, loadModules, mountShare, mountTmpfs, powerOff } from "./system.js";

type StartRequest = Extract<HostMessage, { t: "start" }>;

const say = (msg: string) => process.stderr.write(`nucleus-agent: ${msg}\n`);

async function main(): Promise<void> {
  loadModules();
  const { control, mcp } = await openChannels();
  const send = (msg: GuestMessage) => control.write(encodeFrame(STREAM_CONTROL, FrameType.control, JSON.stringify(msg)));
  send({ t: "hello", version: AGENT_PROTOCOL_VERSION, kernel: kernelRelease() });

  let child: ChildProcess | null = null;
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
    if (msg.t === "start" && !child) {
      try {
        const c = start(msg, mcp, control);
        child = c;
        c.on("error", (err) => {
          send({ t: "error", message: `could not start ${msg.argv[0]}: ${err.message}` });
          finish(127, null);
        });
        c.on("exit", (code, signal) => {
          // Relay the rest of its stderr first (bounded: a grandchild may hold the pipe open).
          const done = () => finish(code, signal);
          if (c.stderr!.readableEnded) return done();
          c.stderr!.once("end", done);
          setTimeout(done, 300).unref();
        });
        if (c.pid !== undefined) send({ t: "started", pid: c.pid });
      } catch (err) {
        send({ t: "error", message: (err as Error).message });
        finish(null, null);
      }
    } else if (msg.t === "shutdown") {
      if (!child || child.exitCode !== null) return finish(null, null);
      child.kill("SIGTERM");
      setTimeout(() => child?.kill("SIGKILL"), Math.max(0, msg.graceMs)).unref();
    }
  };

  const decoder = new FrameDecoder();
  control.listen(
    (chunk) => {
      for (const f of decoder.push(chunk)) {
        if (f.stream === STREAM_CONTROL && f.type === FrameType.control) onMessage(JSON.parse(f.payload.toString("utf8")) as HostMessage);
      }
    },
    () => {
      say("the host closed the control channel; powering off");
      child?.kill("SIGKILL");
      powerOff();
    },
  );
}

function start(msg: StartRequest, mcp: McpTransport, control: ControlTransport): ChildProcess {
  mountTmpfs("/tmp", msg.tmpMiB);
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
  let child: ChildProcess;
  if (mcp.kind === "device") {
    const fd = openSync(mcp.path, "r+");
    child = spawn(file, args, { env, cwd, stdio: [fd, fd, "pipe"] });
    // The server holds the MCP port now; when it exits, the port closes with it.
    closeSync(fd);
  } else {
    child = spawn(file, args, { env, cwd, stdio: ["pipe", "pipe", "pipe"] });
    mcp.stdout.pipe(child.stdin!);
    child.stdout!.pipe(mcp.stdin);
  }
  child.stderr!.on("data", (chunk: Buffer) => {
    for (let off = 0; off < chunk.length; off += 60_000) {
      control.write(encodeFrame(STREAM_STDERR, FrameType.data, chunk.subarray(off, off + 60_000)));
    }
  });
  return child;
}

main().catch((err: unknown) => {
  say(`fatal: ${(err as Error).message}`);
  powerOff();
});
