// Config values that name Object.prototype members or hold a NUL byte (review L7):
// each is a config problem (exit 2), never a crash, and never mistaken for a built-in.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { problemLines, TempConfigDir } from "./helpers.js";

let t: TempConfigDir;
beforeEach(() => {
  t = new TempConfigDir();
});
afterEach(() => t.cleanup());

const KNOWN = "known profiles: filesystem-readonly, filesystem-readwrite, network-only, database-client, locked";

describe("profile names that are Object.prototype members", () => {
  it.each(["toString", "valueOf", "hasOwnProperty", "constructor", "__proto__"])("vm_profile = %j is an unknown profile", async (name) => {
    const res = await t.check(`[servers.a]\ncommand = ["/bin/true"]\nvm_profile = "${name}"\n`);
    expect(problemLines(res)).toEqual([`servers.a.vm_profile: unknown profile "${name}"; ${KNOWN}`]);
  });

  it('extends = "constructor" is an unknown profile', async () => {
    const res = await t.check(`[profiles.p]\nextends = "constructor"\n[servers.a]\ncommand = ["/bin/true"]\nvm_profile = "p"\n`);
    expect(problemLines(res)).toEqual([`profiles.p.extends: unknown profile "constructor"; ${KNOWN}, p`]);
  });

  it("[profiles.toString] is a user profile, not a built-in, and a server may use it", async () => {
    const res = await t.check(`[profiles.toString]\nextends = "locked"\nmemory_mib = 64\n[servers.a]\ncommand = ["/bin/true"]\nvm_profile = "toString"\n`);
    expect(res.problems).toEqual([]);
    expect(res.config!.servers[0]!.limits.memoryMiB).toBe(64);
  });

  it("a secret delivered as env \"toString\" is not taken for a shadowing env key", async () => {
    const res = await t.check(`[servers.a]\ncommand = ["/bin/true"]\nsecrets = [{ name = "S", target = "toString" }]\n[secrets.S]\nfrom = "env"\n`);
    expect(res.problems).toEqual([]);
  });
});

describe("NUL bytes", () => {
  it("are refused in every path, argv entry and run_as, each once", async () => {
    const res = await t.check(`
[gateway]
audit_log = "/tmp/a\\u0000b"
run_as = "ro\\u0000ot"
[servers.a]
command = ["/bin/true", "x\\u0000"]
args = ["\\u0000"]
allowed_paths = ["/tmp\\u0000x"]
writable_paths = ["/tmp\\u0000y"]
cwd = "/tmp\\u0000"
code_dir = ["/tmp/\\u0000c"]
[secrets.S]
from = "file"
path = "/tmp/\\u0000x"
[secrets.C]
from = "command"
command = ["/bin/echo\\u0000"]
`);
    const nul = "must not contain a NUL character";
    expect(problemLines(res)).toEqual([
      `gateway.audit_log: ${nul}`,
      `gateway.run_as: ${nul}`,
      `secrets.C.command[0]: ${nul}`,
      `secrets.S.path: ${nul}`,
      `servers.a.allowed_paths[0]: ${nul}`,
      `servers.a.args[0]: ${nul}`,
      `servers.a.code_dir[0]: ${nul}`,
      `servers.a.command[1]: ${nul}`,
      `servers.a.cwd: ${nul}`,
      `servers.a.writable_paths[0]: ${nul}`,
    ]);
  });
});
