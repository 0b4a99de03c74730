import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { problemLines, TempConfigDir } from "./helpers.js";

let t: TempConfigDir;
beforeEach(() => {
  t = new TempConfigDir();
});
afterEach(() => t.cleanup());

const node = `command = ["node", "-e", "0"]`;

describe("built-in profiles", () => {
  it("filesystem-readonly: paths read-only, network none; refuses writable paths and hosts", async () => {
    const docs = t.mkdir("docs");
    const ok = await t.check(`[servers.a]\n${node}\nvm_profile = "filesystem-readonly"\nallowed_paths = ["${docs}"]\n`);
    const spec = ok.config!.servers[0]!;
    expect(spec.profile).toBe("filesystem-readonly");
    expect(spec.paths).toEqual([{ path: docs, writable: false }]);
    expect(spec.network).toEqual({ mode: "none" });
    const bad = await t.check(`[servers.a]\n${node}\nvm_profile = "filesystem-readonly"\nwritable_paths = ["${docs}"]\nallowed_hosts = ["a.example.com"]\n`);
    expect(problemLines(bad)).toEqual([
      `servers.a.allowed_hosts: profile "filesystem-readonly" allows no network; remove allowed_hosts or choose network-only or database-client`,
      `servers.a.writable_paths: profile "filesystem-readonly" grants read-only paths only; use vm_profile = "filesystem-readwrite" to allow writes`,
    ]);
  });

  it("filesystem-readwrite: allowed paths writable unless writable_paths names a subset", async () => {
    const a = t.mkdir("a");
    const b = t.mkdir("b");
    const all = await t.check(`[servers.x]\n${node}\nvm_profile = "filesystem-readwrite"\nallowed_paths = ["${a}", "${b}"]\n`);
    expect(all.config!.servers[0]!.paths).toEqual([
      { path: a, writable: true },
      { path: b, writable: true },
    ]);
    const subset = await t.check(`[servers.x]\n${node}\nvm_profile = "filesystem-readwrite"\nallowed_paths = ["${a}", "${b}"]\nwritable_paths = ["${b}"]\n`);
    expect(subset.config!.servers[0]!.paths).toEqual([
      { path: a, writable: false },
      { path: b, writable: true },
    ]);
  });

  it("network-only: no paths, allowlist network", async () => {
    const docs = t.mkdir("docs");
    const ok = await t.check(`[servers.a]\n${node}\nvm_profile = "network-only"\nallowed_hosts = ["api.github.com"]\n`);
    const spec = ok.config!.servers[0]!;
    expect(spec.paths).toEqual([]);
    expect(spec.network.mode).toBe("allowlist");
    const bad = await t.check(`[servers.a]\n${node}\nvm_profile = "network-only"\nallowed_paths = ["${docs}"]\n`);
    expect(problemLines(bad)).toEqual([`servers.a.allowed_paths: profile "network-only" grants no paths; remove allowed_paths or choose a filesystem-* profile`]);
    // Narrowing below the ceiling is fine.
    const narrow = await t.check(`[servers.a]\n${node}\nvm_profile = "network-only"\nnetwork = "none"\n`);
    expect(narrow.config!.servers[0]!.network).toEqual({ mode: "none" });
  });

  it("network-only with no hosts warns that nothing is reachable", async () => {
    const res = await t.check(`[servers.a]\n${node}\nvm_profile = "network-only"\n`);
    expect(res.problems).toEqual([]);
    expect(res.warnings.map((w) => w.message)).toEqual([expect.stringMatching(/no allowed_hosts: it can reach no host/)]);
  });

  it("database-client: every host names its port", async () => {
    const res = await t.check(`[servers.db]\n${node}\nvm_profile = "database-client"\nallowed_hosts = ["db.internal:5432", "replica.internal"]\n`);
    expect(problemLines(res)).toEqual([`servers.db.allowed_hosts[1]: profile "database-client" needs an explicit port on every host, e.g. "replica.internal:5432"`]);
  });

  it("locked: no paths, no network", async () => {
    const docs = t.mkdir("docs");
    const res = await t.check(`[servers.a]\n${node}\nvm_profile = "locked"\nallowed_paths = ["${docs}"]\nnetwork = "allowlist"\n`);
    expect(problemLines(res)).toEqual([
      `servers.a.allowed_paths: profile "locked" grants no paths; remove allowed_paths or choose a filesystem-* profile`,
      `servers.a.network: profile "locked" allows no network; choose network-only or database-client to reach hosts`,
    ]);
    const ok = await t.check(`[servers.a]\n${node}\nvm_profile = "locked"\nmemory_mib = 128\n`);
    expect(ok.config!.servers[0]!.limits.memoryMiB).toBe(128);
  });
});

describe("user profiles", () => {
  it("extend a built-in: lists concatenate, scalars are overridden, deny lists unite, limits count as explicit", async () => {
    const res = await t.check(`
[profiles.github-like]
extends = "network-only"
allowed_hosts = ["api.github.com"]
memory_mib = 256
cpus = 2
tools = { allow = ["read_*"], deny = ["delete_*"] }
timeouts = { startup_ms = 5000 }

[servers.a]
${node}
vm_profile = "github-like"
allowed_hosts = ["uploads.github.com:443"]
cpus = 0.5
tools = { deny = ["admin_*"] }
timeouts = { request_ms = 2000 }
`);
    expect(res.problems).toEqual([]);
    const s = res.config!.servers[0]!;
    expect(s.profile).toBe("github-like");
    expect(s.network.mode === "allowlist" && s.network.hosts.map((h) => h.raw)).toEqual(["api.github.com", "uploads.github.com:443"]);
    expect(s.limits).toEqual({ memoryMiB: 256, cpus: 0.5, pids: 256, tmpMiB: 64, explicit: { memory: true, cpus: true, pids: false } });
    expect(s.tools).toEqual({ allow: ["read_*"], deny: ["delete_*", "admin_*"] });
    expect(s.timeouts).toEqual({ startupMs: 5000, requestMs: 2000, shutdownGraceMs: 5000 });
  });

  it("inherit the ceiling of the built-in they extend", async () => {
    const docs = t.mkdir("docs");
    const res = await t.check(`
[profiles.mine]
extends = "locked"
allowed_hosts = ["a.example.com"]
[profiles.deeper]
extends = "mine"
[servers.a]
${node}
vm_profile = "deeper"
allowed_paths = ["${docs}"]
`);
    expect(problemLines(res)).toEqual([
      `profiles.mine.allowed_hosts: profile "locked" allows no network; remove allowed_hosts or choose network-only or database-client`,
      `servers.a.allowed_paths: profile "deeper" (via mine → locked) grants no paths; remove allowed_paths or choose a filesystem-* profile`,
    ]);
  });

  it("without extends set defaults only", async () => {
    const docs = t.mkdir("docs");
    const res = await t.check(`
[profiles.docs]
allowed_paths = ["${docs}"]
pids = 64
[servers.a]
${node}
vm_profile = "docs"
allowed_hosts = ["a.example.com"]
`);
    expect(res.problems).toEqual([]);
    const s = res.config!.servers[0]!;
    expect(s.paths).toEqual([{ path: docs, writable: false }]);
    expect(s.limits.pids).toBe(64);
    expect(s.limits.explicit.pids).toBe(true);
    expect(s.network.mode).toBe("allowlist");
  });

  it("refuses a server adding hosts to a profile that says network = none", async () => {
    const res = await t.check(`[profiles.quiet]\nnetwork = "none"\n[servers.a]\n${node}\nvm_profile = "quiet"\nallowed_hosts = ["a.example.com"]\n`);
    expect(problemLines(res)).toEqual([`profiles.quiet.network: "none" contradicts allowed_hosts of servers.a; remove one of them`]);
  });

  it("reports cycles, unknown bases and names taken by built-ins", async () => {
    const res = await t.check(`
[profiles.a]
extends = "b"
[profiles.b]
extends = "a"
[profiles.c]
extends = "nope"
[profiles.locked]
pids = 1
`);
    expect(problemLines(res)).toEqual([
      `profiles.a.extends: profile "b" extends itself through b → a → b`,
      `profiles.b.extends: profile "a" extends itself through a → b → a`,
      `profiles.c.extends: unknown profile "nope"; known profiles: filesystem-readonly, filesystem-readwrite, network-only, database-client, locked, a, b, c`,
      `profiles.locked: "locked" is a built-in profile; give your profile another name (it may say extends = "locked")`,
    ]);
  });
});
