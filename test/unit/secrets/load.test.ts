import { chmod, chown, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SecretSpec } from "../../../src/config/spec.js";
import { NucleusError } from "../../../src/errors.js";
import { alive } from "../../helpers/process.js";
import { describeSource, loadSecret } from "../../../src/secrets/load.js";

const VALUE = "tok-9f8e7d6c5b4a";

function spec(over: Partial<SecretSpec>): SecretSpec {
  return { name: "API_TOKEN", from: "env", env: null, path: null, insecurePermissions: false, command: null, timeoutMs: 5000, attributes: null, ...over };
}

async function failure(p: Promise<unknown>): Promise<NucleusError> {
  const err = await p.then(
    () => {
      throw new Error("expected a failure");
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NucleusError);
  const ne = err as NucleusError;
  expect(ne.code).toBe("SECRET_UNAVAILABLE");
  expect(ne.describe()).not.toContain(VALUE);
  return ne;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nucleus-secret-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function script(name: string, body: string): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, `#!/bin/sh\n${body}\n`, { mode: 0o700 });
  return p;
}

describe("env source", () => {
  it("reads the variable named by env, or the secret's name", async () => {
    expect(await loadSecret(spec({}), { env: { API_TOKEN: VALUE } })).toBe(VALUE);
    expect(await loadSecret(spec({ env: "OTHER" }), { env: { OTHER: VALUE } })).toBe(VALUE);
  });
  it("names the missing variable", async () => {
    const e = await failure(loadSecret(spec({ env: "GH_TOKEN" }), { env: {} }));
    expect(e.message).toBe(`secret "API_TOKEN" (from env GH_TOKEN) cannot be read: the variable GH_TOKEN is not set in the gateway's environment`);
    expect(e.hint).toContain("Export GH_TOKEN");
  });
  it("refuses an empty and a too-short value", async () => {
    expect((await failure(loadSecret(spec({}), { env: { API_TOKEN: "" } }))).message).toContain("is empty");
    expect((await failure(loadSecret(spec({}), { env: { API_TOKEN: "abc" } }))).message).toContain("shorter than 4 characters");
  });
});

describe("file source", () => {
  it("reads a 0600 file and drops the trailing newline", async () => {
    const p = join(dir, "token");
    await writeFile(p, `${VALUE}\n`, { mode: 0o600 });
    expect(await loadSecret(spec({ from: "file", path: p }), { env: {} })).toBe(VALUE);
  });
  it("refuses a 0644 file with the chmod hint, and accepts it with insecure_permissions", async () => {
    const p = join(dir, "token");
    await writeFile(p, VALUE);
    await chmod(p, 0o644);
    const e = await failure(loadSecret(spec({ from: "file", path: p }), { env: {} }));
    expect(e.message).toBe(`secret "API_TOKEN" (from file ${p}) is refused: the file is readable or writable by other users (mode 644)`);
    expect(e.hint).toContain(`chmod 600 ${p}`);
    expect(await loadSecret(spec({ from: "file", path: p, insecurePermissions: true }), { env: {} })).toBe(VALUE);
  });
  it("names a missing file", async () => {
    const p = join(dir, "nope");
    const e = await failure(loadSecret(spec({ from: "file", path: p }), { env: {} }));
    expect(e.message).toContain(`(from file ${p}) cannot be read: the file does not exist`);
  });
  it.skipIf(process.getuid?.() === 0)("names an unreadable file (skipped as root: root reads mode 000 files)", async () => {
    const p = join(dir, "locked");
    await writeFile(p, VALUE, { mode: 0o000 });
    const e = await failure(loadSecret(spec({ from: "file", path: p }), { env: {} }));
    expect(e.message).toContain("cannot be read: permission denied");
  });
  it("refuses a directory", async () => {
    const e = await failure(loadSecret(spec({ from: "file", path: dir }), { env: {} }));
    expect(e.message).toContain("is not a regular file");
  });
  it("refuses a symlink to a 0600 file, naming the secret, not its value", async () => {
    const real = join(dir, "real-token");
    await writeFile(real, VALUE, { mode: 0o600 });
    const link = join(dir, "token");
    await symlink(real, link);
    const e = await failure(loadSecret(spec({ from: "file", path: link }), { env: {} }));
    expect(e.message).toBe(`secret "API_TOKEN" (from file ${link}) is refused: the path is a symlink`);
    expect(e.hint).toContain(`realpath ${link}`);
    expect(await loadSecret(spec({ from: "file", path: real }), { env: {} })).toBe(VALUE);
  });
  it.skipIf(process.getuid?.() !== 0)("refuses a 0600 file owned by another user (nobody), even with insecure_permissions (needs root to chown)", async () => {
    const p = join(dir, "token");
    await writeFile(p, VALUE, { mode: 0o600 });
    await chown(p, 65534, 65534);
    for (const insecurePermissions of [false, true]) {
      const e = await failure(loadSecret(spec({ from: "file", path: p, insecurePermissions }), { env: {} }));
      expect(e.message).toBe(`secret "API_TOKEN" (from file ${p}) is refused: the file is owned by uid 65534, not by the user that runs nucleus (uid 0) or root`);
      expect(e.hint).toContain(`chown 0 ${p}`);
    }
    await chown(p, 0, 0);
    expect(await loadSecret(spec({ from: "file", path: p }), { env: {} })).toBe(VALUE);
  });
});

describe("command source", () => {
  it("runs argv without a shell and trims stdout", async () => {
    const s = await script("print", `printf '  %s\\n\\n' "$1"`);
    expect(await loadSecret(spec({ from: "command", command: [s, VALUE] }), { env: {} })).toBe(VALUE);
  });
  it("reports the exit code and argv[0], never stdout or stderr", async () => {
    const s = await script("fail", `echo "${VALUE}"; echo "${VALUE}" >&2; exit 7`);
    const e = await failure(loadSecret(spec({ from: "command", command: [s] }), { env: {} }));
    expect(e.message).toBe(`secret "API_TOKEN" (from command ${s}) cannot be read: the command ${s} exited with code 7`);
  });
  it("kills a command that does not finish in time, with its children", async () => {
    const marker = join(dir, "child-pid");
    const s = await script("hang", `sleep 30 & echo $! > "${marker}"; wait`);
    const e = await failure(loadSecret(spec({ from: "command", command: [s], timeoutMs: 300 }), { env: {} }));
    expect(e.message).toContain("did not finish within 300 ms and was killed");
    const { readFile } = await import("node:fs/promises");
    const childPid = Number((await readFile(marker, "utf8")).trim());
    await expect.poll(() => alive(childPid), { timeout: 5000 }).toBe(false);
  });
  it("names a command that does not exist", async () => {
    const e = await failure(loadSecret(spec({ from: "command", command: [join(dir, "missing")] }), { env: {} }));
    expect(e.message).toContain("was not found");
  });
  it("refuses a command that prints nothing", async () => {
    const s = await script("silent", "exit 0");
    expect((await failure(loadSecret(spec({ from: "command", command: [s] }), { env: {} }))).message).toContain("is empty");
  });
});

describe("keyring source", () => {
  const attributes = { service: "github", account: "me" };
  it("says secret-tool is missing and which package installs it", async () => {
    const e = await failure(loadSecret(spec({ from: "keyring", attributes }), { env: { PATH: dir } }));
    expect(e.message).toContain("secret-tool not found; install libsecret-tools");
    expect(describeSource(spec({ from: "keyring", attributes }))).toBe("keyring service=github account=me");
  });
  // A stand-in secret-tool (no desktop keyring daemon on this machine) proves the argv we run and the output handling.
  it("runs `secret-tool lookup ATTR VALUE…` found on PATH", async () => {
    await script("secret-tool", `[ "$*" = "lookup service github account me" ] || exit 3\nprintf '%s\\n' "${VALUE}"`);
    expect(await loadSecret(spec({ from: "keyring", attributes }), { env: { PATH: dir } })).toBe(VALUE);
  });
  it("explains a lookup that finds nothing", async () => {
    await script("secret-tool", "exit 1");
    const e = await failure(loadSecret(spec({ from: "keyring", attributes }), { env: { PATH: dir } }));
    expect(e.message).toContain("was not found in the keyring");
    expect(e.hint).toContain("secret-tool store --label=API_TOKEN service github account me");
  });
});

