// The guest agent's two host channels, on either transport: virtio-serial
// ports (QEMU: character devices found by name) or vsock (Firecracker: Node has
// no AF_VSOCK, so `socat VSOCK-LISTEN:<port> STDIO` bridges each port to pipes).
// Not responsible for the protocol. No imports outside src/agent/guest.

import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream, createWriteStream, openSync, read, readFileSync, writeSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { PipeControl, type Bridge, type ControlTransport } from "./pipe-control.js";
import { PORT_CONTROL, PORT_MCP, VSOCK_PORT_CONTROL, VSOCK_PORT_MCP } from "./protocol.js";
import { findPorts } from "./system.js";

export type { ControlTransport } from "./pipe-control.js";

/**
 * The MCP channel as two streams the agent relays to the server's stdio pipes:
 * `stdout` carries the host's bytes (to the server's stdin), `stdin` takes the
 * server's output (to the host).
 */
export interface McpTransport {
  readonly stdin: Writable;
  readonly stdout: Readable;
}

export interface Channels {
  readonly control: ControlTransport;
  readonly mcp: McpTransport;
}

export function channelMode(cmdline = safeRead("/proc/cmdline")): "virtio-serial" | "vsock" {
  return /(^|\s)nucleus\.channel=vsock(\s|$)/.test(cmdline) ? "vsock" : "virtio-serial";
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

export async function openChannels(): Promise<Channels> {
  if (channelMode() === "vsock") {
    // Bounded, with backpressure, and able to listen again after a snapshot restore reset the connection.
    const control = new PipeControl(() => socatBridge(VSOCK_PORT_CONTROL));
    const mcp = socatListen(VSOCK_PORT_MCP);
    return { control, mcp: { stdin: mcp.stdin!, stdout: mcp.stdout! } };
  }
  const ports = await findPorts([PORT_CONTROL, PORT_MCP], 15_000);
  const fd = openSync(ports.get(PORT_CONTROL)!, "r+");
  return {
    control: {
      // Synchronous: a congested port blocks the agent here; nothing is ever queued.
      write: (buf) => {
        let off = 0;
        while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
        return true;
      },
      onDrain: () => {},
      listen: (onData, onEnd) => {
        const buf = Buffer.alloc(64 * 1024);
        const loop = () =>
          read(fd, buf, 0, buf.length, null, (err, n) => {
            if (err || n === 0) return onEnd();
            onData(Buffer.from(buf.subarray(0, n)));
            loop();
          });
        loop();
      },
    },
    mcp: portStreams(ports.get(PORT_MCP)!),
  };
}

/**
 * The MCP port as streams, opened once (a second open is EBUSY). The port is
 * never handed to the server itself: a character device is a "file" to libuv,
 * so a Node server reads its stdin with a blocking read() in a threadpool
 * worker, and at exit libuv joins that worker — the server hung in exit until
 * the host sent a byte, and the VM never ended. Pipes poll; relaying keeps the
 * server's exit (and any grandchild holding its stdio) out of the port's hands.
 */
function portStreams(path: string): McpTransport {
  const fd = openSync(path, "r+");
  return {
    stdout: createReadStream("", { fd, autoClose: false, highWaterMark: 64 * 1024 }),
    stdin: createWriteStream("", { fd, autoClose: false }),
  };
}

function socatBridge(port: number): Bridge {
  const child = socatListen(port);
  return { stdin: child.stdin!, stdout: child.stdout!, kill: () => void child.kill("SIGKILL") };
}

function socatListen(port: number): ChildProcess {
  const child = spawn("/usr/bin/socat", ["-b65536", `VSOCK-LISTEN:${port}`, "STDIO"], { stdio: ["pipe", "pipe", "inherit"] });
  child.on("error", (err) => process.stderr.write(`nucleus-agent: socat for vsock port ${port}: ${err.message}\n`));
  return child;
}
