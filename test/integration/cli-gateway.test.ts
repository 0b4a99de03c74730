// The real CLI: `nucleus serve` and `nucleus run` driven by the official SDK
// client over stdio, with servers in real bubblewrap sandboxes.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { EVERYTHING, MEMORY, TINY } from "../helpers/gateway.js";
import { NUCLEUS, ensureBuilt, runCli, tempConfig } from "../helpers/cli.js";
import { alive } from "../helpers/process.js";

const node = process.execPath;
const cfg = tempConfig(`
[servers.everything]
command = [${JSON.stringify(node)}, ${JSON.stringify(EVERYTHING)}]
vm_profile = "locked"

[servers.memory]
command = [${JSON.stringify(node)}, ${JSON.stringify(MEMORY)}]
vm_profile = "locked"
env = { MEMORY_FILE_PATH = "/tmp/memory.jsonl" }
`);

beforeAll(() => ensureBuilt(), 120_000);
afterAll(() => cfg.cleanup());

async function connect(args: string[]): Promise<{ client: Client; transport: StdioClientTransport; stderr: () => string }> {
  let stderr = "";
  const transport = new StdioClientTransport({ command: node, args: [NUCLEUS, "-c", cfg.path, ...args], stderr: "pipe", env: process.env as Record<string, string> });
  transport.stderr?.on("data", (d) => (stderr += d));
  const client = new Client({ name: "cli-test", version: "1" });
  await client.connect(transport);
  return { client, transport, stderr: () => stderr };
}


describe("nucleus serve (stdio, bubblewrap)", () => {
  it("aggregates both servers' tools and answers calls from inside the sandboxes", async () => {
    const { client, stderr } = await connect(["serve"]);
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      // (The gateway's log says why a server's tools are missing.)
      expect(names, stderr()).toContain("everything__echo");
      expect(names, stderr()).toContain("memory__create_entities");
      const echo = await client.callTool({ name: "everything__echo", arguments: { message: "through the gateway" } });
      expect(JSON.stringify(echo.content)).toContain("through the gateway");
      // The sandbox's environment is the minimal one, not the gateway's.
      const env = JSON.stringify((await client.callTool({ name: "everything__get-env", arguments: {} })).content);
      expect(env).not.toContain(process.env.PATH!.split(":").find((p) => p.includes("node_modules")) ?? "no-such-thing");
      expect(env).toContain("/home/nucleus");
      await client.callTool({ name: "memory__create_entities", arguments: { entities: [{ name: "Ada", entityType: "person", observations: ["wrote the first program"] }] } });
      const graph = JSON.stringify((await client.callTool({ name: "memory__read_graph", arguments: {} })).content);
      expect(graph).toContain("Ada");
      expect(stderr()).toMatch(/server "everything": backend bubblewrap/);
    } finally {
      await client.close();
    }
  });

  it("leaves no server process behind after the client goes away", async () => {
    const { client, stderr } = await connect(["--log-level", "debug", "serve"]);
    await client.listTools();
    const pids = [...stderr().matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
    expect(pids.length).toBe(2);
    expect(pids.every(alive)).toBe(true);
    await client.close();
    await expect.poll(() => pids.filter(alive), { timeout: 10_000 }).toEqual([]);
  });
});

describe("nucleus run NAME", () => {
  it("proxies one server without renaming", async () => {
    const { client } = await connect(["run", "everything"]);
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain("echo");
      expect(names.some((n) => n.includes("__"))).toBe(false);
    } finally {
      await client.close();
    }
  });

  it("exits 2 naming the known servers for an unknown name", async () => {
    const r = await runCli(["-c", cfg.path, "run", "nope"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no server named "nope".*\n.*known servers: everything, memory/);
  });
});

describe("bad input from the client", () => {
  it("answers malformed JSON-RPC with errors and keeps serving", async () => {
    const child = spawn(node, [NUCLEUS, "--log-level", "error", "-c", cfg.path, "run", "everything"], { stdio: ["pipe", "pipe", "pipe"] });
    const lines: unknown[] = [];
    createInterface({ input: child.stdout }).on("line", (l) => lines.push(JSON.parse(l)));
    const send = (s: string) => child.stdin.write(s + "\n");
    send("this is not json");
    send(JSON.stringify({ jsonrpc: "2.0", id: 7, method: 42 }));
    send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } } }));
    await expect.poll(() => lines.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(3);
    expect(lines[0]).toMatchObject({ id: null, error: { code: -32700 } });
    expect(lines[1]).toMatchObject({ id: 7, error: { code: -32600 } });
    expect(lines[2]).toMatchObject({ id: 1, result: { serverInfo: { name: "nucleus" } } });
    send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
    send(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "no-such-tool", arguments: {} } }));
    await expect.poll(() => lines.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(4);
    expect(lines[3]).toMatchObject({ id: 2, error: { message: expect.stringContaining('unknown tool "no-such-tool"') } });
    child.stdin.end();
    const code = await new Promise((r) => child.on("exit", r));
    expect(code).toBe(0);
  });

  it("discards an oversized client line with an error and keeps serving", async () => {
    const small = tempConfig(`[gateway]\nmax_message_bytes = 4096\n[servers.t]\ncommand = [${JSON.stringify(node)}, ${JSON.stringify(TINY)}]\nvm_profile = "locked"\n`);
    try {
      const child = spawn(node, [NUCLEUS, "--log-level", "error", "-c", small.path, "serve"], { stdio: ["pipe", "pipe", "pipe"] });
      const lines: Array<{ id?: unknown; error?: { code: number } }> = [];
      createInterface({ input: child.stdout }).on("line", (l) => lines.push(JSON.parse(l)));
      child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", params: { pad: "x".repeat(10_000) } }) + "\n");
      child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" }) + "\n");
      await expect.poll(() => lines.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
      expect(lines[0]).toMatchObject({ error: { code: -32600 } });
      expect(lines[1]).toMatchObject({ id: 2 });
      child.kill("SIGTERM");
      expect(await new Promise((r) => child.on("exit", r))).toBe(0);
    } finally {
      small.cleanup();
    }
  });
});

describe("signals and refusals", () => {
  it("stops every server on SIGTERM and exits 0", async () => {
    const child = spawn(node, [NUCLEUS, "--log-level", "debug", "-c", cfg.path, "serve"], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } } }) + "\n");
    child.stdin.write(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n");
    await expect.poll(() => [...stderr.matchAll(/ready \(server=/g)].length, { timeout: 20_000 }).toBe(2);
    const pids = [...stderr.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
    expect(pids.length).toBeGreaterThan(0);
    child.kill("SIGTERM");
    expect(await new Promise((r) => child.on("exit", r))).toBe(0);
    expect(stderr).toMatch(/shutting down: received SIGTERM/);
    expect(pids.filter(alive)).toEqual([]);
  });

  it("refuses with exit 3 when a named backend cannot run, saying which rule and what to do", async () => {
    const c = tempConfig(`[servers.vm]\ncommand = [${JSON.stringify(node)}, ${JSON.stringify(TINY)}]\nbackend = "firecracker"\n`);
    try {
      const r = await runCli(["-c", c.path, "serve"]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/refusing to start "vm"/);
      expect(r.stderr).toMatch(/servers\.vm\.backend/);
      expect(r.stderr).toMatch(/Hint:/);
    } finally {
      c.cleanup();
    }
  });
});
