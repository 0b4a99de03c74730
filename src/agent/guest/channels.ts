// The guest agent's two host channels, on either transport: virtio-serial
// ports (QEMU: character devices found by name) or vsock (Firecracker: Node has
// no AF_VSOCK, so `socat VSOCK-LISTEN:<port> STDIO` bridges each port to pipes).
// Not responsible for the protocol. No imports outside src/agent/guest.

import { spawn, type ChildProcess } from "node:child_process";
import { openSync, read, readFileSync, writeSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { PORT_CONTROL, PORT_MCP, VSOCK_PORT_CONTROL, VSOCK_PORT_MCP } from "./protocol.js";
import { findPorts } from "./system.js";

export interface ControlTransport {
  write(buf: Buffer): void;
  /** Calls `onData` per chunk until the host goes away, then `onEnd` once. */
  listen(onData: (chunk: Buffer) => void, onEnd: () => void): void;
}

/** How the server's stdio reaches the MCP channel. */
export type McpTransport = { readonly kind: "device"; readonly path: string } | { readonly kind: "pipes"; readonly stdin: Writable; readonly stdout: Readable };

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
    const ctl = socatListen(VSOCK_PORT_CONTROL);
    const mcp = socatListen(VSOCK_PORT_MCP);
    return {
      control: {
        write: (buf) => void ctl.stdin!.write(buf),
        listen: (onData, onEnd) => {
          ctl.stdout!.on("data", onData);
          ctl.stdout!.once("end", onEnd);
        },
      },
      mcp: { kind: "pipes", stdin: mcp.stdin!, stdout: mcp.stdout! },
    };
  }
  const ports = await findPorts([PORT_CONTROL, PORT_MCP], 15_000);
  const fd = openSync(ports.get(PORT_CONTROL)!, "r+");
  return {
    control: {
      write: (buf) => {
        let off = 0;
        while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      },
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
    mcp: { kind: "device", path: ports.get(PORT_MCP)! },
  };
}

function socatListen(port: number): ChildProcess {
  const child = spawn("/usr/bin/socat", ["-b65536", `VSOCK-LISTEN:${port}`, "STDIO"], { stdio: ["pipe", "pipe", "inherit"] });
  child.on("error", (err) => process.stderr.write(`nucleus-agent: socat for vsock port ${port}: ${err.message}\n`));
  return child;
}
