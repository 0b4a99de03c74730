// Servers in QEMU microVMs (TCG here) behind the real gateway: tools from
// inside the VMs, a crash inside a guest reported at once and the server
// restarted in a fresh VM, and no QEMU process left after the gateway stops.
import { dirname, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { buildImage } from "../../src/sandbox/microvm/image/build.js";
import { QemuBackend } from "../../src/sandbox/microvm/qemu/backend.js";
import { whichSync } from "../../src/sandbox/which.js";
import { EVERYTHING, TINY, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { alive, qemuUnder } from "../helpers/process.js";
import { makeSpec } from "../helpers/spec.js";

const noQemu = !whichSync("qemu-system-x86_64") || !whichSync("bwrap") || !whichSync("apt-get");
const node = process.execPath;
const nodeModules = resolve(dirname(EVERYTHING), "../../..");
const timeouts = { startupMs: 180_000, requestMs: 60_000, shutdownGraceMs: 3000 };

describe.skipIf(noQemu)("the gateway with servers in QEMU microVMs (needs qemu-system-x86_64, bwrap, apt-get)", () => {
  let g: TestGateway;
  /** The sandbox pid of every VM started (other sessions' VMs do not count). */
  const sandboxPids = () => g.audit.filter((a) => a.type === "server.start").map((a) => Number((a.fields.details as Record<string, string>).pid));

  beforeAll(async () => {
    await buildImage();
    g = await startTestGateway(
      [
        makeSpec({ name: "everything", argv: [node, EVERYTHING], backend: "qemu", timeouts, launch: { argv: [node, EVERYTHING], args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] } }),
        makeSpec({ name: "tiny", argv: [node, TINY, "normal", "tiny"], backend: "qemu", timeouts, launch: { argv: [node, TINY, "normal", "tiny"], args: [], package: null, cwd: null, env: {}, codeDirs: [dirname(TINY)] } }),
      ],
      { backend: new QemuBackend() },
    );
  }, 600_000);

  afterAll(async () => {
    await g?.close();
  });

  it("lists and calls tools of servers running in their own VMs", async () => {
    // A list waits at most 20 s for a server still booting (its tools follow with list_changed):
    // two TCG boots on a busy 2-core machine can take longer, so ask until both are there.
    await expect
      .poll(async () => (await g.client.listTools()).tools.map((t) => t.name), { timeout: 200_000, interval: 2_000 })
      .toEqual(expect.arrayContaining(["everything__echo", "tiny__echo"]));
    const r = await g.client.callTool({ name: "everything__echo", arguments: { message: "from a microVM" } });
    expect(JSON.stringify(r.content)).toContain("from a microVM");
    const starts = g.audit.filter((a) => a.type === "server.start");
    expect(starts.map((a) => a.fields.backend)).toEqual(["qemu", "qemu"]);
  }, 240_000);

  it("reports a crash inside the guest at once and restarts the server in a new VM", async () => {
    let changed = 0;
    g.client.setNotificationHandler(ToolListChangedNotificationSchema, async () => void changed++);
    const t0 = Date.now();
    const err = (await g.client.callTool({ name: "tiny__crash", arguments: {} }).catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(/server "tiny" stopped while handling tools\/call/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    // The client hears how it ended, in words built by the gateway (never guest text).
    expect(err.message).toMatch(/\(server "tiny" exited with code 7\)/);
    expect(g.audit.find((a) => a.type === "server.exit" && a.fields.server === "tiny")?.fields).toMatchObject({ cause: "exited", code: 7, signal: null });
    // The other VM is unaffected.
    expect(JSON.stringify((await g.client.callTool({ name: "everything__echo", arguments: { message: "still up" } })).content)).toContain("still up");
    await expect
      .poll(async () => JSON.stringify((await g.client.callTool({ name: "tiny__echo", arguments: { message: "back" } }).catch(() => ({ content: [] }))).content), {
        timeout: 180_000,
        interval: 2000,
      })
      .toContain("back");
    expect(g.audit.filter((a) => a.type === "server.start" && a.fields.server === "tiny")).toHaveLength(2);
  }, 240_000);

  it("leaves no QEMU process behind when the gateway stops", async () => {
    // One VM per server: the crashed one is gone, the restarted one and the other one run.
    expect(sandboxPids()).toHaveLength(3);
    const mine = sandboxPids().flatMap(qemuUnder);
    expect(mine).toHaveLength(2);
    await g.close();
    await expect.poll(() => mine.filter(alive), { timeout: 20_000 }).toEqual([]);
  }, 60_000);
});
