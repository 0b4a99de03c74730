// A root gateway with `[gateway] run_as` runs bwrap and QEMU as that user, not root: the
// VM boots, serves MCP, writes a granted path as that user, and leaves nothing behind. Its control
// channel and console are socketpairs QEMU inherits (fds 3 and 4), never a socket on disk that
// another process of that user could connect to first. What
// the user cannot read (an image cache under a 0700 dir, a granted path) fails before boot
// with a sentence and a hint. One VM boot.
import { execFileSync } from "node:child_process";
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
import { alive, qemuUnder, socketInode, socketInodesOf } from "../helpers/process.js";
import { makeSpec } from "../helpers/spec.js";
import { ensureTestUser } from "../helpers/test-user.js";

const require = createRequire(import.meta.url);
const filesystem = require.resolve("@modelcontextprotocol/server-filesystem/dist/index.js");
const nodeModules = resolve(dirname(filesystem), "../../..");
const node = process.execPath;
const log = new Logger({ level: "silent" });
const root = process.getuid?.() === 0;
const tools = whichSync("qemu-system-x86_64") !== null && whichSync("bwrap") !== null && whichSync("apt-get") !== null && existsSync("/usr/bin/setpriv") && whichSync("ss") !== null;
const why = !root ? " (skipped: run_as needs a root gateway)" : !tools ? " (skipped: needs qemu-system-x86_64, bwrap, apt-get, setpriv and ss)" : "";

const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[2]);

/** Every unix socket of this network namespace, by inode, as the kernel reports it (`ss`). */
function unixSockets(): Map<number, { state: string; local: string; peer: number }> {
  const out = execFileSync("ss", ["-xanH"], { encoding: "utf8" });
  const all = new Map<number, { state: string; local: string; peer: number }>();
  for (const line of out.split("\n")) {
    // netid state recv-q send-q local-address local-inode peer-address peer-inode
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[0]!.startsWith("u_")) all.set(Number(f[5]), { state: f[1]!, local: f[4]!, peer: Number(f[7]) });
  }
  return all;
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

  it("runs bwrap and QEMU as that user, its control channel and console on inherited socketpairs: tools/list, a write to a granted path as that user, nothing left after stop", async () => {
    // A private root for run dirs: the backend must make none there (nor anywhere).
    const runRoot = tmp(0o755);
    const backend = new QemuBackend({ runAs: user, imageRoot, runRoot });
    const rw = tmp(0o700);
    chownSync(rw, user.uid, user.gid);
    const argv = [node, filesystem, rw];
    const spec = makeSpec({ name: "fs", argv, launch: { argv, args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] }, paths: [{ path: rw, writable: true }] });
    const sandbox = await backend.launch(spec, { secrets: new Map(), log, egressSocket: null });
    live.push(sandbox);
    expect(sandbox.details.runAs).toBe(`${user.uid}:${user.gid}`);
    const vmm = qemuUnder(Number(sandbox.details.pid));
    expect(vmm).toHaveLength(1);
    const qemu = vmm[0]!;
    // bwrap (the sandbox's pid) and QEMU inside it: both the run_as user, real and effective.
    for (const pid of [Number(sandbox.details.pid), qemu]) expect([pid, uidOf(pid)]).toEqual([pid, user.uid]);

    // SECURITY: no socket on disk that another process of the run_as user could connect to before QEMU: no
    // run dir, QEMU's chardevs name fds, not paths, and QEMU's fds 3 (control) and 4 (console) are the
    // already-connected ends of socketpairs whose other ends this (the gateway's) process holds.
    expect(sandbox.details.runDir).toBeUndefined();
    expect(readdirSync(runRoot)).toEqual([]);
    const cmdline = readFileSync(`/proc/${qemu}/cmdline`, "utf8").split("\0");
    expect(cmdline).toEqual(expect.arrayContaining(["socket,id=ctl,fd=3", "socket,id=con,fd=4"]));
    expect(cmdline.filter((a) => a.startsWith("socket,") && a.includes("path="))).toEqual([]);
    const sockets = unixSockets();
    const ours = socketInodesOf("self");
    const gatewayEnds: number[] = [];
    for (const fd of [3, 4]) {
      const inode = socketInode(qemu, fd);
      expect(inode, `QEMU's fd ${fd} is a socket`).not.toBeNull();
      const s = sockets.get(inode!);
      expect(s, `QEMU's fd ${fd} is a unix stream socket`).toBeDefined();
      expect([fd, s!.state, s!.local]).toEqual([fd, "ESTAB", "*"]);
      expect(ours.has(s!.peer), `the peer of QEMU's fd ${fd} is the gateway's`).toBe(true);
      gatewayEnds.push(s!.peer);
    }
    // And QEMU has no named or listening unix socket at all.
    for (const i of socketInodesOf(qemu)) {
      const s = sockets.get(i);
      if (s) expect([i, s.state, s.local]).toEqual([i, "ESTAB", "*"]);
    }

    const client = await connectToSandbox(sandbox);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("write_file");
    const ok = await client.callTool({ name: "write_file", arguments: { path: join(rw, "out.txt"), content: "written as run_as" } });
    expect(ok.isError ?? false).toBe(false);
    expect(readFileSync(join(rw, "out.txt"), "utf8")).toBe("written as run_as");
    expect(statSync(join(rw, "out.txt")).uid).toBe(user.uid);

    const exit = await sandbox.stop(5000);
    expect(exit.cause).toBe("stopped");
    expect(vmm.filter(alive)).toEqual([]);
    expect(() => process.kill(Number(sandbox.details.pid), 0)).toThrow();
    // Our ends of the two socketpairs are closed with the VM.
    const left = socketInodesOf("self");
    expect(gatewayEnds.filter((i) => left.has(i))).toEqual([]);
  }, 240_000);
});
