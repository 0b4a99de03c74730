// The gateway over Streamable HTTP with real sockets and real SDK clients:
// one gateway per MCP session, server→client requests answered by the client
// whose session caused them, DELETE and idle timeout stop that session's
// servers, a crash in one session does not touch another.
import { afterEach, describe, expect, it } from "vitest";
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { makeSpec } from "../helpers/spec.js";
import { EVERYTHING, TINY } from "../helpers/gateway.js";
import {
  INIT,
  alive,
  connectHttp,
  pidsOf,
  postHeaders,
  startTestHttpGateway,
  type HttpClient,
  type TestHttpGateway,
} from "../helpers/http-gateway.js";

const node = process.execPath;
const everything = () => makeSpec({ name: "everything", argv: [node, EVERYTHING], insecureUnsandboxed: true });
const tiny = (name: string) => makeSpec({ name, argv: [node, TINY, "normal", name], insecureUnsandboxed: true });
// A complete answer to server-everything's elicitation form.
const elicited = (name: string) => ({
  name, check: true, integer: 42, email: "ada@example.com", uri: "https://example.com", date: "2024-01-01", dateTime: "2024-01-01T00:00:00Z",
  untitledSingleSelectEnum: "option1", titledSingleSelectEnum: "value1", legacyTitledEnum: "opt1", untitledMultipleSelectEnum: ["option1"], titledMultipleSelectEnum: ["value1"],
});
const text = (r: unknown) => JSON.stringify((r as { content: unknown }).content);

let gateways: TestHttpGateway[] = [];
let clients: HttpClient[] = [];
afterEach(async () => {
  await Promise.all(clients.map((c) => c.client.close().catch(() => undefined)));
  await Promise.all(gateways.map((g) => g.close()));
  clients = [];
  gateways = [];
});
async function start(...args: Parameters<typeof startTestHttpGateway>) {
  const g = await startTestHttpGateway(...args);
  gateways.push(g);
  return g;
}
async function connect(...args: Parameters<typeof connectHttp>) {
  const c = await connectHttp(...args);
  clients.push(c);
  return c;
}

describe("HTTP gateway: sessions", () => {
  it("lists and calls tools through HTTP", async () => {
    const g = await start(() => [tiny("a"), tiny("b")]);
    expect(g.http.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const { client } = await connect(g.http.url);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(["a__echo", "b__echo"]));
    expect(text(await client.callTool({ name: "b__echo", arguments: { message: "over http" } }))).toContain("b: over http");
    expect(g.http.sessions()).toBe(1);
  });

  it("routes each client's sampling request to that client, with two clients at once", async () => {
    const g = await start(() => [everything()]);
    const sampler = (answer: string) => (c: HttpClient["client"]) =>
      c.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: "assistant", content: { type: "text", text: answer }, model: "m" }));
    const one = await connect(g.http.url, { capabilities: { sampling: {} }, setup: sampler("answer-from-ONE") });
    const two = await connect(g.http.url, { capabilities: { sampling: {} }, setup: sampler("answer-from-TWO") });
    for (const c of [one, two]) {
      await expect.poll(async () => (await c.client.listTools()).tools.map((t) => t.name)).toContain("everything__trigger-sampling-request");
    }
    const call = (c: HttpClient) => c.client.callTool({ name: "everything__trigger-sampling-request", arguments: { prompt: "hi", maxTokens: 5 } });
    const [r1, r2] = await Promise.all([call(one), call(two)]);
    expect(text(r1)).toContain("answer-from-ONE");
    expect(text(r1)).not.toContain("answer-from-TWO");
    expect(text(r2)).toContain("answer-from-TWO");
    expect(text(r2)).not.toContain("answer-from-ONE");
    // Each session runs its own server process.
    const [p1, p2] = g.sessions.map((s) => pidsOf(s)[0]);
    expect(p1).toBeGreaterThan(0);
    expect(p2).toBeGreaterThan(0);
    expect(p1).not.toBe(p2);
  });

  it("answers roots/list and elicitation from the client of the session that asked", async () => {
    const g = await start(() => [everything()]);
    const setup = (who: string) => (c: HttpClient["client"]) => {
      c.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: `file:///root-of-${who}`, name: who }] }));
      c.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept" as const, content: elicited(`name-of-${who}`) }));
    };
    const caps = { roots: { listChanged: true }, elicitation: { form: {} } };
    const one = await connect(g.http.url, { capabilities: caps, setup: setup("ONE") });
    const two = await connect(g.http.url, { capabilities: caps, setup: setup("TWO") });
    for (const c of [one, two]) {
      await expect.poll(async () => (await c.client.listTools()).tools.map((t) => t.name)).toContain("everything__get-roots-list");
    }
    const roots = (c: HttpClient) => c.client.callTool({ name: "everything__get-roots-list", arguments: {} }).then(text);
    const [r1, r2] = await Promise.all([roots(one), roots(two)]);
    expect(r1).toContain("root-of-ONE");
    expect(r1).not.toContain("root-of-TWO");
    expect(r2).toContain("root-of-TWO");
    expect(r2).not.toContain("root-of-ONE");
    const elicit = (c: HttpClient) => c.client.callTool({ name: "everything__trigger-elicitation-request", arguments: {} }).then(text);
    const [e1, e2] = await Promise.all([elicit(one), elicit(two)]);
    expect(e1).toContain("name-of-ONE");
    expect(e1).not.toContain("name-of-TWO");
    expect(e2).toContain("name-of-TWO");
    expect(e2).not.toContain("name-of-ONE");
  });

  it("DELETE ends only that session and stops its servers", async () => {
    const g = await start(() => [tiny("a"), tiny("b")]);
    const one = await connect(g.http.url);
    const two = await connect(g.http.url);
    await one.client.listTools();
    await two.client.listTools();
    const [s1, s2] = g.sessions;
    const pids1 = pidsOf(s1!);
    const pids2 = pidsOf(s2!);
    expect(pids1).toHaveLength(2);
    expect([...pids1, ...pids2].every(alive)).toBe(true);
    const sessionId = one.transport.sessionId!;
    expect(s1!.tag).toBe(sessionId.slice(0, 8));
    await one.transport.terminateSession();
    // The DELETE is answered once the servers are stopped.
    expect(pids1.map(alive)).toEqual([false, false]);
    expect(pids2.every(alive)).toBe(true);
    expect(g.http.sessions()).toBe(1);
    expect(text(await two.client.callTool({ name: "a__echo", arguments: { message: "still" } }))).toContain("still");
    // The ended session is gone: 404 tells a client to start a new one.
    const res = await fetch(g.http.url, {
      method: "POST",
      headers: postHeaders({ "Mcp-Session-Id": sessionId }),
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
    });
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe(-32001);
  });

  it("closes an idle session and stops its servers", async () => {
    const g = await start(() => [tiny("a")], { idleTimeoutMs: 400 });
    const c = await connect(g.http.url);
    await c.client.listTools();
    const pids = pidsOf(g.sessions[0]!);
    expect(pids.every(alive)).toBe(true);
    // Closing the client drops its GET stream without a DELETE: the session goes idle.
    await c.client.close();
    await expect.poll(() => g.http.sessions(), { timeout: 10_000 }).toBe(0);
    await expect.poll(() => pids.map(alive), { timeout: 10_000 }).toEqual([false]);
    expect(g.logs.join("")).toMatch(/HTTP session closed: idle for 400 ms/);
  });

  it("keeps an active session open past the idle timeout while its GET stream is open", async () => {
    const g = await start(() => [tiny("a")], { idleTimeoutMs: 300 });
    const c = await connect(g.http.url);
    await c.client.listTools();
    await new Promise((r) => setTimeout(r, 1000));
    expect(g.http.sessions()).toBe(1);
    expect(text(await c.client.callTool({ name: "a__echo", arguments: { message: "awake" } }))).toContain("awake");
  });

  it("keeps serving other sessions when one session's server crashes", async () => {
    const g = await start(() => [tiny("a")]);
    const one = await connect(g.http.url);
    const two = await connect(g.http.url);
    await one.client.listTools();
    await two.client.listTools();
    await expect(one.client.callTool({ name: "a__crash", arguments: {} })).rejects.toThrow(/server "a" stopped while handling tools\/call/);
    expect(text(await two.client.callTool({ name: "a__echo", arguments: { message: "unaffected" } }))).toContain("unaffected");
    expect(g.sessions[1]!.audit.some((a) => a.type === "server.exit")).toBe(false);
    // The crashed session's server is restarted for it.
    await expect
      .poll(async () => text(await one.client.callTool({ name: "a__echo", arguments: { message: "back" } }).catch((e: Error) => e.message)), { timeout: 10_000 })
      .toContain("back");
  });

  it("refuses a session over the cap with 503 and a JSON-RPC error", async () => {
    const g = await start(() => [tiny("a")], { maxSessions: 1 });
    await connect(g.http.url);
    const res = await fetch(g.http.url, { method: "POST", headers: postHeaders(), body: JSON.stringify(INIT) });
    expect(res.status).toBe(503);
    const body = await res.json();
    expect(body.error.code).toBe(-32000);
    expect(body.error.message).toMatch(/already serves 1 sessions/);
    expect(g.sessions).toHaveLength(1); // no gateway was even created for the refused one
  });

  it("refuses a request over the session's limit of open requests with 429, and serves it once one ends", async () => {
    const g = await start(() => [tiny("a")], { maxRequestsPerSession: 3 });
    const c = await connect(g.http.url);
    await c.client.listTools();
    // Four slow calls at once (beside the SDK client's GET stream, when it has one open): the limit refuses some.
    const calls = await Promise.allSettled([1, 2, 3, 4].map(() => c.client.callTool({ name: "a__sleep", arguments: { ms: 1500 } })));
    const refused = calls.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason));
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const why of refused) expect(why).toMatch(/429|Too Many Requests/);
    expect(calls.filter((r) => r.status === "fulfilled").length).toBeGreaterThanOrEqual(2);
    expect(text(await c.client.callTool({ name: "a__echo", arguments: { message: "room again" } }))).toContain("room again");
  });

  it("sends a server→client request on the POST stream of a client that never opens a GET stream", async () => {
    const g = await start(() => [everything()]);
    const post = async (body: unknown, sid?: string) =>
      fetch(g.http.url, { method: "POST", headers: postHeaders(sid ? { "Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-06-18" } : {}), body: JSON.stringify(body) });
    const init = await post({ ...INIT, params: { ...INIT.params, capabilities: { sampling: {} } } });
    const sid = init.headers.get("mcp-session-id")!;
    await init.text();
    expect((await post({ jsonrpc: "2.0", method: "notifications/initialized" }, sid)).status).toBe(202);
    await expect
      .poll(async () => (await (await post({ jsonrpc: "2.0", id: 2, method: "tools/list" }, sid)).text()))
      .toContain("everything__trigger-sampling-request");
    const call = await post({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "everything__trigger-sampling-request", arguments: { prompt: "p", maxTokens: 5 } } }, sid);
    const reader = call.body!.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    let answered = false;
    while (!seen.includes('"id":3')) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
      const m = /"method":"sampling\/createMessage"[^\n]*"id":(\d+)|"id":(\d+)[^\n]*"method":"sampling\/createMessage"/.exec(seen);
      if (m && !answered) {
        answered = true;
        const id = Number(m[1] ?? m[2]);
        const r = await post({ jsonrpc: "2.0", id, result: { role: "assistant", content: { type: "text", text: "raw-client-answer" }, model: "m" } }, sid);
        expect(r.status).toBe(202);
      }
    }
    expect(answered).toBe(true);
    expect(seen).toContain("raw-client-answer");
  });

  it("stops every session's servers on close", async () => {
    const g = await startTestHttpGateway(() => [tiny("a")]);
    const c = await connectHttp(g.http.url);
    await c.client.listTools();
    const pids = pidsOf(g.sessions[0]!);
    expect(pids.every(alive)).toBe(true);
    await g.close();
    expect(pids.map(alive)).toEqual([false]);
    await c.client.close().catch(() => undefined);
    await expect(fetch(g.http.url, { method: "POST", headers: postHeaders(), body: JSON.stringify(INIT) })).rejects.toThrow();
  });
});
