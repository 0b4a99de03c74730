// Spawning one sandboxed (or not) process tree and stopping it: EOF on stdin,
// then SIGTERM, then SIGKILL to the whole process group after a grace period.
// Shared by every backend whose sandbox is a host process (bwrap, qemu, ...).
// Not responsible for what the argv contains.

import { spawn, type ChildProcess } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import type { BackendName } from "../config/spec.js";
import type { ExitCause, Sandbox, SandboxExit } from "./backend.js";

export interface SpawnedOptions {
  readonly serverName: string;
  readonly backend: BackendName;
  readonly argv: readonly string[];
  /** The complete environment; nothing of the gateway's is inherited. */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Extra fds beyond 0..2 (e.g. a seccomp program for bwrap); at most one "ipc" (Node's channel). */
  readonly extraStdio?: ReadonlyArray<"pipe" | "ignore" | "ipc" | number>;
  /** Called once the process is spawned (before `launch` resolves), e.g. to listen on its IPC channel. */
  readonly onSpawn?: (child: ChildProcess) => void;
  /** Bytes written to extra fd 3 + i (which must be "pipe"), then closed: data the child reads at start. */
  readonly extraInput?: ReadonlyArray<Uint8Array>;
  readonly defaultGraceMs: number;
  readonly details?: Record<string, string>;
  /** Runs once after the process is reaped (cleanup of temp dirs, cgroups). May refine the exit. */
  readonly cleanup?: (exit: SandboxExit) => Promise<Partial<Pick<SandboxExit, "cause" | "message">> | void>;
}

/** Spawn `argv` as a process-group leader and wrap it as a Sandbox. */
export function spawnSandbox(opts: SpawnedOptions): Promise<Sandbox> {
  const [file, ...args] = opts.argv;
  if (!file) throw new Error("spawnSandbox: empty argv");
  const child: ChildProcess = spawn(file, args, {
    env: { ...opts.env },
    cwd: opts.cwd,
    stdio: ["pipe", "pipe", "pipe", ...(opts.extraStdio ?? [])],
    // SECURITY: its own process group, so stop() can kill every descendant.
    detached: true,
    windowsHide: true,
  });
  return new Promise((resolve, reject) => {
    const onSpawnError = (err: Error) => reject(new Error(`could not start ${file}: ${err.message}`));
    child.once("error", onSpawnError);
    child.once("spawn", () => {
      child.off("error", onSpawnError);
      opts.onSpawn?.(child);
      (opts.extraInput ?? []).forEach((data, i) => {
        const s = child.stdio[3 + i] as Writable | null | undefined;
        if (!s) return;
        s.on("error", () => {}); // the child may exit before reading; `exited` reports that
        s.end(data);
      });
      resolve(wrap(child, opts));
    });
  });
}

function wrap(child: ChildProcess, opts: SpawnedOptions): Sandbox {
  let stopping: { graceMs: number; killed: boolean } | null = null;
  const pid = child.pid!;
  const killGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        child.kill(sig);
      } catch {
        /* already gone */
      }
    }
  };
  // Errors on the pipes (EPIPE after the server died) are reported through `exited`.
  child.stdin!.on("error", () => {});
  child.stdout!.on("error", () => {});
  child.stderr!.on("error", () => {});

  const exited = new Promise<SandboxExit>((resolve) => {
    child.once("error", () => {});
    child.once("exit", (code, signal) => {
      // Whatever the leader did, take the rest of its group with it.
      killGroup("SIGKILL");
      let cause: ExitCause;
      let message: string;
      const who = `server "${opts.serverName}"`;
      if (stopping) {
        cause = "stopped";
        message = stopping.killed
          ? `${who} was killed with SIGKILL after a ${stopping.graceMs} ms grace period`
          : `${who} stopped`;
      } else if (signal) {
        cause = "signalled";
        message = `${who} was killed by ${signal}`;
      } else {
        cause = "exited";
        message = `${who} exited with code ${code}`;
      }
      const base: SandboxExit = { code, signal, cause, message };
      const done = opts.cleanup ? opts.cleanup(base).catch(() => undefined) : Promise.resolve(undefined);
      void done.then((refined) => resolve({ ...base, ...(refined ?? {}) }));
    });
  });

  const stop = async (graceMs = opts.defaultGraceMs): Promise<SandboxExit> => {
    if (!stopping && child.exitCode === null && child.signalCode === null) {
      stopping = { graceMs, killed: false };
      const st = stopping;
      child.stdin!.end();
      const term = setTimeout(() => killGroup("SIGTERM"), Math.min(graceMs / 2, 1000));
      const kill = setTimeout(() => {
        st.killed = true;
        killGroup("SIGKILL");
      }, graceMs);
      void exited.finally(() => {
        clearTimeout(term);
        clearTimeout(kill);
      });
    }
    return exited;
  };

  return {
    backend: opts.backend,
    stdin: child.stdin as Writable,
    stdout: child.stdout as Readable,
    stderr: child.stderr as Readable,
    exited,
    stop,
    details: { pid: String(pid), ...(opts.details ?? {}) },
  };
}

/** Look a program up on PATH the way execvp would; returns an absolute path or null. */
export { whichSync } from "./which.js";
