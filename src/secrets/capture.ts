// Runs a secret-producing program (a password manager's CLI, `secret-tool`)
// without a shell and captures its stdout, bounded and with a timeout.
// Not responsible for messages: callers turn the outcome into a sentence.

import { spawn } from "node:child_process";

/** Largest stdout accepted from a secret command; a secret is never this long. */
export const MAX_SECRET_OUTPUT = 64 * 1024;

export type CaptureOutcome =
  | { readonly kind: "ok"; readonly stdout: string }
  | { readonly kind: "exit"; readonly code: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly kind: "timeout" }
  | { readonly kind: "too-large" }
  | { readonly kind: "spawn-error"; readonly errno: string };

export function capture(argv: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CaptureOutcome> {
  const [file, ...args] = argv;
  if (!file) return Promise.resolve({ kind: "spawn-error", errno: "EINVAL" });
  return new Promise((resolve) => {
    // SECURITY: argv array, no shell; stdin closed; stderr is drained and
    // dropped so it can never carry the value into a message. detached puts the
    // program in its own process group so a timeout kills its children too.
    const child = spawn(file, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (outcome: CaptureOutcome, kill: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (kill && child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: "timeout" }, true), timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_SECRET_OUTPUT) finish({ kind: "too-large" }, true);
      else chunks.push(chunk);
    });
    child.stderr.resume();
    child.on("error", (err: NodeJS.ErrnoException) => finish({ kind: "spawn-error", errno: err.code ?? "EIO" }, false));
    child.on("close", (code, signal) => {
      if (code === 0) finish({ kind: "ok", stdout: Buffer.concat(chunks).toString("utf8") }, false);
      else finish({ kind: "exit", code, signal }, false);
    });
  });
}
