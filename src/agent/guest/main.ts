// The guest agent: PID 1 of every Nucleus microVM (started by /init after it
// mounts /proc, /sys and /dev). Loads the virtio modules, finds its host channels,
// waits for the start request (argv, env, mounts, secrets — they arrive only over
// the control channel, never on the kernel command line or in the image), starts
// the server with its stdio on the MCP port, reports its exit and ends the VM.
// Not responsible for policy: the host decides everything it is asked to do.

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, read, writeFileSync, writeSync } from "node:fs";
import { encodeFrame, FrameDecoder, FrameType } from "./frame.js";
import {
  AGENT_PROTOCOL_VERSION,
  GUEST_SECRETS_DIR,
  PORT_CONTROL,
  PORT_MCP,
  STREAM_CONTROL,
  STREAM_STDERR,
  type GuestMessage,
  type HostMessage,
} from "./protocol.js";
import { findPorts, kernelRelease, loadModules, mountShare, mountTmpfs, powerOff } from "./system.js";

const say = (msg: string) => process.stderr.write(`nucleus-agent: ${msg}\n`);

function send(fd: number, msg: GuestMessage): void {
  writeAll(fd, encodeFrame(STREAM_CONTROL, FrameType.control, JSON.stringify(msg)));
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/** Read the control port forever, calling `onMessage` for each host message. */
function readControl(fd: number, onMessage: (m: HostMessage) => void, onEnd: () => void): void {
  const decoder = new FrameDecoder();
  const buf = Buffer.alloc(64 * 1024);
  const loop = () =>
    read(fd, buf, 0, buf.length, null, (err, n) => {
      if (err || n === 0) return onEnd();
      for (const f of decoder.push(Buffer.from(buf.subarray(0, n)))) {
        if (f.stream === STREAM_CONTROL && f.type === FrameType.control) onMessage(JSON.parse(f.payload.toString("utf8")) as HostMessage);
      }
      loop();
    });
  loop();
}

async function main(): Promise<void> {
  loadModules();
  const ports = await findPorts([PORT_CONTROL, PORT_MCP], 15_000);
  const ctl = openSync(ports.get(PORT_CONTROL)!, "r+");
  const mcpPath = ports.get(PORT_MCP)!;
  send(ctl, { t: "hello", version: AGENT_PROTOCOL_VERSION, kernel: kernelRelease() });

  let child: ChildProcess | null = null;
  let finished = false;
  const finish = (code: number | null, signal: string | null) => {
    if (finished) return;
    finished = true;
    try {
      send(ctl, { t: "exit", code, signal });
    } finally {
      powerOff();
    }
  };

  readControl(
    ctl,
    (msg) => {
      if (msg.t === "start" && !child) {
        try {
          const c = start(msg, mcpPath, ctl);
          child = c;
          c.on("error", (err) => {
            send(ctl, { t: "error", message: `could not start ${msg.argv[0]}: ${err.message}` });
            finish(127, null);
          });
          c.on("exit", (code, signal) => finish(code, signal));
          if (c.pid !== undefined) send(ctl, { t: "started", pid: c.pid });
        } catch (err) {
          send(ctl, { t: "error", message: (err as Error).message });
          finish(null, null);
        }
      } else if (msg.t === "shutdown") {
        if (!child || child.exitCode !== null) return finish(null, null);
        child.kill("SIGTERM");
        setTimeout(() => child?.kill("SIGKILL"), Math.max(0, msg.graceMs)).unref();
      }
    },
    () => {
      say("the host closed the control channel; powering off");
      child?.kill("SIGKILL");
      powerOff();
    },
  );
}

function start(msg: Extract<HostMessage, { t: "start" }>, mcpPath: string, ctl: number): ChildProcess {
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
  const mcp = openSync(mcpPath, "r+");
  const [file, ...args] = msg.argv;
  if (!file) throw new Error("the start request has an empty argv");
  const child = spawn(file, args, { env, cwd, stdio: [mcp, mcp, "pipe"] });
  // The server holds the MCP port now; when it exits, the port closes with it.
  closeSync(mcp);
  child.stderr!.on("data", (chunk: Buffer) => {
    for (let off = 0; off < chunk.length; off += 60_000) {
      writeAll(ctl, encodeFrame(STREAM_STDERR, FrameType.data, chunk.subarray(off, off + 60_000)));
    }
  });
  return child;
}

main().catch((err: unknown) => {
  say(`fatal: ${(err as Error).message}`);
  powerOff();
});
