import { symlinkSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkConfigText, loadConfig } from "../../../src/config/load.js";
import { NucleusError } from "../../../src/errors.js";
import { problemLines, TempConfigDir } from "./helpers.js";

let t: TempConfigDir;
beforeEach(() => {
  t = new TempConfigDir();
});
afterEach(() => t.cleanup());

const node = `command = ["node", "-e", "0"]`;

describe("a valid config", () => {
  it("resolves to a deep-frozen NucleusConfig with defaults", async () => {
    const docs = t.mkdir("docs");
    const out = t.mkdir("out");
    const path = t.file(
      "nucleus.toml",
      `
[gateway]
audit_log = "~/audit.jsonl"
[gateway.http]
port = 9000

[servers.fs]
${node}
allowed_paths = ["${docs}"]
writable_paths = ["./out"]
env = { LOG_LEVEL = "debug" }

[servers.github]
${node}
allowed_hosts = ["API.github.com", "db.internal:5432"]
secrets = ["GITHUB_TOKEN", { name = "PEM", as = "file", target = "key.pem" }]
memory_mib = 256
tools = { allow = ["read_*"], deny = ["delete_*"] }
timeouts = { request_ms = 1000 }

[secrets.GITHUB_TOKEN]
from = "env"
[secrets.PEM]
from = "file"
path = "~/key.pem"
`,
    );
    const config = await loadConfig(path);
    expect(config.source).toBe(path);
    expect(config.gateway).toEqual({
      backend: "auto",
      runAs: null,
      auditLog: join(homedir(), "audit.jsonl"),
      auditArguments: false,
      auditMaxBytes: 10485760,
      maxMessageBytes: 16777216,
      http: { listen: "127.0.0.1", port: 9000, token: null, allowedOrigins: [], maxSessions: 8, idleTimeoutMs: 900000, insecureListenAny: false },
    });
    const [fs, gh] = config.servers;
    expect(fs!.launch.argv).toEqual(["/usr/bin/node", "-e", "0"].map((a, i) => (i === 0 ? fs!.launch.argv[0] : a)));
    expect(fs!.launch.argv[0]).toMatch(/^\/.*node$/);
    expect(fs!.paths).toEqual([
      { path: docs, writable: false },
      { path: out, writable: true },
    ]);
    expect(fs!.network).toEqual({ mode: "none" });
    expect(fs!.launch.env).toEqual({ LOG_LEVEL: "debug" });
    expect(fs!.limits).toEqual({ memoryMiB: 512, cpus: 1, pids: 256, tmpMiB: 64, explicit: { memory: false, cpus: false, pids: false } });
    expect(fs!.timeouts).toEqual({ startupMs: 30000, requestMs: 60000, shutdownGraceMs: 5000 });
    expect(fs!.lazy).toBe(false);
    expect(fs!.redactResults).toBe(true);
    expect(fs!.backend).toBe("auto");
    expect(gh!.network.mode).toBe("allowlist");
    expect(gh!.network.mode === "allowlist" && gh!.network.hosts.map((h) => [h.host, h.ports])).toEqual([
      ["api.github.com", [443, 80]],
      ["db.internal", [5432]],
    ]);
    expect(gh!.secrets).toEqual([
      { name: "GITHUB_TOKEN", as: "env", target: "GITHUB_TOKEN" },
      { name: "PEM", as: "file", target: "key.pem" },
    ]);
    expect(gh!.limits.memoryMiB).toBe(256);
    expect(gh!.limits.explicit).toEqual({ memory: true, cpus: false, pids: false });
    expect(gh!.tools).toEqual({ allow: ["read_*"], deny: ["delete_*"] });
    expect(gh!.timeouts.requestMs).toBe(1000);
    expect(config.secrets.GITHUB_TOKEN).toEqual({
      name: "GITHUB_TOKEN", from: "env", env: "GITHUB_TOKEN", path: null, insecurePermissions: false, command: null, timeoutMs: 10000, attributes: null,
    });
    expect(config.secrets.PEM!.path).toBe(join(homedir(), "key.pem"));
    // Deep-frozen.
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.servers)).toBe(true);
    expect(Object.isFrozen(fs!.paths[0])).toBe(true);
    expect(Object.isFrozen(fs!.launch.argv)).toBe(true);
    expect(Object.isFrozen(gh!.limits.explicit)).toBe(true);
    expect(() => (fs!.launch.argv as string[]).push("x")).toThrow();
  });

  it("resolves ./ and ../ in command and args against the config directory", async () => {
    t.mkdir("srv");
    t.file("srv/package.json", "{}");
    const script = t.file("srv/index.js", "");
    const data = t.mkdir("data");
    const res = await t.check(`[servers.a]\ncommand = ["node", "./srv/index.js", "--x"]\nargs = ["./data", "plain", "../elsewhere"]\n`);
    expect(res.problems).toEqual([]);
    const spec = res.config!.servers[0]!;
    expect(spec.launch.argv.slice(1)).toEqual([script, "--x", data, "plain", join(t.dir, "..", "elsewhere")]);
    expect(spec.launch.args).toEqual([data, "plain", join(t.dir, "..", "elsewhere")]);
    expect(spec.launch.codeDirs).toEqual([join(t.dir, "srv")]);
  });

  it("parses a package server and leaves argv for the package store", async () => {
    const res = await t.check(`[servers.mem]\npackage = "npm:@modelcontextprotocol/server-memory@2026.8.31"\nargs = ["--flag"]\n`);
    expect(res.problems).toEqual([]);
    const l = res.config!.servers[0]!.launch;
    expect(l.package).toEqual({ registry: "npm", name: "@modelcontextprotocol/server-memory", version: "2026.8.31", spec: "npm:@modelcontextprotocol/server-memory@2026.8.31" });
    expect(l.argv).toEqual([]);
    expect(l.args).toEqual(["--flag"]);
  });
});

describe("problems", () => {
  it("lists every problem at once, sorted by path, in the CONFIG_INVALID message with lines", async () => {
    const path = t.file(
      "nucleus.toml",
      `[servers.zeta]
${node}
allowed_host = ["x.example.com"]

[servers.github]
${node}
allowed_hosts = [
  "api.github.com", "db.internal:5432", "*.com"]
memory_mib = "lots"
`,
    );
    const err = await loadConfig(path).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NucleusError);
    const e = err as NucleusError;
    expect(e.code).toBe("CONFIG_INVALID");
    expect(e.exitCode).toBe(2);
    const lines = e.message.split("\n").slice(1);
    expect(lines).toEqual([
      `  - servers.github.allowed_hosts[2]: "*.com" is too broad: a wildcard needs at least two labels after "*." (e.g. "*.example.com") (line 8)`,
      `  - servers.github.memory_mib: expected a number, got string (line 9)`,
      `  - servers.zeta.allowed_host: unknown key (did you mean "allowed_hosts"?) (line 3)`,
    ]);
    expect(e.message).toContain("has 3 problems");
  });

  it("names unknown keys at every level", async () => {
    const res = await t.check(`
[gatway]
[gateway]
backend = "auto"
audit_logs = "x"
[gateway.http]
lisen = "127.0.0.1"
[servers.a]
${node}
tools = { alow = ["x"] }
timeouts = { startup = 1 }
secrets = [{ name = "S", trget = "X" }]
[secrets.S]
from = "env"
form = "env"
[profiles.p]
memroy_mib = 5
`);
    expect(problemLines(res)).toEqual([
      `gateway.audit_logs: unknown key (did you mean "audit_log"?)`,
      `gateway.http.lisen: unknown key (did you mean "listen"?)`,
      `gatway: unknown key (did you mean "gateway"?)`,
      `profiles.p.memroy_mib: unknown key (did you mean "memory_mib"?)`,
      `secrets.S.form: unknown key (did you mean "from"?)`,
      `servers.a.secrets[0].trget: unknown key (did you mean "target"?)`,
      `servers.a.timeouts.startup: unknown key (did you mean "startup_ms"?)`,
      `servers.a.tools.alow: unknown key (did you mean "allow"?)`,
    ]);
    expect(res.problems.find((p) => p.path === "servers.a.tools.alow")!.line).toBe(10);
  });

  it("reports wrong types and ranges", async () => {
    const res = await t.check(`
[gateway]
backend = "docker"
max_message_bytes = 10
[servers.a]
${node}
cpus = 0
pids = 1.5
lazy = "yes"
network = "open"
args = "x"
env = { "bad-name" = "1", OK = 2 }
`);
    expect(problemLines(res)).toEqual([
      `gateway.backend: must be one of "auto", "bubblewrap", "qemu", "firecracker", "unsandboxed"`,
      `gateway.max_message_bytes: must be at least 1024`,
      `servers.a.args: expected an array, got string`,
      `servers.a.cpus: must be greater than 0`,
      `servers.a.env.OK: expected a string, got number`,
      expect.stringMatching(/^servers\.a\.env\.bad-name: invalid key name: must be a variable name/),
      `servers.a.lazy: expected a boolean, got string`,
      `servers.a.network: must be one of "none", "allowlist"`,
      `servers.a.pids: expected an integer, got number`,
    ]);
  });

  it("rejects relative, missing and symlinked paths, and names the real path", async () => {
    const real = t.mkdir("real/docs");
    symlinkSync(real, join(t.dir, "link"));
    symlinkSync(join(t.dir, "real"), join(t.dir, "parentlink"));
    const res = await t.check(`[servers.a]
${node}
allowed_paths = ["docs", "${t.dir}/missing", "${t.dir}/link", "${t.dir}/parentlink/docs", "/", "./real/docs"]
writable_paths = ["/proc"]
`);
    expect(problemLines(res)).toEqual([
      `servers.a.allowed_paths[0]: "docs" is a relative path; write an absolute path, "~/…", or "./…" for a path relative to the config file`,
      `servers.a.allowed_paths[1]: "${t.dir}/missing" does not exist`,
      `servers.a.allowed_paths[2]: "${t.dir}/link" is or passes through a symlink; use the real path ${real}`,
      `servers.a.allowed_paths[3]: "${t.dir}/parentlink/docs" is or passes through a symlink; use the real path ${real}`,
      `servers.a.allowed_paths[4]: "/" is too broad to grant: it would expose the whole host filesystem`,
      `servers.a.writable_paths[0]: "/proc" is too broad to grant: it would expose kernel interfaces`,
    ]);
  });

  it("rejects over-broad and malformed host rules and invalid ports", async () => {
    const res = await t.check(`[servers.a]
${node}
allowed_hosts = ["*", "*.co.uk", "ok.example.com", "x.example.com:70000", "2130706433"]
`);
    expect(problemLines(res)).toEqual([
      `servers.a.allowed_hosts[0]: "*" is too broad: it admits every host; list the hosts the server needs`,
      `servers.a.allowed_hosts[1]: "*.co.uk" is too broad: co.uk is a public suffix shared by unrelated owners; name the hosts instead`,
      `servers.a.allowed_hosts[3]: "x.example.com:70000": port "70000" is not a number from 1 to 65535`,
      `servers.a.allowed_hosts[4]: "2130706433": decimal IP notation is not accepted; write it as a plain dotted quad such as 127.0.0.1`,
    ]);
    expect(res.problems.every((p) => p.line === 3)).toBe(true);
  });

  it("reports a duplicate server table with smol-toml's line", async () => {
    const res = await t.check(`[servers.a]\n${node}\n\n[servers.a]\n${node}\n`);
    expect(res.problems).toHaveLength(1);
    expect(res.problems[0]!.line).toBe(4);
    expect(res.problems[0]!.path).toBe("servers.a");
    expect(res.problems[0]!.message).toMatch(/TOML syntax: .*defined twice/);
  });

  it("reports TOML syntax errors with their line", async () => {
    const res = await t.check(`[gateway]\nbackend = \n`);
    expect(res.problems[0]).toMatchObject({ line: 2, message: expect.stringMatching(/^TOML syntax: /) });
  });

  it("checks server names", async () => {
    const res = await t.check(`[servers.a__b]\n${node}\n[servers."has space"]\n${node}\n[servers.${"x".repeat(33)}]\n${node}\n`);
    expect(problemLines(res).map((l) => l.split(":")[0])).toEqual([`servers."has space"`, "servers.a__b", `servers.${"x".repeat(33)}`]);
    expect(res.problems[1]!.message).toMatch(/without "__"/);
    expect(res.problems[0]!.line).toBe(3);
    // "a_" would make a's tool "_echo" and a_'s "echo" both "a___echo": one server could hide another's tool.
    const trailing = await t.check(`[servers.a_]\n${node}\n[servers.b-_c]\n${node}\n`);
    expect(problemLines(trailing).map((l) => l.split(":")[0])).toEqual(["servers.a_"]);
    expect(trailing.problems[0]!.message).toMatch(/not ending in "_"/);
  });

  it("needs exactly one of command and package, in the exact npm form", async () => {
    const res = await t.check(`
[servers.both]
${node}
package = "npm:a@1.0.0"
[servers.neither]
lazy = true
[servers.range]
package = "npm:a@^1.0.0"
[servers.tag]
package = "npm:a@latest"
[servers.noprefix]
package = "a@1.0.0"
`);
    expect(problemLines(res)).toEqual([
      `servers.both.package: give either command or package, not both`,
      `servers.neither: needs either command = ["program", …] or package = "npm:NAME@VERSION"`,
      expect.stringMatching(/^servers\.noprefix\.package: must be "npm:NAME@EXACT_VERSION"/),
      expect.stringMatching(/^servers\.range\.package: must be "npm:NAME@EXACT_VERSION"/),
      expect.stringMatching(/^servers\.tag\.package: must be "npm:NAME@EXACT_VERSION"/),
    ]);
  });

  it("reports unknown profiles and secrets, and commands not on PATH", async () => {
    const res = await t.check(`
[servers.a]
command = ["no-such-program-nucleus"]
vm_profile = "filesystem-readonlyy"
secrets = ["MISSING"]
[secrets.HAVE]
from = "env"
`);
    expect(problemLines(res)).toEqual([
      `servers.a.command[0]: "no-such-program-nucleus" was not found on PATH; install it or give its absolute path`,
      `servers.a.secrets[0]: unknown secret "MISSING"; define [secrets.MISSING] (defined: HAVE)`,
      `servers.a.vm_profile: unknown profile "filesystem-readonlyy"; known profiles: filesystem-readonly, filesystem-readwrite, network-only, database-client, locked`,
    ]);
  });

  it("checks a program given by path", async () => {
    t.mkdir("bin");
    t.file("bin/not-exec", "");
    const res = await t.check(`[servers.a]\ncommand = ["./bin"]\n[servers.b]\ncommand = ["./bin/not-exec"]\n[servers.c]\ncommand = ["bin/x"]\n[servers.d]\ncommand = ["/bin/sh", "-c", "true"]\n`);
    expect(problemLines(res)).toEqual([
      `servers.a.command[0]: "./bin" does not exist or is not an executable file`,
      `servers.b.command[0]: "./bin/not-exec" does not exist or is not an executable file`,
      expect.stringMatching(/^servers\.c\.command\[0\]: "bin\/x" is a relative path/),
    ]);
  });

  it("refuses network = none together with allowed_hosts", async () => {
    const res = await t.check(`[servers.a]\n${node}\nnetwork = "none"\nallowed_hosts = ["a.example.com"]\n`);
    expect(problemLines(res)).toEqual([`servers.a.network: "none" contradicts allowed_hosts in the same section; remove one of them`]);
  });

  it("checks secret references and env collisions", async () => {
    const res = await t.check(`
[servers.a]
${node}
secrets = ["T", { name = "T", target = "T" }, { name = "U", as = "file", target = "../x" }, { name = "U", target = "1BAD" }]
env = { T = "shadow" }
[secrets.T]
from = "env"
[secrets.U]
from = "env"
`);
    expect(problemLines(res)).toEqual([
      `servers.a.env.T: "T" is also the target of secret "T"; a secret must not be shadowed`,
      `servers.a.secrets[1]: secrets "T" and "T" both deliver to env "T"`,
      `servers.a.secrets[2]: target "../x" must be a plain file name (letters, digits, ".", "_", "-")`,
      `servers.a.secrets[3]: target "1BAD" is not a valid environment variable name`,
    ]);
  });

  it("checks each secret source's keys", async () => {
    const res = await t.check(`
[secrets.A]
from = "file"
[secrets.B]
from = "env"
path = "/x"
command = ["pass"]
[secrets.C]
from = "command"
command = ["no-such-program-nucleus", "show"]
[secrets.D]
from = "keyring"
attributes = {}
[secrets.E]
from = "file"
path = "relative.txt"
[secrets.1X]
from = "env"
`);
    expect(problemLines(res)).toEqual([
      `secrets.1X: secret name "1X" must be letters, digits and "_", not starting with a digit`,
      `secrets.A.path: is required with from = "file"`,
      `secrets.B.command: only valid with from = "command" (this secret has from = "env")`,
      `secrets.B.path: only valid with from = "file" (this secret has from = "env")`,
      `secrets.C.command[0]: "no-such-program-nucleus" was not found on PATH; install it or give its absolute path`,
      `secrets.D.attributes: needs at least one attribute, e.g. { service = "github" }`,
      `secrets.E.path: "relative.txt" is a relative path; write an absolute path, "~/…", or "./…" for a path relative to the config file`,
    ]);
  });

  it("requires the opt-in for the unsandboxed backend and warns when it is given", async () => {
    const res = await t.check(`[servers.a]\n${node}\nbackend = "unsandboxed"\n[servers.b]\n${node}\nbackend = "unsandboxed"\ninsecure_unsandboxed = true\n`);
    expect(problemLines(res)).toEqual([expect.stringMatching(/^servers\.a\.backend: backend "unsandboxed" runs the server with no isolation/)]);
    expect(res.warnings.map((w) => w.path)).toEqual(["servers.b.insecure_unsandboxed"]);
  });

  it("resolves [gateway] run_as to a local unprivileged user, and refuses unknown users and root", async () => {
    const ok = await t.check(`[gateway]\nrun_as = "nobody"\n[servers.a]\n${node}\n`);
    expect(ok.problems).toEqual([]);
    expect(ok.config?.gateway.runAs).toEqual({ user: "nobody", uid: 65534, gid: 65534 });
    const bad = await t.check(`[gateway]\nrun_as = "no-such-user-x"\n[servers.a]\n${node}\n`);
    expect(problemLines(bad)).toEqual([expect.stringMatching(/^gateway\.run_as: no user "no-such-user-x" on this host; create one/)]);
    const root = await t.check(`[gateway]\nrun_as = "root"\n[servers.a]\n${node}\n`);
    expect(problemLines(root)).toEqual([expect.stringMatching(/^gateway\.run_as: "root" is root \(uid 0\)/)]);
  });

  it("validates the HTTP listen address and warns when it is not loopback", async () => {
    const bad = await t.check(`[gateway.http]\nlisten = "example.com"\n`);
    expect(problemLines(bad)).toEqual([`gateway.http.listen: "example.com" must be an IP address (e.g. "127.0.0.1") or "localhost"`]);
    const refused = await t.check(`[gateway.http]\nlisten = "0.0.0.0"\n[servers.a]\n${node}\n`);
    expect(problemLines(refused)).toEqual([expect.stringMatching(/^gateway\.http\.listen: "0\.0\.0\.0" is not a loopback address; set gateway\.http\.insecure_listen_any = true/)]);
    const open = await t.check(`[gateway.http]\nlisten = "0.0.0.0"\ninsecure_listen_any = true\n[servers.a]\n${node}\n`);
    expect(open.problems).toEqual([]);
    expect(open.warnings.map((w) => w.path)).toEqual(["gateway.http.listen"]);
    const token = await t.check(`[gateway.http]\ntoken = "NOPE"\nallowed_origins = ["http://localhost:3000", "localhost"]\n[servers.a]\n${node}\n`);
    expect(problemLines(token)).toEqual([
      expect.stringMatching(/^gateway\.http\.allowed_origins\[1\]: "localhost" must be an origin/),
      expect.stringMatching(/^gateway\.http\.token: unknown secret "NOPE"/),
    ]);
  });

  it("refuses to hand the HTTP endpoint's bearer token to a server", async () => {
    const text = `[gateway.http]\ntoken = "HTOK"\n[secrets.HTOK]\nfrom = "env"\n[servers.a]\n${node}\nsecrets = ["HTOK"]\n`;
    const res = await t.check(text);
    expect(problemLines(res)).toEqual([expect.stringMatching(/^servers\.a\.secrets: "HTOK" is the HTTP endpoint's bearer token/)]);
  });
});

describe("checkConfigText", () => {
  it("rejects unsafe keys", () => {
    const res = checkConfigText(`[servers.__proto__]\nx = 1\n`, join(t.dir, "n.toml"));
    expect(res.problems[0]!.message).toMatch(/unsafe/);
  });
});
