// How a server's end inside a QEMU microVM reaches the host: a server killed by a signal while a
// grandchild holds its stdio open is reported at once with the signal, and its VM is gone; a server
// that ignores its stdin closing and SIGTERM is killed inside the guest within the grace period.
// One boot per case (a VM ends with its server).
import { dirname, resolve } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Logger } from "../../src/log.js";
import type { Sandbox, SandboxExit } from "../../src/sandbox/backend.js";
import { buildImage } from "../../src/sandbox/microvm/image/build.js";
import { QemuBackend } from "../../src/sandbox/microvm/qemu/backend.js";
import { whichSync } from "../../src/sandbox/which.js";
import { connectToSandbox } from "../helpers/mcp.js";
import { alive, qemuUnder } from "../helpers/process.js";
import { makeSpec } from "../helpers/spec.js";

const LINGERS = resolve(import.meta.dirname, "../fixtures/servers/server-that-lingers.mjs");
const node = process.execPath;
const log = new Logger({ level: "silent" });
const noQemu = !whichSync("qemu-system-x86_64") || !whichSync("bwrap") || !whichSync("apt-get");
const argv = [node, LINGERS];
const spec = makeSpec({ name: "lingers", argv, launch: { argv, args: [], package: null, cwd: null, env: {}, codeDirs: [dirname(LINGERS)] } });

/** The sandbox's exit, or "no exit" after `ms` (a hang bound, not a speed check). */
const exitWithin = (s: Sandbox, ms: number) =>
  Promise.race<SandboxExit | "no exit">([s.exited, new Promise((r) => setTimeout(() => r("no exit"), ms))]);

describe.skipIf(noQemu)("a server's end inside a QEMU microVM (needs qemu-system-x86_64, bwrap, apt-get)", () => {
  const backend = new QemuBackend();
  const live: Sandbox[] = [];
  beforeAll(async () => void (await buildImage()), 600_000);
  afterEach(async () => {
    for (const s of live.splice(0)) await s.stop(1000);
  });

  it("reports a server killed by a signal while a grandchild holds its stdio, and the VM is gone", async () => {
    const sandbox = await backend.launch(spec, { secrets: new Map(), log, egressSocket: null });
    live.push(sandbox);
    const vmm = qemuUnder(Number(sandbox.details.pid));
    expect(vmm).toHaveLength(1);
    const client = await connectToSandbox(sandbox);
    expect(JSON.stringify((await client.callTool({ name: "fork", arguments: {} })).content)).toMatch(/grandchild \d+/);
    void client.callTool({ name: "die", arguments: { signal: "SIGKILL" } }).catch(() => {});
    const exit = await exitWithin(sandbox, 10_000);
    expect(exit).toMatchObject({ cause: "signalled", signal: "SIGKILL", code: null });
    expect((exit as SandboxExit).message).toMatch(/server "lingers" was killed by SIGKILL inside its QEMU microVM/);
    expect(vmm.filter(alive)).toEqual([]);
  }, 120_000);

  it("kills a server that ignores its stdin closing and SIGTERM inside the guest within the grace period", async () => {
    const sandbox = await backend.launch(spec, { secrets: new Map(), log, egressSocket: null });
    live.push(sandbox);
    const vmm = qemuUnder(Number(sandbox.details.pid));
    const client = await connectToSandbox(sandbox);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["fork", "die"]);
    let stderr = "";
    sandbox.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exit = await sandbox.stop(8000);
    // The agent's SIGKILL (after half the grace) ended it, not the host killing QEMU.
    expect(exit).toMatchObject({ cause: "stopped", signal: "SIGKILL" });
    expect(exit.message).toMatch(/powered off/);
    expect(stderr).toContain("stdin closed; staying");
    expect(stderr).toContain("ignoring SIGTERM");
    expect(vmm.filter(alive)).toEqual([]);
  }, 120_000);
});
