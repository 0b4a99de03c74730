// `nucleus serve --http` from the built CLI: the token is generated and shown
// once (or read from a configured secret and never shown), clients need it,
// each session gets its servers in bubblewrap sandboxes, SIGTERM stops all.
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { TINY } from "../helpers/gateway.js";
import { NUCLEUS, ensureBuilt, tempConfig } from "../helpers/cli.js";
import { connectHttp } from "../helpers/http-gateway.js";
import { alive } from "../helpers/process.js";

const node = process.execPath;
const server = `[servers.t]\ncommand = [${JSON.stringify(node)}, ${JSON.stringify(TINY)}, "normal", "t"]\nvm_profile = "locked"\n`;
let child: ChildProcess | null = null;
let cleanup: (() => void) | null = null;

beforeAll(() => ensureBuilt(), 120_000);
afterEach(async () => {
  if (child && child.exitCode === null) {
    child.kill("SIGKILL");
    await new Promise((r) => child!.once("exit", r));
  }
  child = null;
  cleanup?.();
  cleanup = null;
});

async function serveHttp(toml: string, env: NodeJS.ProcessEnv = process.env): Promise<{ url: string; stderr: () => string; path: string }> {
  const cfg = tempConfig(toml);
  cleanup = cfg.cleanup;
  let stderr = "";
  child = spawn(node, [NUCLEUS, "--log-level", "debug", "-c", cfg.path, "serve", "--http"], { stdio: ["ignore", "pipe", "pipe"], env });
  child.stderr!.on("data", (d) => (stderr += d));
  await expect.poll(() => stderr, { timeout: 20_000 }).toMatch(/serving MCP over Streamable HTTP at (http:\/\/\S+)/);
  return { url: /serving MCP over Streamable HTTP at (http:\/\/\S+)/.exec(stderr)![1]!, stderr: () => stderr, path: cfg.path };
}

describe("nucleus serve --http", () => {
  it("prints a generated token once, serves clients that send it, refuses others, and stops on SIGTERM", async () => {
    const { url, stderr } = await serveHttp(`[gateway.http]\nport = 0\n\n${server}`);
    const token = /Authorization: Bearer (\S+)/.exec(stderr())![1]!;
    expect(token.length).toBeGreaterThanOrEqual(32);
    const { client } = await connectHttp(url, { token });
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("t__echo");
    expect(JSON.stringify((await client.callTool({ name: "t__echo", arguments: { message: "over http" } })).content)).toContain("over http");
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body: "{}" });
    expect(res.status).toBe(401);
    // (The "ready … pid=" log line travels on stderr, which may arrive after the answer on stdout.)
    const pidsSeen = () => [...stderr().matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
    await expect.poll(() => pidsSeen().length, { timeout: 10_000 }).toBeGreaterThan(0);
    const pids = pidsSeen();
    // The token appears exactly once: in the notice, never in a log line.
    expect(stderr().split(token).length - 1).toBe(1);
    child!.kill("SIGTERM");
    expect(await new Promise((r) => child!.once("exit", r))).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
  }, 60_000);

  it("applies a reloaded config (SIGHUP) to open sessions too: a removed server is gone from them at once", async () => {
    const second = server.replaceAll("servers.t]", "servers.u]").replace('"normal", "t"', '"normal", "u"');
    const { url, stderr, path } = await serveHttp(`[gateway.http]\nport = 0\n\n${server}\n${second}`);
    const token = /Authorization: Bearer (\S+)/.exec(stderr())![1]!;
    const { client } = await connectHttp(url, { token });
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(expect.arrayContaining(["t__echo", "u__echo"]));
    await expect.poll(() => /server "u" ready \(.*\bpid=(\d+)/.exec(stderr())?.[1], { timeout: 10_000 }).toBeDefined();
    const uPid = Number(/server "u" ready \(.*\bpid=(\d+)/.exec(stderr())![1]);
    // A call in flight on the server the reload removes fails at once, saying the gateway stopped it.
    const inFlight = client.callTool({ name: "u__sleep", arguments: { ms: 30_000 } }).then(() => "answered", (e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 1000)); // (sequencing only: the call reaches the server, which sleeps 30 s)
    writeFileSync(path, `[gateway.http]\nport = 0\n\n${server}`);
    child!.kill("SIGHUP");
    expect(await inFlight).toMatch(/server "u" stopped while handling tools\/call.*it was stopped by the gateway/);
    await expect.poll(stderr, { timeout: 15_000 }).toMatch(/config reloaded: added \[\], removed \[u\], changed \[\] \(applied to 1 open HTTP session/);
    // The open session lost the server: its process stopped, its tools are gone and a call is refused.
    await expect.poll(() => alive(uPid), { timeout: 10_000 }).toBe(false);
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain("u__echo");
    await expect(client.callTool({ name: "u__echo", arguments: { message: "x" } })).rejects.toThrow(/unknown tool|not found/i);
    expect(JSON.stringify((await client.callTool({ name: "t__echo", arguments: { message: "still here" } })).content)).toContain("still here");
    await client.close();
  }, 60_000);

  it("takes the token from a configured secret and never prints it", async () => {
    const secretToken = `configured-token-${process.pid}-0123456789abcdef`;
    const { url, stderr } = await serveHttp(`[gateway.http]\nport = 0\ntoken = "HTTP_TOKEN"\n\n[secrets.HTTP_TOKEN]\nfrom = "env"\n\n${server}`, { ...process.env, HTTP_TOKEN: secretToken });
    const { client } = await connectHttp(url, { token: secretToken });
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("t__echo");
    await client.close();
    expect(stderr()).toContain("clients must send the configured bearer token");
    expect(stderr()).not.toContain(secretToken);
  }, 60_000);

  it("refuses a non-loopback address without the dangerous switch (config error, exit 2)", async () => {
    const cfg = tempConfig(`[gateway.http]\nlisten = "0.0.0.0"\n\n${server}`);
    cleanup = cfg.cleanup;
    const p = spawn(node, [NUCLEUS, "-c", cfg.path, "serve", "--http"], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    const code = await new Promise((r) => p.once("exit", r));
    // (stderr in the assertion: a failure shows why the gateway exited.)
    expect({ code, err }).toMatchObject({ code: 2, err: expect.stringMatching(/gateway\.http\.listen: "0\.0\.0\.0" is not a loopback address/) });
  });
});
