// The tools/call fast path (src/gateway/fast-path.ts): which calls take it, and
// that it keeps every check of the normal path — result validation, stray
// responses dropped, cancellation and timeouts reaching the server, audit.
// The fixture answers `request-id` with the JSON-RPC id it received: the fast
// path's ids are negative, the SDK client's are not.
import { describe, expect, it } from "vitest";
import { makeSpec } from "../helpers/spec.js";
import { TINY, useGateways, type TestGateway } from "../helpers/gateway.js";
import { refused } from "../../src/errors.js";
import type { Backend } from "../../src/sandbox/backend.js";
import { UnsandboxedBackend } from "../../src/sandbox/unsandboxed.js";

const node = process.execPath;
const tiny = (name: string, requestMs = 60_000) =>
  makeSpec({ name, argv: [node, TINY, "normal", name], insecureUnsandboxed: true, timeouts: { startupMs: 30_000, requestMs, shutdownGraceMs: 2_000 } });

const gw = useGateways();
const text = (r: object) => JSON.stringify((r as { content?: unknown }).content);
const idSeen = async (g: TestGateway, opts: { progress?: boolean } = {}) => {
  const r = await g.client.callTool({ name: "a__request-id", arguments: {} }, undefined, opts.progress ? { onprogress: () => undefined } : {});
  return Number(/id (-?\d+)/.exec(text(r))?.[1]);
};
const callError = (g: TestGateway, name: string, args: Record<string, unknown> = {}) =>
  g.client.callTool({ name, arguments: args }).then(
    () => null,
    (e: { code: number; message: string }) => e,
  );

describe("gateway: tools/call fast path", () => {
  it("sends a call to a listed tool of a ready server raw; a first call before any listing and a call with progress take the normal path", async () => {
    const g = await gw([tiny("a"), tiny("b")]);
    expect(await idSeen(g)).toBeGreaterThanOrEqual(0); // the catalog was not settled yet
    expect(await idSeen(g)).toBeLessThan(0);
    expect(await idSeen(g, { progress: true })).toBeGreaterThanOrEqual(0);
    // Both paths answer alike, in parallel too, each call matched to its own answer.
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => g.client.callTool({ name: i % 2 ? "a__echo" : "b__echo", arguments: { message: `m${i}` } })),
    );
    answers.forEach((r, i) => expect(text(r)).toContain(`${i % 2 ? "a" : "b"}: m${i}`));
    const calls = g.audit.filter((e) => e.type === "tool.call");
    expect(calls.length).toBe(43);
    expect(calls.every((e) => e.fields.outcome === "ok" && typeof e.fields.argsDigest === "string")).toBe(true);
  });

  it("refuses a result that is not a CallToolResult on both paths, with the same error", async () => {
    const g = await gw([tiny("a")]);
    const normal = await callError(g, "a__bad-result"); // first call: the normal path
    expect(await idSeen(g)).toBeLessThan(0);
    const fast = await callError(g, "a__bad-result");
    expect(normal?.code).toBe(-32602);
    expect(fast?.code).toBe(-32602);
    expect(fast?.message).toMatch(/Invalid tools\/call result/);
    expect(normal?.message).toMatch(/Invalid tools\/call result/);
    // Both calls are audited alike: the client got an error.
    const audited = g.audit.filter((e) => e.type === "tool.call" && e.fields.tool === "bad-result");
    expect(audited.map((e) => e.fields)).toEqual([expect.objectContaining({ outcome: "error", reason: "invalid result" }), expect.objectContaining({ outcome: "error", reason: "invalid result" })]);
  });

  it("drops responses to ids it never sent (a hostile server's made-up answers) and answers the real call", async () => {
    const g = await gw([tiny("a")]);
    await g.client.listTools();
    expect(text(await g.client.callTool({ name: "a__made-up-ids", arguments: {} }))).toContain("real");
    // Nothing was mixed up: later calls get their own answers.
    const later = await Promise.all([1, 2, 3].map((i) => g.client.callTool({ name: "a__echo", arguments: { message: `after${i}` } })));
    later.forEach((r, i) => expect(text(r)).toContain(`after${i + 1}`));
  });

  it("tells the server when the client cancels a call, and sends no answer for it", async () => {
    const g = await gw([tiny("a")]);
    await g.client.listTools();
    const ac = new AbortController();
    const pending = g.client.callTool({ name: "a__sleep", arguments: { ms: 20_000 } }, undefined, { signal: ac.signal }).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 200));
    ac.abort("user gave up");
    expect(await pending).toBeInstanceOf(Error);
    // The fixture reports the cancellation of the raw (negative) id on stderr, relayed to the log.
    await expect.poll(() => g.logs.join("\n"), { timeout: 5_000 }).toMatch(/cancelled -\d+/);
    expect(g.audit.filter((e) => e.type === "tool.call").at(-1)?.fields).toMatchObject({ tool: "sleep", outcome: "error", reason: "cancelled" });
    expect(text(await g.client.callTool({ name: "a__echo", arguments: { message: "next" } }))).toContain("next");
  });

  it("fails a call that outlives the request timeout with an error naming the server, and cancels it at the server", async () => {
    const g = await gw([tiny("a", 300)]);
    await g.client.listTools();
    const err = await callError(g, "a__sleep", { ms: 20_000 });
    expect(err?.code).toBe(-32001);
    expect(err?.message).toMatch(/server "a" did not answer tools\/call within 300 ms/);
    await expect.poll(() => g.logs.join("\n"), { timeout: 5_000 }).toMatch(/cancelled -\d+/);
  });

  it("fails a result nested 100,000 deep with a clear error on both paths, and stays up", async () => {
    const g = await gw([tiny("a")]);
    const normal = await callError(g, "a__deep"); // first call: the normal path
    expect(await idSeen(g)).toBeLessThan(0);
    const fast = await callError(g, "a__deep");
    for (const e of [normal, fast]) {
      expect(e?.code).toBe(-32603);
      expect(e?.message).toMatch(/server "a" sent a message nested deeper than 256 levels/);
    }
    expect(text(await g.client.callTool({ name: "a__echo", arguments: { message: "still up" } }))).toContain("still up");
  });

  it("stays on while another server is refused by policy (it offers nothing either way)", async () => {
    const inner = new UnsandboxedBackend();
    const refusing: Backend = {
      name: inner.name,
      probe: () => inner.probe(),
      gaps: (spec) => inner.gaps(spec),
      launch: async (spec, ctx) => {
        if (spec.name === "no") throw refused(`server "no" is refused for this test`, "none");
        return inner.launch(spec, ctx);
      },
    };
    const g = await gw([tiny("a"), tiny("no")], { backend: refusing });
    expect((await g.client.listTools()).tools.map((t) => t.name).every((n) => n.startsWith("a__"))).toBe(true);
    expect(await idSeen(g)).toBeLessThan(0);
    expect((await callError(g, "no__echo"))?.message).toMatch(/unknown tool "no__echo"/);
  });

  it("falls back to the normal path for a hidden or unknown tool, which refuses it", async () => {
    const g = await gw([{ ...tiny("a"), tools: { allow: [], deny: ["crash"] } }]);
    await g.client.listTools();
    expect((await callError(g, "a__crash"))?.message).toMatch(/not allowed by the policy of server "a"/);
    expect((await callError(g, "a__nope"))?.message).toMatch(/unknown tool "a__nope"/);
    expect(g.audit.some((e) => e.type === "policy.refused")).toBe(true);
  });
});
