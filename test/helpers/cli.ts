// Test helper: run the built CLI (bin/nucleus) as a real process.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
export const NUCLEUS = join(REPO, "bin", "nucleus");

/** Build dist/ once per test file (tsc is incremental enough for this suite). */
export function ensureBuilt(): void {
  if (process.env.NUCLEUS_SKIP_BUILD === "1" && existsSync(join(REPO, "dist", "cli", "run-main.js"))) return;
  const r = spawnSync("npm", ["run", "--silent", "build"], { cwd: REPO, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stdout}\n${r.stderr}`);
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [NUCLEUS, ...args], {
      cwd: opts.cwd ?? REPO,
      env: opts.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** A temp dir with a nucleus.toml; removed by the returned cleanup. */
export function tempConfig(toml: string): { dir: string; path: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "nucleus-cfg-"));
  const path = join(dir, "nucleus.toml");
  writeFileSync(path, toml);
  return { dir, path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
