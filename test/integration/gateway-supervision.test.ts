// Supervision: crashes fail in-flight calls at once and the server comes back;
// hostile output (garbage, endless lines) is cut off without harming others.
import { describe, expect, it } from "vitest";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { makeSpec } from "../helpers/spec.js";
import { NucleusError } from "../../src/errors.js";
import { alive } from "../helpers/process.js";
import { TINY, startTestGateway, useGateways, type TestGateway } from "../helpers/gateway.js";
import type { Backend } from "../../src/sandbox/backend.js";
import { UnsandboxedBackend } from "../../src/sandbox/unsandboxed.js";

const node = process.execPath;
const tiny = (name: string, mode = "normal", timeouts?: { startupMs: number; requestMs: number; shutdownGraceMs: number }) =>
  makeSpec({ name, argv: [node, TINY, mode, name], insecureUnsandboxed: true, ...(timeouts ? { timeouts } : {}) });

const gw = useGateways();
const pidOf = (g: TestGateway, server: string) => {
  const start = g.audit.filter((a) => a.type === "server.start" && a.fields.server === server).at(-1);
  return Number((start?.fields.details as Record<string, string> | undefined)?.pid);
};

describe("gateway: supervision", () => {
  it("fails the in-flight call within a second when the server crashes, then brings it back", async () => {
    const g = await gw([tiny("a"), tiny("b")]);
    let changed = 0;
    g.client.setNotificationHandler(ToolListChangedNotificationSchema, async () => void changed++);
    await g.client.listTools();
    const t0 = Date.now();
    const err = await g.client.callTool({ name: "a__crash", arguments: {} }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/server "a" stopped while handling tools\/call \(server "a" exited with code 7\)/);
    expect(Date.now() - t0).toBeLessThan(1000);
    // The other server is unaffected.
    expect(JSON.stringify((await g.client.callTool({ name: "b__echo", arguments: { message: "still here" } })).content)).toContain("still here");
    // Its tools disappear and reappear, announced by list_changed.
    await expect.poll(() => changed, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    await expect
      .poll(async () => (await g.client.listTools()).tools.map((t) => t.name), { timeout: 10_000 })
      .toContain("a__echo");
    expect(JSON.stringify((await g.client.callTool({ name: "a__echo", arguments: { message: "back" } })).content)).toContain("back");
    expect(g.audit.filter((a) => a.type === "server.exit" && a.fields.server === "a")[0]?.fields).toMatchObject({ cause: "exited", code: 7 });
    expect(g.audit.some((a) => a.type === "server.restart" && a.fields.server === "a")).toBe(true);
  });

  it("starts exactly one new sandbox after a crash when starting takes longer than the backoff (a VM boot)", async () => {
    const inner = new UnsandboxedBackend();
    const slow: Backend = {
      name: inner.name,
      probe: () => inner.probe(),
      gaps: (spec) => inner.gaps(spec),
      launch: async (spec, ctx) => {
        await new Promise((r) => setTimeout(r, 400)); // longer than the 100 ms first backoff
        return inner.launch(spec, ctx);
      },
    };
    const g = await startTestGateway([tiny("vm")], { backend: slow });
    try {
      await g.client.listTools();
      await g.client.callTool({ name: "vm__crash", arguments: {} }).catch(() => undefined);
      await expect
        .poll(async () => JSON.stringify((await g.client.callTool({ name: "vm__echo", arguments: { message: "back" } }).catch(() => ({ content: [] }))).content), { timeout: 10_000 })
        .toContain("back");
      await new Promise((r) => setTimeout(r, 1000));
      const pids = g.audit.filter((a) => a.type === "server.start").map((a) => Number((a.fields.details as Record<string, string>).pid));
      expect(pids).toHaveLength(2);
      expect(alive(pids[0]!)).toBe(false);
    } finally {
      await g.close();
    }
  });

  it("cuts off a 100 MB line with an error and keeps other servers working", async () => {
    const g = await gw([tiny("flooder"), tiny("calm")]);
    await g.client.listTools();
    await expect(g.client.callTool({ name: "flooder__flood", arguments: {} })).rejects.toThrow(/server "flooder"/);
    expect(g.logs.join("")).toMatch(/server "flooder" sent a message larger than 4194304 bytes/);
    expect(JSON.stringify((await g.client.callTool({ name: "calm__echo", arguments: { message: "fine" } })).content)).toContain("fine");
    await expect.poll(async () => (await g.client.listTools()).tools.map((t) => t.name), { timeout: 10_000 }).toContain("flooder__echo");
  });

  it("ignores garbage lines from a server and still talks to it", async () => {
    const g = await gw([tiny("g", "garbage")]);
    expect(JSON.stringify((await g.client.callTool({ name: "g__echo", arguments: { message: "through garbage" } })).content)).toContain("through garbage");
    expect(g.logs.join("")).toMatch(/server "g" sent invalid JSON/);
  });

  it("gives up on a server that does not initialize in time, naming it", async () => {
    const g = await gw([tiny("slow", "slow-init", { startupMs: 500, requestMs: 5000, shutdownGraceMs: 500 }), tiny("ok")]);
    const names = (await g.client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("ok__echo");
    expect(names.some((n) => n.startsWith("slow__"))).toBe(false);
    await expect.poll(() => g.logs.join("")).toMatch(/server "slow" did not initialize/);
  });

  it("stops every server on close and leaves no process behind", async () => {
    const g = await startTestGateway([tiny("a"), tiny("b")]);
    await g.client.listTools();
    const pids = ["a", "b"].map((s) => pidOf(g, s));
    expect(pids.every((p) => p > 0 && alive(p))).toBe(true);
    await g.close();
    expect(pids.map(alive)).toEqual([false, false]);
  });

  it("shuts down promptly while a server is still starting, leaving no process", async () => {
    const g = await startTestGateway([tiny("slow", "slow-init", { startupMs: 60_000, requestMs: 5000, shutdownGraceMs: 500 })]);
    const list = g.client.listTools().catch(() => null);
    await expect.poll(() => g.audit.some((a) => a.type === "server.start")).toBe(true);
    const pid = pidOf(g, "slow");
    expect(alive(pid)).toBe(true);
    const t0 = Date.now();
    await g.close();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(alive(pid)).toBe(false);
    await list;
  });

  it("starts a lazy server only when a request needs it", async () => {
    const lazy = makeSpec({ name: "lazy", argv: [node, TINY, "normal", "lazy"], insecureUnsandboxed: true, lazy: true });
    const g = await gw([tiny("eager"), lazy]);
    await expect.poll(() => g.audit.some((a) => a.type === "server.start" && a.fields.server === "eager")).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(g.audit.some((a) => a.type === "server.start" && a.fields.server === "lazy")).toBe(false);
    expect((await g.client.listTools()).tools.map((t) => t.name)).toContain("lazy__echo");
    expect(g.audit.filter((a) => a.type === "server.start" && a.fields.server === "lazy")).toHaveLength(1);
  });

  it("tells the client why a server is unavailable without host paths (the details go to the log)", async () => {
    const failing: Backend = {
      name: "unsandboxed",
      probe: async () => ({ available: true, reason: "test", hints: [] }),
      gaps: async () => [],
      launch: async () => {
        throw new NucleusError("SECRET_UNAVAILABLE", 'secret "GH" (from file /home/alice/.config/gh-token) cannot be read: EACCES');
      },
    };
    const g = await gw([tiny("gh")], { backend: failing });
    // A tool of an unavailable server is not listed; a request routed to it by URI says why.
    const err = (await g.client.readResource({ uri: "nucleus://gh/test://x" }).catch((e: Error) => e)) as Error;
    expect(err.message).toContain('server "gh" is restarting (a secret it needs could not be read; see the gateway log)');
    expect(err.message).not.toContain("/home/alice");
    expect(g.logs.join("")).toContain("/home/alice/.config/gh-token");
  });

  it("drops malformed catalog entries of one server (a number for a name) without harming the others", async () => {
    const g = await gw([tiny("bad", "bad-names"), tiny("good")]);
    const names = (await g.client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("good__echo");
    expect(names).toContain("bad__echo");
    expect(names.some((n) => n.includes("123") || n.includes("no-schema"))).toBe(false);
    expect(g.logs.join("\n")).toMatch(/server "bad" listed 2 malformed tools entries; they are not offered/);
    for (const name of ["good__echo", "bad__echo"]) {
      expect(JSON.stringify((await g.client.callTool({ name, arguments: { message: "ok" } })).content)).toContain("ok");
    }
  });

  it("coalesces a storm of tools/list_changed into a bounded number of listings", async () => {
    const g = await gw([tiny("a")]);
    await g.client.listTools();
    let changed = 0;
    g.client.setNotificationHandler(ToolListChangedNotificationSchema, async () => void changed++);
    await g.client.callTool({ name: "a__list-burst", arguments: {} });
    await expect.poll(() => changed, { timeout: 10_000 }).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 500));
    const count = async () => Number(/lists (\d+)/.exec(JSON.stringify((await g.client.callTool({ name: "a__list-count", arguments: {} })).content))?.[1]);
    // One listing at start, then at most one in flight and one after it for the 50 changes.
    expect(await count()).toBeLessThanOrEqual(4);
    expect(changed).toBeLessThanOrEqual(3);
    expect((await g.client.listTools()).tools.map((t) => t.name)).toContain("a__echo");
  });

  it("never makes a call to one server wait for another server's listing", async () => {
    // "mute" never answers tools/list. A call to "good" waits for good's listing only: were it to wait for mute's
    // too, it would take mute's whole request timeout (60 s), past this test's.
    const g = await gw([tiny("mute", "list-hangs"), tiny("good")]);
    expect(JSON.stringify((await g.client.callTool({ name: "good__echo", arguments: { message: "not held" } })).content)).toContain("not held");
    // A name that names no server is refused at once too.
    await expect(g.client.callTool({ name: "nobody__echo", arguments: {} })).rejects.toThrow(/unknown tool "nobody__echo"/);
    expect(JSON.stringify((await g.client.callTool({ name: "good__echo", arguments: { message: "again" } })).content)).toContain("again");
  }, 20_000);

  it("lists a server whose listing failed once, not again for every request (until it announces a change)", async () => {
    const quick = { startupMs: 30_000, requestMs: 1000, shutdownGraceMs: 2_000 };
    const g = await gw([tiny("mute", "list-hangs", quick), tiny("good")]);
    for (let i = 0; i < 3; i++) expect((await g.client.listTools()).tools.map((t) => t.name)).toContain("good__echo");
    await Promise.all([1, 2, 3].map(() => g.client.callTool({ name: "mute__echo", arguments: { message: "x" } }).catch(() => undefined)));
    // One listing of mute timed out; the lists and calls after it did not ask again.
    expect(g.logs.filter((l) => /could not list tools of server "mute"/.test(l))).toHaveLength(1);
    expect(g.logs.join("\n")).toMatch(/none are offered until it announces a change or restarts/);
  }, 20_000);

  it("bounds what one server may list (50,000 items): an endless listing is refused, the others are offered", async () => {
    const g = await gw([tiny("endless", "endless-list"), tiny("good")]);
    const names = (await g.client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("good__echo");
    expect(names.some((n) => n.startsWith("endless__"))).toBe(false);
    expect(g.logs.join("\n")).toMatch(/could not list tools of server "endless": it listed more than 50000 tools or 32 MiB of them; none are offered/);
  }, 60_000);
});
