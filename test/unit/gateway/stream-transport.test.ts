import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { MAX_DEPTH, StreamTransport, nestedDeeperThan } from "../../../src/gateway/stream-transport.js";

function pair(role: "server" | "client", maxMessageBytes = 1024, closeOnOversize = true) {
  const input = new PassThrough();
  const output = new PassThrough();
  const t = new StreamTransport(input, output, { role, peer: "the peer", maxMessageBytes, closeOnOversize });
  const written: string[] = [];
  output.on("data", (d) => written.push(...String(d).split("\n").filter(Boolean)));
  const errors: string[] = [];
  const messages: unknown[] = [];
  t.onerror = (e) => void errors.push(e.message);
  t.onmessage = (m) => void messages.push(m);
  let closed = false;
  t.onclose = () => void (closed = true);
  return { input, output, t, written, errors, messages, isClosed: () => closed };
}
const tick = () => new Promise((r) => setImmediate(r));

describe("StreamTransport", () => {
  it("turns an answer nested deeper than MAX_DEPTH into an error for its request; drops a deep request as a server, with an error", async () => {
    const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
    const c = pair("client", 10_000_000);
    await c.t.start();
    c.input.write(`{"jsonrpc":"2.0","id":3,"result":{"x":${deep(100_000)}}}\n{"jsonrpc":"2.0","method":"notifications/x","params":{"x":${deep(300)}}}\n{"jsonrpc":"2.0","id":4,"result":{"x":${deep(200)}}}\n`);
    await tick();
    expect(c.messages).toHaveLength(2);
    expect(c.messages[0]).toEqual({ jsonrpc: "2.0", id: 3, error: { code: -32603, message: `the peer sent a message nested deeper than ${MAX_DEPTH} levels` } });
    expect((c.messages[1] as { id: number }).id).toBe(4);
    expect(c.errors).toHaveLength(2);
    const s = pair("server", 10_000_000, false);
    await s.t.start();
    s.input.write(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"a":${deep(5000)}}}\n`);
    await tick();
    expect(s.messages).toEqual([]);
    expect(JSON.parse(s.written[0]!)).toEqual({ jsonrpc: "2.0", id: 9, error: { code: -32600, message: `Invalid Request: nested deeper than ${MAX_DEPTH} levels` } });
  });

  it("measures nesting without recursion", () => {
    let v: unknown = 1;
    for (let i = 0; i < 200_000; i++) v = { v };
    expect(nestedDeeperThan(v, 256)).toBe(true);
    expect(nestedDeeperThan({ a: [[{ b: [] }]] }, 5)).toBe(false); // five levels
    expect(nestedDeeperThan({ a: [[{ b: [] }]] }, 4)).toBe(true);
    expect(nestedDeeperThan("text", 0)).toBe(false);
  });

  it("delivers messages split across chunks and several in one chunk", async () => {
    const p = pair("client");
    await p.t.start();
    p.input.write('{"jsonrpc":"2.0","id":1,"res');
    p.input.write('ult":{}}\n{"jsonrpc":"2.0","method":"notifications/x"}\n{"jsonrpc":"2.0","id":2,"result":{}}\n');
    await tick();
    expect(p.messages).toEqual([
      { jsonrpc: "2.0", id: 1, result: {} },
      { jsonrpc: "2.0", method: "notifications/x" },
      { jsonrpc: "2.0", id: 2, result: {} },
    ]);
  });

  it("cuts off a line longer than the limit and closes (server-side peer)", async () => {
    const p = pair("client", 1024);
    await p.t.start();
    p.input.write("x".repeat(600));
    p.input.write("x".repeat(600));
    await tick();
    expect(p.errors).toEqual(["the peer sent a message larger than 1024 bytes; the connection was cut"]);
    expect(p.isClosed()).toBe(true);
  });

  it("as a server, answers oversized, unparsable and non-JSON-RPC input with errors and goes on", async () => {
    const p = pair("server", 1024, false);
    await p.t.start();
    p.input.write("y".repeat(3000) + "\n");
    p.input.write("not json\n");
    p.input.write('{"jsonrpc":"2.0","id":5,"method":7}\n');
    p.input.write('{"jsonrpc":"2.0","method":9}\n'); // a broken notification gets no answer
    p.input.write('{"jsonrpc":"2.0","id":6,"method":"ping"}\n');
    await expect.poll(() => p.messages.length).toBe(1);
    expect(p.written.map((l) => JSON.parse(l))).toEqual([
      { jsonrpc: "2.0", id: null, error: { code: -32600, message: "Invalid Request: message larger than 1024 bytes" } },
      { jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } },
      { jsonrpc: "2.0", id: 5, error: { code: -32600, message: "Invalid Request" } },
    ]);
    expect(p.messages).toEqual([{ jsonrpc: "2.0", id: 6, method: "ping" }]);
    expect(p.isClosed()).toBe(false);
  });

  it("delivers the last lines before closing on end of input", async () => {
    const p = pair("client");
    await p.t.start();
    p.input.end('{"jsonrpc":"2.0","method":"notifications/a"}\n{"jsonrpc":"2.0","id":1,"result":{}}\n');
    await expect.poll(() => p.isClosed()).toBe(true);
    expect(p.messages).toHaveLength(2);
  });

  it("lets the SDK see a progress notification that arrives in the same chunk as its response", async () => {
    const toClient = new PassThrough();
    const fromClient = new PassThrough();
    const client = new Client({ name: "t", version: "1" });
    // A fake server: answer initialize, then answer the call with progress + result in ONE write.
    fromClient.on("data", (d: Buffer) => {
      for (const line of String(d).split("\n").filter(Boolean)) {
        const m = JSON.parse(line);
        if (m.method === "initialize") toClient.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "f", version: "1" } } }) + "\n");
        if (m.method === "tools/call") {
          const token = m.params._meta.progressToken;
          toClient.write(
            JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: token, progress: 1, total: 1 } }) + "\n" +
              JSON.stringify({ jsonrpc: "2.0", id: m.id, result: { content: [] } }) + "\n",
          );
        }
      }
    });
    await client.connect(new StreamTransport(toClient, fromClient, { role: "client", peer: "fake" }));
    const seen: number[] = [];
    await client.callTool({ name: "x", arguments: {} }, undefined, { onprogress: (p) => void seen.push(p.progress) });
    expect(seen).toEqual([1]);
    await client.close();
  });
});
