// The QEMU microVM backend against real QEMU (TCG here), a real guest kernel and
// the official MCP servers. Each VM boots once and serves several assertions.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Logger } from "../../src/log.js";
import type { Sandbox } from "../../src/sandbox/backend.js";
import { QemuBackend } from "../../src/sandbox/microvm/qemu/backend.js";
import { buildImage } from "../../src/sandbox/microvm/image/build.js";
import type { GuestImage } from "../../src/sandbox/microvm/image/store.js";
import { whichSync } from "../../src/sandbox/which.js";
import { connectToSandbox } from "../helpers/mcp.js";
import { alive, pidsWhere, procFile, qemuUnder, socketInodesOf } from "../helpers/process.js";
import { makeSpec } from "../helpers/spec.js";

const require = createRequire(import.meta.url);
const everything = require.resolve("@modelcontextprotocol/server-everything/dist/index.js");
const filesystem = require.resolve("@modelcontextprotocol/server-filesystem/dist/index.js");
const nodeModules = resolve(dirname(everything), "../../..");
const node = process.execPath;
const qemuProcesses = () => pidsWhere((p) => procFile(p, "comm").trim() === "qemu-system-x86");
const log = new Logger({ level: "silent" });
const SECRET = `qemu-canary-${process.pid}-${Date.now()}`;
const noQemu = !whichSync("qemu-system-x86_64") || !whichSync("bwrap") || !whichSync("apt-get");

describe.skipIf(noQemu)("QEMU microVM backend (needs qemu-system-x86_64, bwrap and apt-get)", () => {
  let image: GuestImage;
  const backend = new QemuBackend();
  const live: Sandbox[] = [];
  const temps: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), "nucleus-qemu-test-"));
    temps.push(d);
    return d;
  };

  beforeAll(async () => {
    image = (await buildImage()).image;
  }, 600_000);
  afterEach(async () => {
    for (const s of live.splice(0)) await s.stop(1000);
  });
  afterAll(() => {
    for (const d of temps) rmSync(d, { recursive: true, force: true });
  });

  it("probes QEMU and says which accelerator it will use", async () => {
    const p = await backend.probe();
    expect(p.available).toBe(true);
    expect(p.reason).toMatch(/KVM|TCG/);
  });

  it("keeps a network allowlist (egress streams to the proxy), and refuses it without a proxy socket (fail closed)", async () => {
    const argv = [node, everything];
    const spec = makeSpec({ name: "net", argv, launch: { argv, args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] }, network: { mode: "allowlist", hosts: [] } });
    expect(await backend.gaps(spec)).toEqual([]);
    await expect(backend.launch(spec, { secrets: new Map(), log, egressSocket: null })).rejects.toMatchObject({
      code: "POLICY_REFUSED",
      message: expect.stringMatching(/no egress proxy socket/),
    });
  });

  it("runs server-everything in a VM: tools, a call, a secret in its env; no QEMU left after stop()", async () => {
    const spec = makeSpec({ name: "everything", argv: [node, everything], launch: { argv: [node, everything], args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] } });
    const sandbox = await backend.launch(spec, { secrets: new Map([["API_TOKEN", { value: SECRET, as: "env" }]]), log, egressSocket: null });
    live.push(sandbox);
    expect(sandbox.backend).toBe("qemu");
    const client = await connectToSandbox(sandbox);
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toContain("echo");
    const echo = await client.callTool({ name: "echo", arguments: { message: "from the guest" } });
    expect(JSON.stringify(echo.content)).toContain("from the guest");
    const env = await client.callTool({ name: "get-env", arguments: {} });
    expect(JSON.stringify(env.content)).toContain(SECRET);
    const qemuPids = qemuUnder(Number(sandbox.details.pid));
    expect(qemuPids.length).toBe(1);
    // SECURITY: the secret is on no host argv (QEMU's nor bwrap's).
    for (const p of [Number(sandbox.details.pid), ...qemuPids]) expect(readFileSync(`/proc/${p}/cmdline`, "utf8")).not.toContain(SECRET);
    const exit = await sandbox.stop(5000);
    expect(exit.cause).toBe("stopped");
    expect(qemuPids.filter(alive)).toEqual([]);
    expect(() => process.kill(Number(sandbox.details.pid), 0)).toThrow();
  }, 180_000);

  it("runs server-filesystem: a read-only granted path is readable and not writable; a writable one is", async () => {
    const ro = tmp();
    const rw = tmp();
    writeFileSync(join(ro, "note.txt"), "readable from the guest\n");
    const argv = [node, filesystem, ro, rw];
    const spec = makeSpec({
      name: "fs",
      argv,
      launch: { argv, args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] },
      paths: [
        { path: ro, writable: false },
        { path: rw, writable: true },
      ],
    });
    const sandbox = await backend.launch(spec, { secrets: new Map(), log, egressSocket: null });
    live.push(sandbox);
    const client = await connectToSandbox(sandbox);
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toContain("read_text_file");
    const read = await client.callTool({ name: "read_text_file", arguments: { path: join(ro, "note.txt") } });
    expect(JSON.stringify(read.content)).toContain("readable from the guest");
    const write = await client.callTool({ name: "write_file", arguments: { path: join(ro, "new.txt"), content: "x" } });
    expect(write.isError).toBe(true);
    expect(existsSync(join(ro, "new.txt"))).toBe(false);
    const ok = await client.callTool({ name: "write_file", arguments: { path: join(rw, "out.txt"), content: "written in the guest" } });
    expect(ok.isError ?? false).toBe(false);
    expect(readFileSync(join(rw, "out.txt"), "utf8")).toBe("written in the guest");
    await sandbox.stop(5000);
  }, 180_000);

  it("shows the server only what it is granted; secrets are not on the kernel command line or in the image", async () => {
    const ro = tmp();
    const outside = tmp();
    writeFileSync(join(ro, "granted.txt"), "granted");
    writeFileSync(join(outside, "canary.txt"), "must stay invisible");
    const script = `
      const fs = require("fs");
      const r = {};
      r.cmdline = fs.readFileSync("/proc/cmdline", "utf8");
      r.env = process.env.API_TOKEN ?? null;
      r.file = fs.readFileSync(${JSON.stringify("/run/nucleus/secrets/db.key")}, "utf8");
      r.granted = fs.readFileSync(${JSON.stringify(join(ro, "granted.txt"))}, "utf8");
      try { fs.writeFileSync(${JSON.stringify(join(ro, "w.txt"))}, "x"); r.write = "ok"; } catch (e) { r.write = e.code; }
      r.outside = fs.existsSync(${JSON.stringify(join(outside, "canary.txt"))});
      r.shadow = fs.existsSync("/etc/shadow");
      r.hostHome = fs.existsSync(${JSON.stringify(process.env.HOME ?? "/root")} + "/.bashrc");
      process.stderr.write("probe-stderr-line\\n");
      process.stdout.write(JSON.stringify(r) + "\\n", () => process.exit(7));
    `;
    const argv = [node, "-e", script];
    const spec = makeSpec({ name: "probe", argv, paths: [{ path: ro, writable: false }] });
    const sandbox = await backend.launch(spec, {
      secrets: new Map([
        ["API_TOKEN", { value: SECRET, as: "env" }],
        ["db.key", { value: `${SECRET}-file`, as: "file" }],
      ]),
      log,
      egressSocket: null,
    });
    live.push(sandbox);
    let out = "";
    let err = "";
    sandbox.stdout.on("data", (d: Buffer) => (out += d.toString()));
    sandbox.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const ended = new Promise((r) => sandbox.stdout.once("end", r));
    const exit = await sandbox.exited;
    await ended;
    expect(out, `exit: ${exit.message}; stderr: ${err}`).toContain("{");
    const r = JSON.parse(out.trim()) as Record<string, unknown>;
    expect(r.env).toBe(SECRET);
    expect(r.file).toBe(`${SECRET}-file`);
    expect(r.cmdline).not.toContain(SECRET);
    expect(r.granted).toBe("granted");
    expect(r.write).toMatch(/EROFS|EACCES|EPERM/);
    expect(r.outside).toBe(false);
    expect(r.shadow).toBe(false);
    expect(r.hostHome).toBe(false);
    expect(exit).toMatchObject({ cause: "exited", code: 7 });
    expect(err).toContain("probe-stderr-line");
    expect(exit.message).toMatch(/exited with code 7 inside its QEMU microVM/);
    for (const f of [image.kernel, image.initramfs]) expect(readFileSync(f).includes(SECRET)).toBe(false);
    expect(existsSync(join(ro, "w.txt"))).toBe(false);
  }, 180_000);

  it("reports a power-off inside the guest as the sandbox's exit", async () => {
    // A few seconds first, so that this VM's QEMU can be seen running before it goes.
    const argv = [node, "-e", `setTimeout(() => require("child_process").spawnSync("/bin/busybox", ["poweroff", "-f"]), 5000); setTimeout(() => {}, 60000);`];
    const sandbox = await backend.launch(makeSpec({ name: "off", argv }), { secrets: new Map(), log, egressSocket: null });
    live.push(sandbox);
    const vmm = qemuUnder(Number(sandbox.details.pid));
    expect(vmm).toHaveLength(1);
    const exit = await sandbox.exited;
    expect(exit.cause).toBe("exited");
    expect(exit.code).toBeNull();
    expect(exit.message).toMatch(/ended without reporting the server's exit/);
    expect(vmm.filter(alive)).toEqual([]);
  }, 180_000);

  it("refuses less memory than the guest image needs", async () => {
    const spec = makeSpec({ name: "small", argv: [node, everything], limits: { memoryMiB: 128, cpus: 1, pids: 256, tmpMiB: 16, explicit: { memory: true, cpus: false, pids: false } } });
    expect((await backend.gaps(spec)).map((g) => g.rule)).toContain("servers.small.memory_mib");
  });

  it("fails with the `nucleus image build` hint when no image exists", async () => {
    const empty = new QemuBackend({ imageRoot: tmp() });
    const spec = makeSpec({ name: "noimg", argv: [node, everything], launch: { argv: [node, everything], args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] } });
    await expect(empty.launch(spec, { secrets: new Map(), log, egressSocket: null })).rejects.toMatchObject({
      code: "BACKEND_UNAVAILABLE",
      hint: expect.stringMatching(/nucleus image build/),
    });
  });

  it("closes both channels' sockets when QEMU fails to start (no fd left behind)", async () => {
    // A "QEMU" that exits at once: the launch spawns it (bwrap and all) with its two socketpairs, then fails.
    const failing = new QemuBackend({ qemu: "/usr/bin/false" });
    const before = socketInodesOf("self");
    const spec = makeSpec({ name: "nostart", argv: [node, everything], launch: { argv: [node, everything], args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] } });
    await expect(failing.launch(spec, { secrets: new Map(), log, egressSocket: null })).rejects.toMatchObject({
      code: "SANDBOX_START_FAILED",
      message: expect.stringMatching(/QEMU exited during boot: server "nostart" exited with code 1/),
    });
    await expect.poll(() => [...socketInodesOf("self")].filter((i) => !before.has(i)), { timeout: 10_000 }).toEqual([]);
  });

  it("ends a boot the gateway gives up on at once, instead of waiting for the guest", async () => {
    // The gateway gives up (the server is stopped) while the guest kernel is booting: at its first console line.
    const stop = new AbortController();
    const watching = new Logger({ level: "debug", sink: { write: (l) => void (/guest console/.test(l) && stop.abort()) } });
    const qemuBefore = new Set(qemuProcesses());
    const spec = makeSpec({ name: "givenup", argv: [node, everything], launch: { argv: [node, everything], args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] } });
    const launch = backend.launch(spec, { secrets: new Map(), log: watching, egressSocket: null, signal: stop.signal });
    await expect(launch).rejects.toMatchObject({ code: "SANDBOX_START_FAILED", message: expect.stringMatching(/the gateway stopped it while it was starting/) });
    expect(stop.signal.aborted).toBe(true);
    await expect.poll(() => qemuProcesses().filter((p) => !qemuBefore.has(p)), { timeout: 10_000 }).toEqual([]);
  }, 60_000);
});
