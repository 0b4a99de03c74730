// A running microVM as a Sandbox: the VMM's host process (spawnSandbox) plus the
// guest agent's control channel. Maps the agent's report to the server's exit,
// stops by asking the agent first and killing the VMM after the grace period.
// Not responsible for booting (each backend's launch) or for the argv.

import { PassThrough } from "node:stream";
import type { BackendName } from "../../config/spec.js";
import type { ExitCause, Sandbox, SandboxExit } from "../backend.js";
import type { ControlChannel } from "./channel.js";

/** How long a guest may take from reporting the server's exit to ending itself. */
export const EXIT_TO_RESET_MS = 3000;

export interface VmSandboxOptions {
  readonly backend: BackendName;
  readonly serverName: string;
  /** The VMM process (its stdin/stdout are the MCP stream when `mcp` is not given). */
  readonly vmm: Sandbox;
  readonly channel: ControlChannel;
  /** The MCP stream when it is not the VMM's stdio (Firecracker vsock). */
  readonly mcp?: { readonly stdin: Sandbox["stdin"]; readonly stdout: Sandbox["stdout"] };
  readonly defaultGraceMs: number;
  /** The last console lines, for messages about a guest that died. */
  readonly consoleTail: () => string[];
  readonly details: Readonly<Record<string, string>>;
}

export function vmSandbox(o: VmSandboxOptions): Sandbox {
  const who = `server "${o.serverName}"`;
  const vmName = o.backend === "qemu" ? "QEMU microVM" : "Firecracker microVM";
  let stopping: { graceMs: number } | null = null;
  const stderr = new PassThrough();
  o.channel.stderr.pipe(stderr, { end: false });
  o.vmm.stderr.pipe(stderr, { end: false });

  // The agent resets the guest right after reporting the server's exit; should the VM linger
  // anyway (a wedged guest), the host ends it so the exit still arrives within seconds.
  let watchdog: NodeJS.Timeout | null = null;
  const onMessage = (m: { t: string }) => {
    if (m.t === "exit" && !watchdog) watchdog = setTimeout(() => void o.vmm.stop(0), EXIT_TO_RESET_MS);
  };
  o.channel.on("message", onMessage);
  if (o.channel.reportedExit) onMessage(o.channel.reportedExit);

  const exited: Promise<SandboxExit> = o.vmm.exited.then((vmmExit) => {
    if (watchdog) clearTimeout(watchdog);
    o.channel.off("message", onMessage);
    o.channel.close();
    stderr.end();
    const report = o.channel.reportedExit;
    const oom = o.consoleTail().some((l) => /Out of memory: Killed process|oom-kill/.test(l));
    let cause: ExitCause;
    let message: string;
    const code = report ? report.code : null;
    const signal = (report?.signal ?? null) as NodeJS.Signals | null;
    if (stopping) {
      cause = "stopped";
      message = vmmExit.message.includes("SIGKILL")
        ? `${who} was killed with its ${vmName} after a ${stopping.graceMs} ms grace period`
        : `${who} stopped (its ${vmName} powered off)`;
    } else if (oom) {
      cause = "oom";
      message = `${who} ran out of memory in its ${vmName}`;
    } else if (report && signal) {
      cause = "signalled";
      message = `${who} was killed by ${signal} inside its ${vmName}`;
    } else if (report) {
      cause = "exited";
      message = `${who} exited with code ${code} inside its ${vmName}`;
    } else {
      cause = "exited";
      const tail = o.consoleTail().slice(-3).join(" | ");
      message = `the ${vmName} of ${who} ended without reporting the server's exit (guest power-off or kernel panic; ${vmmExit.message})${tail ? `; last console lines: ${tail}` : ""}`;
    }
    return { code, signal, cause, message };
  });

  const stop = async (graceMs = o.defaultGraceMs): Promise<SandboxExit> => {
    if (!stopping) {
      stopping = { graceMs };
      // EOF first, then the agent's SIGTERM → SIGKILL; the guest powers off once the server is gone.
      (o.mcp?.stdin ?? o.vmm.stdin).end();
      o.channel.send({ t: "shutdown", graceMs: Math.floor(graceMs / 2) });
      const timer = setTimeout(() => void o.vmm.stop(0), graceMs);
      void exited.finally(() => clearTimeout(timer));
    }
    return exited;
  };

  return {
    backend: o.backend,
    stdin: o.mcp?.stdin ?? o.vmm.stdin,
    stdout: o.mcp?.stdout ?? o.vmm.stdout,
    stderr,
    exited,
    stop,
    details: o.details,
  };
}
