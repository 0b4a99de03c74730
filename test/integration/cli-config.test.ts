// The real `nucleus` CLI (built dist/, spawned as a process) on config files:
// exit codes, every problem listed, --json shapes, and no secret value in explain.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(repo, "bin", "nucleus");
let dir: string;

beforeAll(() => {
  execFileSync("npm", ["run", "build"], { cwd: repo, stdio: "pipe", timeout: 180_000 });
  dir = realpathSync(mkdtempSync(join(tmpdir(), "nucleus-cli-config-")));
  mkdirSync(join(dir, "home"));
  mkdirSync(join(dir, "docs"));
}, 240_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function nucleus(args: string[], env: Record<string, string> = {}, cwd = dir) {
  const res = spawnSync(process.execPath, [bin, ...args], {
    cwd,
    encoding: "utf8",
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(dir, "home"), ...env },
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

function config(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const BAD = `
[servers.github]
command = ["node", "-e", "0"]
allowed_host = ["api.github.com"]
allowed_hosts = ["*.com", "ok.example.com:99999"]
secrets = ["NOPE"]

[servers.fs]
command = ["no-such-program-nucleus"]
vm_profile = "filesystem-readonly"
allowed_paths = ["relative/docs"]
`;

describe("nucleus check", () => {
  it("passes the shipped example", () => {
    const r = nucleus(["-c", join(repo, "examples", "nucleus.toml"), "check"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("config OK: 4 servers (everything, filesystem, explorer, memory)\n");
    expect(r.code).toBe(0);
  });

  it("exits 2 and prints every problem, sorted, with lines", () => {
    const r = nucleus(["-c", config("bad.toml", BAD), "check"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trim().split("\n");
    expect(lines[0]).toBe(`config ${join(dir, "bad.toml")} has 6 problems:`);
    expect(lines.slice(1).map((l) => l.trim().split(":")[0])).toEqual([
      "servers.fs.allowed_paths[0]",
      "servers.fs.command[0]",
      "servers.github.allowed_host",
      "servers.github.allowed_hosts[0]",
      "servers.github.allowed_hosts[1]",
      "servers.github.secrets[0]",
    ]);
    expect(r.stderr).toContain(`servers.github.allowed_hosts[0]: "*.com" is too broad`);
    expect(r.stderr).toMatch(/servers\.github\.allowed_host: unknown key \(did you mean "allowed_hosts"\?\) \(line 4\)/);
  });

  it("--json gives {ok, problems:[{path,line,message}], warnings}", () => {
    const bad = nucleus(["-c", join(dir, "bad.toml"), "check", "--json"]);
    expect(bad.code).toBe(2);
    const out = JSON.parse(bad.stdout) as { ok: boolean; problems: Array<{ path: string; line: number | null; message: string }>; warnings: unknown[] };
    expect(out.ok).toBe(false);
    expect(out.problems).toHaveLength(6);
    expect(out.problems[0]).toEqual({ path: "servers.fs.allowed_paths[0]", line: 11, message: expect.stringMatching(/relative path/) });
    expect(out.warnings).toEqual([]);

    const risky = config("risky.toml", `[servers.raw]\ncommand = ["node", "-e", "0"]\nbackend = "unsandboxed"\ninsecure_unsandboxed = true\n`);
    const ok = nucleus(["-c", risky, "check", "--json"]);
    expect(ok.code).toBe(0);
    const okOut = JSON.parse(ok.stdout) as { ok: boolean; problems: unknown[]; warnings: Array<{ path: string; line: number; message: string }> };
    expect(okOut.ok).toBe(true);
    expect(okOut.problems).toEqual([]);
    expect(okOut.warnings).toEqual([{ path: "servers.raw.insecure_unsandboxed", line: 4, message: expect.stringMatching(/without a sandbox/) }]);
  });

  it("prints a warning line for insecure_unsandboxed", () => {
    const r = nucleus(["-c", join(dir, "risky.toml"), "check"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("config OK: 1 server (raw)\n");
    expect(r.stderr).toMatch(/^warning: servers\.raw\.insecure_unsandboxed: server "raw" may run without a sandbox/);
  });

  it("exits 2 naming both places when no config is found", () => {
    const empty = join(dir, "empty-cwd");
    mkdirSync(empty, { recursive: true });
    const r = nucleus(["check"], { XDG_CONFIG_HOME: join(dir, "xdg") }, empty);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(join(empty, "nucleus.toml"));
    expect(r.stderr).toContain(join(dir, "xdg", "nucleus", "nucleus.toml"));
  });

  it("finds ./nucleus.toml in the working directory", () => {
    const cwd = join(dir, "with-local");
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, "nucleus.toml"), `[servers.one]\ncommand = ["node", "-e", "0"]\n`);
    const r = nucleus(["check"], {}, cwd);
    expect(r.stdout).toBe("config OK: 1 server (one)\n");
    expect(r.code).toBe(0);
  });
});

describe("nucleus explain", () => {
  const CANARY = "canary-secret-value-7f3a9c";
  let cfg: string;
  let marker: string;
  beforeAll(() => {
    const secretFile = join(dir, "token.txt");
    writeFileSync(secretFile, `${CANARY}-file`, { mode: 0o600 });
    marker = join(dir, "command-ran");
    cfg = config(
      "explain.toml",
      `
[profiles.api]
extends = "network-only"
allowed_hosts = ["*.example.com"]
memory_mib = 256

[servers.github]
command = ["node", "-e", "0"]
vm_profile = "api"
allowed_hosts = ["api.github.com", "10.0.0.0/8:5432"]
secrets = ["GITHUB_TOKEN", { name = "FILE_TOKEN", as = "file", target = "token" }, "CMD_TOKEN"]
tools = { deny = ["delete_*"] }

[servers.other]
command = ["node", "-e", "0"]

[secrets.GITHUB_TOKEN]
from = "env"
env = "NUCLEUS_TEST_CANARY"
[secrets.FILE_TOKEN]
from = "file"
path = "${secretFile}"
[secrets.CMD_TOKEN]
from = "command"
command = ["/bin/sh", "-c", "echo ${CANARY}-cmd; touch ${marker}"]
`,
    );
  });

  it("shows the effective policy and no secret value", () => {
    const r = nucleus(["-c", cfg, "explain", "github"], { NUCLEUS_TEST_CANARY: CANARY });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("profile:   api (user profile)");
    expect(r.stdout).toMatch(/backend: +auto/);
    expect(r.stdout).toContain("*.example.com: subdomains of example.com (not example.com itself), ports 443, 80 (default); public addresses only");
    expect(r.stdout).toContain("api.github.com: api.github.com only (not its subdomains), ports 443, 80 (default); its public or private");
    expect(r.stdout).toContain("10.0.0.0/8:5432: addresses in 10.0.0.0/8, port 5432; special ranges");
    expect(r.stdout).toContain("GITHUB_TOKEN → environment variable GITHUB_TOKEN");
    expect(r.stdout).toContain("FILE_TOKEN → file token");
    expect(r.stdout).toMatch(/memory +256 MiB \(explicit\)/);
    expect(r.stdout).toMatch(/cpus +1 \(default\)/);
    expect(r.stdout).toContain("deny delete_*");
    expect(r.stdout).toContain("network:   allowlist");
    expect(r.stdout + r.stderr).not.toContain(CANARY);
    // The command secret was never run.
    expect(existsSync(marker)).toBe(false);
  });

  it("--json gives the resolved spec with what each host rule admits, without values", () => {
    const r = nucleus(["-c", cfg, "explain", "github", "--json"], { NUCLEUS_TEST_CANARY: CANARY });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      name: string;
      network: { mode: string; hosts: Array<{ raw: string; admits: string }> };
      secrets: Array<{ name: string; target: string; as: string }>;
      limits: { memoryMiB: number; explicit: { memory: boolean } };
    };
    expect(out.name).toBe("github");
    expect(out.network.mode).toBe("allowlist");
    expect(out.network.hosts.map((h) => h.raw)).toEqual(["*.example.com", "api.github.com", "10.0.0.0/8:5432"]);
    expect(out.network.hosts[0]!.admits).toMatch(/^subdomains of example\.com/);
    expect(out.secrets).toEqual([
      { name: "GITHUB_TOKEN", as: "env", target: "GITHUB_TOKEN" },
      { name: "FILE_TOKEN", as: "file", target: "token" },
      { name: "CMD_TOKEN", as: "env", target: "CMD_TOKEN" },
    ]);
    expect(out.limits.memoryMiB).toBe(256);
    expect(out.limits.explicit.memory).toBe(true);
    expect(r.stdout).not.toContain(CANARY);
    expect(existsSync(marker)).toBe(false);
  });

  it("exits 2 for an unknown server and lists the known ones", () => {
    const r = nucleus(["-c", cfg, "explain", "gitlab"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`no server "gitlab"`);
    expect(r.stderr).toContain("known servers: github, other");
  });

  it("exits 2 on an invalid config, listing its problems", () => {
    const r = nucleus(["-c", join(dir, "bad.toml"), "explain", "github"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("has 6 problems");
    expect(r.stderr).toContain("servers.github.secrets[0]");
  });
});
