// A running microVM as a Sandbox: the VMM's host process (spawnSandbox) plus the
// guest agent's control channel. Maps the agent's report to the server's exit,
// stops by asking the agent first and killing the VMM after the grace period,
// and ends at once a VM whose control channel was cut (a hostile guest).
// Not responsible for booting (each backend's launch) or for the argv.

import { PassThrough } from "node:stream";
import type { BackendName } from "../../config/spec.js";
import type { ExitCause, Sandbox, SandboxExit } from "../backend.js";
import type { ControlChannel } from "./channel.js";
import { consoleTailText } from "./guest-messages.js";

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

  // SECURITY: a channel cut for a protocol violation means the guest is hostile (or broken): the VM
  // is ended at once instead of serving MCP on. A channel that just closes with no exit reported is
  // ended too, after the moment a VMM that is exiting anyway (a kernel panic) needs to show it.
  let cut: Error | null = null;
  let orphanTimer: NodeJS.Timeout | null = null;
  const onClose = () => {
    if (cut || orphanTimer) return;
    if (o.channel.protocolError && !stopping) {
      cut = o.channel.protocolError;
      void o.vmm.stop(0);
    } else if (!o.channel.reportedExit) {
      // (also while stopping: the shutdown request cannot reach the agent any more)
      orphanTimer = setTimeout(() => {
        if (!stopping) cut = new Error("its control channel closed without the server's exit being reported");
        void o.vmm.stop(0);
      }, EXIT_TO_RESET_MS);
    }
  };
  o.channel.on("close", onClose);
  if (o.channel.closed) onClose();

  const exited: Promise<SandboxExit> = o.vmm.exited.then((vmmExit) => {
    if (watchdog) clearTimeout(watchdog);
    if (orphanTimer) clearTimeout(orphanTimer);
    o.channel.off("message", onMessage);
    o.channel.off("close", onClose);
    o.channel.close();
    stderr.end();
    // The report's fields were checked by the channel (exit code 0-255, a signal name).
    const report = o.channel.reportedExit;
    // The kernel's oom-killer lines cannot be told apart from lines the guest writes to its own
    // console (/dev/kmsg takes the same format), so a guest can mislabel its exit as "oom": harmless,
    // it is its own exit, and only the cause word changes.
    const oom = o.consoleTail().some((l) => /Out of memory: Killed process|oom-kill/.test(l));
    let cause: ExitCause;
    let message: string;
    const code = report ? report.code : null;
    const signal = (report?.signal ?? null) as NodeJS.Signals | null;
    if (cut) {
      cause = "exited";
      message = `the ${vmName} of ${who} was ended by the host: ${cut.message}`;
    } else if (stopping) {
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
      const tail = consoleTailText(o.consoleTail());
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
