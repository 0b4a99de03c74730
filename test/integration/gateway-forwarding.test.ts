// Forwarding through the gateway: server→client requests, progress,
// cancellation, logging, list_changed, subscriptions, completions.
import { describe, expect, it } from "vitest";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { makeSpec } from "../helpers/spec.js";
import { EVERYTHING, TINY, useGateways } from "../helpers/gateway.js";

const node = process.execPath;
const everything = () => makeSpec({ name: "everything", argv: [node, EVERYTHING], insecureUnsandboxed: true });
const tiny = (name: string, mode = "normal") => makeSpec({ name, argv: [node, TINY, mode, name], insecureUnsandboxed: true });

const gw = useGateways();
const text = (r: unknown) => JSON.stringify((r as { content: unknown }).content);

describe("gateway: server→client requests", () => {
  it("round-trips sampling to the client and back to the server", async () => {
    const seen: unknown[] = [];
    const g = await gw([everything()], {
      capabilities: { sampling: {} },
      setup: (c) =>
        c.setRequestHandler(CreateMessageRequestSchema, async (req) => {
          seen.push(req.params.messages);
          return { role: "assistant", content: { type: "text", text: "sampled-answer-42" }, model: "test-model" };
        }),
    });
    await expect.poll(async () => (await g.client.listTools()).tools.map((t) => t.name)).toContain("everything__trigger-sampling-request");
    const res = await g.client.callTool({ name: "everything__trigger-sampling-request", arguments: { prompt: "hello sampler", maxTokens: 5 } });
    expect(text(res)).toContain("sampled-answer-42");
    expect(JSON.stringify(seen)).toContain("hello sampler");
  });

  it("round-trips a form elicitation", async () => {
    const g = await gw([everything()], {
      capabilities: { elicitation: { form: {} } },
      setup: (c) =>
        c.setRequestHandler(ElicitRequestSchema, async (req) => {
          expect(req.params.mode ?? "form").toBe("form");
          return { action: "accept", content: { name: "Ada", check: true, integer: 42, email: "ada@example.com", uri: "https://example.com", date: "2024-01-01", dateTime: "2024-01-01T00:00:00Z", untitledSingleSelectEnum: "option1", titledSingleSelectEnum: "value1", legacyTitledEnum: "opt1", untitledMultipleSelectEnum: ["option1"], titledMultipleSelectEnum: ["value1"] } };
        }),
    });
    await expect.poll(async () => (await g.client.listTools()).tools.map((t) => t.name)).toContain("everything__trigger-elicitation-request");
    const res = await g.client.callTool({ name: "everything__trigger-elicitation-request", arguments: {} });
    expect(text(res)).toContain("Ada");
  });

  it("round-trips a URL elicitation, and passes the URL-required error (-32042) on with its data", async () => {
    const seen: Array<{ mode?: string; url?: string }> = [];
    const g = await gw([everything()], {
      capabilities: { elicitation: { form: {}, url: {} } },
      setup: (c) =>
        c.setRequestHandler(ElicitRequestSchema, async (req) => {
          seen.push(req.params as { mode?: string; url?: string });
          return { action: "accept" };
        }),
    });
    await expect.poll(async () => (await g.client.listTools()).tools.map((t) => t.name)).toContain("everything__trigger-url-elicitation");
    const res = await g.client.callTool({ name: "everything__trigger-url-elicitation", arguments: { url: "https://example.com/authorize" } });
    expect(seen).toEqual([expect.objectContaining({ mode: "url", url: "https://example.com/authorize" })]);
    expect(JSON.stringify(res.content)).toMatch(/accept/i);
    const err = (await g.client
      .callTool({ name: "everything__trigger-url-elicitation", arguments: { url: "https://example.com/x", errorPath: true } })
      .catch((e: unknown) => e)) as { code?: number; message: string; data?: { elicitations?: Array<{ mode: string }> } };
    expect(err.code).toBe(-32042);
    expect(err.message).not.toMatch(/MCP error -32042: MCP error/);
    expect(err.data?.elicitations?.[0]?.mode).toBe("url");
  });

  it("round-trips roots/list and forwards roots/list_changed", async () => {
    let roots = [{ uri: "file:///first-root", name: "first" }];
    const g = await gw([everything()], {
      capabilities: { roots: { listChanged: true } },
      setup: (c) => c.setRequestHandler(ListRootsRequestSchema, async () => ({ roots })),
    });
    await expect.poll(async () => (await g.client.listTools()).tools.map((t) => t.name)).toContain("everything__get-roots-list");
    expect(text(await g.client.callTool({ name: "everything__get-roots-list", arguments: {} }))).toContain("first-root");
    roots = [{ uri: "file:///second-root", name: "second" }];
    await g.client.sendRootsListChanged();
    await expect
      .poll(async () => text(await g.client.callTool({ name: "everything__get-roots-list", arguments: {} })), { timeout: 10_000 })
      .toContain("second-root");
  });
});

describe("gateway: progress, cancellation, timeouts", () => {
  it("delivers progress notifications with the client's token", async () => {
    const g = await gw([everything()]);
    const progress: number[] = [];
    const res = await g.client.callTool(
      { name: "everything__trigger-long-running-operation", arguments: { duration: 1, steps: 4 } },
      undefined,
      { onprogress: (p) => void progress.push(p.progress) },
    );
    expect(text(res)).toContain("completed");
    expect(progress).toEqual([1, 2, 3, 4]);
  });

  it("passes cancellation to the server", async () => {
    const g = await gw([tiny("t1")]);
    await g.client.listTools();
    const ac = new AbortController();
    const call = g.client.callTool({ name: "t1__sleep", arguments: { ms: 20_000 } }, undefined, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 300));
    ac.abort("user cancelled");
    await expect(call).rejects.toThrow();
    await expect.poll(() => g.logs.join("")).toMatch(/stderr: cancelled -?\d+/);
  });

  it("fails a request that exceeds the server's request timeout with a clear error", async () => {
    const spec = makeSpec({ name: "t1", argv: [node, TINY, "normal", "t1"], insecureUnsandboxed: true, timeouts: { startupMs: 10_000, requestMs: 500, shutdownGraceMs: 1000 } });
    const g = await gw([spec]);
    await expect(g.client.callTool({ name: "t1__sleep", arguments: { ms: 5000 } })).rejects.toThrow(/server "t1" did not answer tools\/call within 500 ms/);
  });
});

describe("gateway: notifications", () => {
  it("forwards tools/list_changed and re-lists", async () => {
    const g = await gw([tiny("t1")]);
    let changed = 0;
    g.client.setNotificationHandler(ToolListChangedNotificationSchema, async () => void changed++);
    const before = (await g.client.listTools()).tools.length;
    // The server's first start may itself be announced; let that settle before counting.
    await new Promise((r) => setTimeout(r, 300));
    const baseline = changed;
    await g.client.callTool({ name: "t1__grow", arguments: {} });
    await expect.poll(() => changed).toBeGreaterThan(baseline);
    expect((await g.client.listTools()).tools.map((t) => t.name)).toContain(`t1__grown${before}`);
  });

  it("forwards logging messages, names the server, and setLevel reaches it", async () => {
    const g = await gw([everything()]);
    const logs: Array<{ logger?: string; data: unknown }> = [];
    g.client.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => void logs.push(n.params));
    await g.client.setLoggingLevel("debug");
    const r = (await g.client.listResources()).resources[0]!;
    await g.client.subscribeResource({ uri: r.uri });
    await expect.poll(() => logs.length).toBeGreaterThan(0);
    expect(logs[0]!.logger?.startsWith("everything")).toBe(true);
    // The server saw the original URI, not ours.
    expect(JSON.stringify(logs)).not.toContain("nucleus://");
  });

  it("forwards resources/updated for a subscription with the exposed URI", async () => {
    const g = await gw([everything()]);
    const updates: string[] = [];
    g.client.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => void updates.push(n.params.uri));
    const r = (await g.client.listResources()).resources[0]!;
    await g.client.subscribeResource({ uri: r.uri });
    await g.client.callTool({ name: "everything__toggle-subscriber-updates", arguments: {} });
    await expect.poll(() => updates, { timeout: 15_000 }).toContain(r.uri);
    await g.client.unsubscribeResource({ uri: r.uri });
  }, 30_000);

  it("forwards completions for prompts and resource templates", async () => {
    const g = await gw([everything()]);
    const c = await g.client.complete({ ref: { type: "ref/prompt", name: "everything__completable-prompt" }, argument: { name: "department", value: "E" } });
    expect(c.completion.values.length).toBeGreaterThan(0);
    const t = (await g.client.listResourceTemplates()).resourceTemplates[0]!;
    const c2 = await g.client.complete({ ref: { type: "ref/resource", uri: t.uriTemplate }, argument: { name: "resourceId", value: "1" } });
    expect(Array.isArray(c2.completion.values)).toBe(true);
  });

  it("answers ping", async () => {
    const g = await gw([tiny("t1")]);
    await expect(g.client.ping()).resolves.toBeDefined();
  });
});
