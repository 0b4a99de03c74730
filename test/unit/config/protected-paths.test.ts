// Paths a server may not be granted (src/config/protected-paths.ts), on real
// files in a private temp directory: each refusal, and what stays allowed.
import { chmodSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config/load.js";
import { NucleusError } from "../../../src/errors.js";
import { problemLines, TempConfigDir } from "./helpers.js";

let t: TempConfigDir;
beforeEach(() => {
  t = new TempConfigDir();
});
afterEach(() => t.cleanup());

const token = (rel: string) => {
  if (rel.includes("/")) t.mkdir(dirname(rel));
  const p = t.file(rel, "tok-1234567890\n");
  chmodSync(p, 0o600);
  return p;
};
/** A Node script in its own directory (with a package.json), so its code dir holds nothing else. */
const ownScript = (dir: string) => {
  t.mkdir(dir);
  t.file(`${dir}/package.json`, "{}");
  return t.file(`${dir}/srv.js`, "");
};

describe("secret files", () => {
  it("refuses the script-folder code dir that holds another server's token (review H2), names the server and the fix", async () => {
    t.file("srv.js", "");
    const b = token("b-token");
    const res = await t.check(`
[servers.a]
command = ["node", "./srv.js"]
vm_profile = "locked"

[servers.b]
command = ["node", "./srv.js"]
vm_profile = "locked"
secrets = ["BTOK"]

[secrets.BTOK]
from = "file"
path = "./b-token"
`);
    expect(res.config).toBeNull();
    expect(problemLines(res)).toEqual([
      `servers.a.command: the code directory ${t.dir} (the script's own folder or package, mounted read-only) contains the file of secret "BTOK", ${b}: a server must not see a secret it does not hold; move the script (or the protected file) into a directory of its own, or set servers.a.code_dir to the directory of the server's code only`,
    ]);
    expect(res.problems[0]!.line).toBe(3);
  });

  it("allows the same servers once the script lives in a directory of its own", async () => {
    ownScript("srv");
    token("b-token");
    const res = await t.check(`
[servers.a]
command = ["node", "./srv/srv.js"]
[servers.b]
command = ["node", "./srv/srv.js"]
secrets = ["BTOK"]
[secrets.BTOK]
from = "file"
path = "./b-token"
`);
    expect(res.problems).toEqual([]);
    expect(res.config!.servers[0]!.launch.codeDirs).toEqual([join(t.dir, "srv")]);
  });

  it("refuses an explicit code_dir and a read-only grant over another server's (or an unused) secret file", async () => {
    ownScript("srv");
    token("keys/b-token");
    token("keys/unused");
    const res = await t.check(`
[servers.a]
command = ["node", "./srv/srv.js"]
code_dir = ["./srv", "./keys"]
[servers.r]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readonly"
allowed_paths = ["./keys"]
[servers.b]
command = ["node", "./srv/srv.js"]
secrets = ["BTOK"]
[secrets.BTOK]
from = "file"
path = "./keys/b-token"
[secrets.UNUSED]
from = "file"
path = "./keys/unused"
`);
    const lines = problemLines(res);
    expect(lines).toHaveLength(4);
    expect(lines.filter((l) => l.startsWith(`servers.a.code_dir: the code directory ${join(t.dir, "keys")} contains the file of secret`))).toHaveLength(2);
    expect(lines.filter((l) => l.startsWith(`servers.r.allowed_paths: "${join(t.dir, "keys")}" (granted read-only) contains the file of secret`))).toHaveLength(2);
    expect(lines.join("\n")).toContain(`secret "UNUSED"`);
  });

  it("lets a server see the file of a secret it holds (read-only), never write it", async () => {
    ownScript("srv");
    token("keys/own");
    const config = (profile: string) => `
[servers.a]
command = ["node", "./srv/srv.js"]
vm_profile = "${profile}"
allowed_paths = ["./keys"]
secrets = ["OWN"]
[secrets.OWN]
from = "file"
path = "./keys/own"
`;
    const readOnly = await t.check(config("filesystem-readonly"));
    expect(readOnly.problems).toEqual([]);
    const writable = await t.check(config("filesystem-readwrite"));
    expect(problemLines(writable)).toEqual([
      expect.stringMatching(/^servers\.a\.allowed_paths: ".*\/keys" \(granted writable\) contains the file of secret "OWN", .*: a server that can write it could change what the gateway delivers; grant a narrower directory/),
    ]);
  });

  it("refuses a grant over the HTTP bearer token's file and names it", async () => {
    ownScript("srv");
    token("http/token");
    const res = await t.check(`
[gateway.http]
token = "HTTP_TOKEN"
[servers.a]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readonly"
allowed_paths = ["./http"]
[secrets.HTTP_TOKEN]
from = "file"
path = "./http/token"
`);
    expect(problemLines(res)).toEqual([expect.stringContaining(`contains the file of secret "HTTP_TOKEN" (the HTTP endpoint's bearer token), ${join(t.dir, "http/token")}`)]);
  });

  it("compares real paths: a secret path through a symlink into a granted directory is refused", async () => {
    ownScript("srv");
    const real = token("data/real-token");
    symlinkSync(real, join(t.dir, "link-token"));
    const res = await t.check(`
[servers.a]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readonly"
allowed_paths = ["./data"]
[secrets.S]
from = "file"
path = "./link-token"
`);
    expect(problemLines(res)).toEqual([expect.stringContaining(`(granted read-only) contains the file of secret "S", ${join(t.dir, "link-token")}`)]);
  });
});

describe("the config file (review M1)", () => {
  it("allows a read-only grant of the config's directory", async () => {
    ownScript("srv");
    const res = await t.check(`[servers.a]\ncommand = ["node", "./srv/srv.js"]\nvm_profile = "filesystem-readonly"\nallowed_paths = ["./"]\n`);
    expect(res.problems).toEqual([]);
  });

  it("refuses a writable grant of the config's directory, of an ancestor, or of the file itself; allows a writable subdirectory", async () => {
    ownScript("srv");
    t.mkdir("out");
    const res = await t.check(`
[servers.a]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readwrite"
allowed_paths = ["./"]
[servers.b]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readwrite"
allowed_paths = ["./nucleus.toml"]
[servers.c]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readonly"
allowed_paths = [".."]
[servers.d]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readwrite"
allowed_paths = ["./"]
writable_paths = ["./out"]
`);
    const lines = problemLines(res);
    const config = join(t.dir, "nucleus.toml");
    expect(lines.filter((l) => l.includes(`contains the config file ${config} (or its directory): a server that can change the config can make the gateway run any command at the next reload`)).map((l) => l.split(":")[0])).toEqual([
      "servers.a.allowed_paths",
      "servers.b.allowed_paths",
    ]);
    // a's writable grant of the config dir also holds b's, c's and d's code: reported too.
    expect(lines.some((l) => l.startsWith("servers.a.allowed_paths:") && l.includes(`the code directory ${join(t.dir, "srv")} of server "b"`))).toBe(true);
    expect(lines.some((l) => l.startsWith("servers.c."))).toBe(false);
    expect(lines.some((l) => l.startsWith("servers.d."))).toBe(false);
  });

  it("refuses a writable grant of nucleus's cache (npm packages, microVM images) or of a directory holding it; reading it stays allowed", async () => {
    ownScript("srv");
    t.mkdir("xdg/nucleus/images");
    const saved = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = join(t.dir, "xdg");
    try {
      const res = await t.check(`
[servers.a]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readwrite"
allowed_paths = ["./xdg/nucleus/images"]
[servers.b]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readwrite"
allowed_paths = ["./xdg"]
[servers.c]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readonly"
allowed_paths = ["./xdg"]
`);
      const lines = problemLines(res).filter((l) => l.includes(`nucleus's cache ${join(t.dir, "xdg", "nucleus")}`));
      expect(lines.map((l) => l.split(":")[0])).toEqual(["servers.a.allowed_paths", "servers.b.allowed_paths"]);
      expect(problemLines(res).some((l) => l.startsWith("servers.c."))).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved;
    }
  });

  it("is re-checked by every load, so a reload of a config changed to grant it fails", async () => {
    ownScript("srv");
    const path = t.file("nucleus.toml", `[servers.a]\ncommand = ["node", "./srv/srv.js"]\nvm_profile = "filesystem-readonly"\nallowed_paths = ["./"]\n`);
    await loadConfig(path);
    writeFileSync(path, `[servers.a]\ncommand = ["node", "./srv/srv.js"]\nvm_profile = "filesystem-readwrite"\nallowed_paths = ["./"]\n`);
    const err = await loadConfig(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NucleusError);
    expect((err as NucleusError).code).toBe("CONFIG_INVALID");
    expect((err as NucleusError).message).toContain("contains the config file");
  });
});

describe("the audit log", () => {
  it("refuses a read-only grant of its directory or of a rotated file; allows a sibling directory", async () => {
    ownScript("srv");
    t.mkdir("audit");
    t.file("audit/audit.jsonl", "");
    t.file("audit/audit.jsonl.2", "");
    t.mkdir("audit/other");
    const res = await t.check(`
[gateway]
audit_log = "./audit/audit.jsonl"
[servers.a]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readonly"
allowed_paths = ["./audit"]
[servers.b]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readonly"
allowed_paths = ["./audit/audit.jsonl.2"]
[servers.c]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readonly"
allowed_paths = ["./audit/other"]
`);
    const why = `the audit log ${join(t.dir, "audit/audit.jsonl")} (its directory, lock and rotated files): a server must not read or rewrite the audit trail of every server`;
    expect(problemLines(res)).toEqual([
      expect.stringMatching(new RegExp(`^servers\\.a\\.allowed_paths: .* contains ${why.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`)),
      expect.stringMatching(new RegExp(`^servers\\.b\\.allowed_paths: .* contains ${why.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`)),
    ]);
  });
});

describe("what the host runs (writable grants only)", () => {
  it("refuses a writable grant over a secret command's program or another server's code", async () => {
    ownScript("srv");
    ownScript("other");
    t.mkdir("bin");
    chmodSync(t.file("bin/get-token", "#!/bin/sh\necho tok-1234\n"), 0o700);
    const config = (profile: string) => `
[servers.a]
command = ["node", "./srv/srv.js"]
vm_profile = "${profile}"
allowed_paths = ["./bin", "./other"]
[servers.b]
command = ["node", "./other/srv.js"]
[secrets.S]
from = "command"
command = ["./bin/get-token"]
`;
    const res = await t.check(config("filesystem-readwrite"));
    const lines = problemLines(res);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(`contains ${join(t.dir, "bin/get-token")}, the program that reads secret "S": a server that can replace it makes the gateway run its code on the host`);
    expect(lines[1]).toContain(`contains the code directory ${join(t.dir, "other")} of server "b"`);
    // Read-only, the same paths are fine.
    const ro = await t.check(config("filesystem-readonly"));
    expect(ro.problems).toEqual([]);
  });

  it("refuses a writable grant of the gateway's own checkout or its node_modules, not of another folder in it", async () => {
    ownScript("srv");
    const root = fileURLToPath(new URL("../../..", import.meta.url)).replace(/\/$/, "");
    const res = await t.check(`
[servers.a]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readwrite"
allowed_paths = [${JSON.stringify(root)}]
[servers.b]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readwrite"
allowed_paths = [${JSON.stringify(join(root, "node_modules"))}]
[servers.c]
command = ["node", "./srv/srv.js"]
vm_profile = "filesystem-readwrite"
allowed_paths = [${JSON.stringify(join(root, "test"))}]
`);
    expect(problemLines(res)).toEqual([
      expect.stringContaining(`"${root}" (granted writable) contains the gateway's own code ${root}: a server that can change it runs code on the host`),
      expect.stringContaining(`"${join(root, "node_modules")}" (granted writable) contains the gateway's own code ${root}`),
    ]);
  });
});
