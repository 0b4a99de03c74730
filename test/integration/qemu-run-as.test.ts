// A root gateway with `[gateway] run_as` runs bwrap and QEMU as that user, not root: the
// VM boots, serves MCP, writes a granted path as that user, and leaves nothing behind. What
// the user cannot read (an image cache under a 0700 dir, a granted path) fails before boot
// with a sentence and a hint. One VM boot.
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Logger } from "../../src/log.js";
import type { Sandbox } from "../../src/sandbox/backend.js";
import { buildImage } from "../../src/sandbox/microvm/image/build.js";
import { QemuBackend } from "../../src/sandbox/microvm/qemu/backend.js";
import { whichSync } from "../../src/sandbox/which.js";
import { connectToSandbox } from "../helpers/mcp.js";
import { makeSpec } from "../helpers/spec.js";
import { ensureTestUser } from "../helpers/test-user.js";

const require = createRequire(import.meta.url);
const filesystem = require.resolve("@modelcontextprotocol/server-filesystem/dist/index.js");
const nodeModules = resolve(dirname(filesystem), "../../..");
const node = process.execPath;
const log = new Logger({ level: "silent" });
const root = process.getuid?.() === 0;
const tools = whichSync("qemu-system-x86_64") !== null && whichSync("bwrap") !== null && whichSync("apt-get") !== null && existsSync("/usr/bin/setpriv");
const why = !root ? " (skipped: run_as needs a root gateway)" : !tools ? " (skipped: needs qemu-system-x86_64, bwrap, apt-get and setpriv)" : "";

const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[2]);

function qemuPidsFor(runDir: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
      if (cmd.split("\0")[0]!.includes("qemu-system") && cmd.includes(runDir)) pids.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return pids;
}

describe.skipIf(!root || !tools)(`QEMU microVM as the run_as user${why}`, () => {
  let user: { uid: number; gid: number };
  let imageRoot: string;
  const temps: string[] = [];
  const live: Sandbox[] = [];
  const tmp = (mode: number) => {
    const d = mkdtempSync(join(tmpdir(), "nucleus-qemu-runas-test-"));
    temps.push(d);
    chmodSync(d, mode);
    return d;
  };

  beforeAll(async () => {
    user = ensureTestUser();
    // A copy of the current image in a cache the test user can read (the default one is under /root).
    const image = (await buildImage()).image;
    imageRoot = tmp(0o755);
    cpSync(image.dir, join(imageRoot, basename(image.dir)), { recursive: true });
  }, 600_000);
  afterEach(async () => {
    for (const s of live.splice(0)) await s.stop(1000);
  });
  afterAll(() => {
    for (const d of temps) rmSync(d, { recursive: true, force: true });
  });

  it("refuses before boot when the user cannot read the image cache, with a hint (probe hints at it too)", async () => {
    const backend = new QemuBackend({ runAs: user, imageRoot });
    const argv = [node, filesystem];
    const spec = makeSpec({ name: "noimg", argv, launch: { argv, args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] } });
    chmodSync(imageRoot, 0o700);
    try {
      // doctor's view: available, with the hint.
      const probe = await backend.probe();
      expect(probe.available).toBe(true);
      expect(probe.hints.join("\n")).toMatch(/not readable by the run_as user/);
      const err = await backend.launch(spec, { secrets: new Map(), log, egressSocket: null }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "BACKEND_UNAVAILABLE", message: expect.stringMatching(new RegExp(`not readable by the run_as user \\(uid ${user.uid}\\)`)), hint: expect.stringMatching(/XDG_CACHE_HOME/) });
    } finally {
      chmodSync(imageRoot, 0o755);
    }
  });

  it("refuses before boot when the user cannot reach a granted path, naming it", async () => {
    const backend = new QemuBackend({ runAs: user, imageRoot });
    const secret = tmp(0o700);
    const argv = [node, filesystem, secret];
    const spec = makeSpec({ name: "nopath", argv, launch: { argv, args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] }, paths: [{ path: secret, writable: false }] });
    const err = await backend.launch(spec, { secrets: new Map(), log, egressSocket: null }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "SANDBOX_START_FAILED", message: expect.stringContaining(`${secret} (read)`) });
  });

  it("runs bwrap and QEMU as that user: tools/list, a write to a granted path as that user, nothing left after stop", async () => {
    const backend = new QemuBackend({ runAs: user, imageRoot });
    const rw = tmp(0o700);
    chownSync(rw, user.uid, user.gid);
    const argv = [node, filesystem, rw];
    const spec = makeSpec({ name: "fs", argv, launch: { argv, args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] }, paths: [{ path: rw, writable: true }] });
    const sandbox = await backend.launch(spec, { secrets: new Map(), log, egressSocket: null });
    live.push(sandbox);
    expect(sandbox.details.runAs).toBe(`${user.uid}:${user.gid}`);
    const runDir = sandbox.details.runDir!;
    const vmm = qemuPidsFor(runDir);
    expect(vmm).toHaveLength(1);
    // bwrap (the sandbox's pid) and QEMU inside it: both the run_as user, real and effective.
    for (const pid of [Number(sandbox.details.pid), vmm[0]!]) expect([pid, uidOf(pid)]).toEqual([pid, user.uid]);
    // SECURITY: the run dir stays the gateway's (the user may enter, not list or create); the sockets are the user's, 0600.
    const dir = statSync(runDir);
    expect([dir.uid, dir.gid, dir.mode & 0o777]).toEqual([process.getuid!(), user.gid, 0o710]);
    for (const s of readdirSync(runDir).map((n) => statSync(join(runDir, n)))) expect([s.isSocket(), s.uid, s.mode & 0o777]).toEqual([true, user.uid, 0o600]);

    const client = await connectToSandbox(sandbox);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("write_file");
    const ok = await client.callTool({ name: "write_file", arguments: { path: join(rw, "out.txt"), content: "written as run_as" } });
    expect(ok.isError ?? false).toBe(false);
    expect(readFileSync(join(rw, "out.txt"), "utf8")).toBe("written as run_as");
    expect(statSync(join(rw, "out.txt")).uid).toBe(user.uid);

    const exit = await sandbox.stop(5000);
    expect(exit.cause).toBe("stopped");
    expect(qemuPidsFor(runDir)).toEqual([]);
    expect(existsSync(runDir)).toBe(false);
    expect(() => process.kill(Number(sandbox.details.pid), 0)).toThrow();
  }, 240_000);
});
