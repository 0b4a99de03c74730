// The proxy on its own, over its unix socket, against real loopback targets.
// Names come from an injected resolver here; test/integration/egress.test.ts
// uses a real dnsmasq and a real sandbox.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { connect, createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startEgressProxy } from "../../../src/egress/proxy.js";
import type { EgressEvent, EgressProxy } from "../../../src/egress/types.js";
import { Logger } from "../../../src/log.js";
import { rules } from "../policy/egress-rule-helper.js";

const TEST_RANGE = ["127.0.0.16/28"];
let dir: string;
let proxy: EgressProxy | null = null;
let http: HttpServer;
let echo: Server;
let httpPort: number;
let echoPort: number;
let events: EgressEvent[];

const names: Record<string, string[]> = { "web.test": ["127.0.0.17"], "echo.test": ["127.0.0.18"], "evil.test": ["127.0.0.1"] };

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "nucleus-egress-unit-"));
  events = [];
  http = createHttpServer((req, res) => res.end(`host=${req.headers.host} url=${req.url} conn=${req.headers.connection}`));
  await new Promise<void>((r) => http.listen(0, "127.0.0.17", r));
  httpPort = (http.address() as AddressInfo).port;
  echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, "127.0.0.18", r));
  echoPort = (echo.address() as AddressInfo).port;
});

afterEach(async () => {
  await proxy?.close();
  proxy = null;
  http.closeAllConnections();
  await new Promise((r) => http.close(r));
  await new Promise((r) => echo.close(r));
  rmSync(dir, { recursive: true, force: true });
});

async function start(ruleTexts: string[], limits = {}, log?: Logger) {
  const sink = events; // this test's array: a previous proxy's late events must not land here
  proxy = await startEgressProxy({
    log,
    server: "t",
    rules: rules(...ruleTexts),
    socketPath: join(dir, "egress.sock"),
    resolver: async (n) => names[n] ?? [],
    audit: (e) => sink.push(e),
    insecureTestPrivateRanges: TEST_RANGE,
    limits,
  });
  return proxy;
}

/** Send bytes, collect everything until the proxy closes. */
function exchange(payload: Buffer | string, opts: { endAfter?: boolean } = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(join(dir, "egress.sock"));
    const chunks: Buffer[] = [];
    s.on("data", (d) => chunks.push(d));
    s.on("error", () => {}); // the proxy may close while we still write (EPIPE): judge by what came back
    s.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    s.write(payload);
    if (opts.endAfter) s.end();
  });
}

describe("egress proxy", () => {
  it("listens on a 0600 socket and forwards absolute-URI HTTP with the Host it dials", async () => {
    await start([`web.test:${httpPort}`]);
    expect(statSync(join(dir, "egress.sock")).mode & 0o777).toBe(0o600);
    const out = await exchange(`GET http://web.test:${httpPort}/a?b=1 HTTP/1.1\r\nHost: evil.test\r\nProxy-Connection: keep-alive\r\n\r\n`);
    expect(out).toMatch(/^HTTP\/1\.1 200/);
    expect(out).toContain(`host=web.test:${httpPort} url=/a?b=1 conn=close`);
    await vi_waitFor(() => events.length === 1);
    expect(events[0]).toMatchObject({ type: "egress", server: "t", protocol: "http", host: "web.test", port: httpPort, address: "127.0.0.17", allowed: true, rule: `web.test:${httpPort}` });
    expect(events[0]!.bytesDown).toBeGreaterThan(0);
  });

  it("tunnels CONNECT and pinned streams to an allowed name, refuses others with an audit event", async () => {
    await start([`echo.test:${echoPort}`, `evil.test:${echoPort}`]);
    const ok = await exchange(`CONNECT echo.test:${echoPort} HTTP/1.1\r\nHost: echo.test\r\n\r\nping`, { endAfter: true });
    expect(ok).toBe("HTTP/1.1 200 Connection Established\r\n\r\nping");
    const pin = await exchange(`NUCLEUS-PIN echo.test ${echoPort}\nhello`, { endAfter: true });
    expect(pin).toBe("hello");
    const rebound = await exchange(`CONNECT evil.test:${echoPort} HTTP/1.1\r\nHost: echo.test\r\n\r\n`);
    expect(rebound).toMatch(/^HTTP\/1\.1 403/);
    expect(rebound).toContain("loopback");
    const other = await exchange(`NUCLEUS-PIN 127.0.0.18 ${echoPort}\nx`);
    expect(other).toBe("");
    await vi_waitFor(() => events.length === 4);
    const refused = events.filter((e) => !e.allowed);
    expect(refused.map((e) => [e.protocol, e.host])).toEqual([
      ["connect", "evil.test"],
      ["pin", "127.0.0.18"],
    ]);
  });

  it("speaks SOCKS5 with remote names and refuses a disallowed port", async () => {
    await start([`echo.test:${echoPort}`]);
    const name = Buffer.from("echo.test");
    const req = (port: number) => Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]);
    const ok = await exchange(Buffer.concat([req(echoPort), Buffer.from("yo")]), { endAfter: true });
    expect(Buffer.from(ok, "latin1").subarray(0, 4)).toEqual(Buffer.from([5, 0, 5, 0]));
    expect(ok.endsWith("yo")).toBe(true);
    const no = Buffer.from(await exchange(req(echoPort + 1)), "latin1");
    expect([...no.subarray(0, 4)]).toEqual([5, 0, 5, 2]);
  });

  it("bounds the head size and time, and the number of connections", async () => {
    await start([`web.test:${httpPort}`], { maxHeaderBytes: 1024, headerTimeoutMs: 300, maxConnections: 3 });
    const big = await exchange(`GET http://web.test:${httpPort}/ HTTP/1.1\r\nX: ${"a".repeat(2000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431/);
    const slow = await exchange(`GET http://web.test:${httpPort}/ HTTP/1.1\r\nX-Slow: 1\r\n`);
    expect(slow).toBe("");
    const held = [0, 1, 2].map(() => connect(join(dir, "egress.sock")));
    await vi_waitFor(() => proxy!.stats().active === 3);
    const extra = await exchange("GET");
    expect(extra).toBe("");
    held.forEach((s) => s.destroy());
    const reasons = events.map((e) => e.reason);
    expect(reasons.some((r) => /exceeds 1024 bytes/.test(r))).toBe(true);
    expect(reasons.some((r) => /did not arrive within 300 ms/.test(r))).toBe(true);
    expect(reasons.some((r) => /limit of 3 concurrent/.test(r))).toBe(true);
  });
});

describe("egress proxy, logging and timeouts", () => {
  it("warns once per refused destination, with the rule to add", async () => {
    const lines: string[] = [];
    await start([`web.test:${httpPort}`], {}, new Logger({ level: "warn", sink: { write: (l) => lines.push(l) } }));
    for (let i = 0; i < 3; i++) await exchange(`CONNECT web.test:${httpPort + 1} HTTP/1.1\r\n\r\n`);
    await exchange(`CONNECT evil.test:${httpPort} HTTP/1.1\r\n\r\n`);
    expect(events.filter((e) => !e.allowed)).toHaveLength(4);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(`to allow it, add "web.test:${httpPort + 1}" to servers.t.allowed_hosts`);
    expect(lines[0]).toContain(`egress: web.test port ${httpPort + 1} is refused: no rule allows port ${httpPort + 1} for it`);
    // Names no rule matches are never resolved (no DNS exfiltration), so the hint cannot know better.
    expect(lines[1]).toContain(`evil.test port ${httpPort} is refused: no rule allows it; to allow it, add "evil.test:${httpPort}"`);
  });

  it("frees the slot of a refused client that keeps its side open", async () => {
    await start([`web.test:${httpPort}`], { maxConnections: 1 });
    const s = connect({ path: join(dir, "egress.sock"), allowHalfOpen: true });
    s.on("error", () => {});
    s.write(`CONNECT evil.test:${httpPort} HTTP/1.1\r\n\r\n`);
    s.resume();
    await new Promise((r) => s.once("end", r));
    await vi_waitFor(() => proxy!.stats().active === 0);
    const ok = await exchange(`GET http://web.test:${httpPort}/ HTTP/1.1\r\n\r\n`);
    expect(ok).toMatch(/^HTTP\/1\.1 200/);
    expect(s.destroyed).toBe(false); // the client still holds its side; the proxy let go anyway
    s.destroy();
  });

  it("follows no redirect: a 302 goes back to the client as it is", async () => {
    const redirecting = createHttpServer((_req, res) => res.writeHead(302, { Location: "http://evil.test/" }).end());
    const port = await new Promise<number>((r) => redirecting.listen(0, "127.0.0.17", () => r((redirecting.address() as AddressInfo).port)));
    try {
      await start([`web.test:${port}`]);
      const out = await exchange(`GET http://web.test:${port}/ HTTP/1.1\r\n\r\n`);
      expect(out).toMatch(/^HTTP\/1\.1 302/);
      expect(out).toContain("Location: http://evil.test/");
      await vi_waitFor(() => events.length === 1);
      expect(events.map((e) => e.host)).toEqual(["web.test"]);
    } finally {
      redirecting.closeAllConnections();
      await new Promise((r) => redirecting.close(r));
    }
  });

  it("dials IPv6 when an explicit rule names the address", async () => {
    const v6 = createServer((s) => s.end("six"));
    const port = await new Promise<number>((r) => v6.listen(0, "::1", () => r((v6.address() as AddressInfo).port)));
    try {
      await start([`[::1]:${port}`]);
      expect(await exchange(`CONNECT [::1]:${port} HTTP/1.1\r\n\r\n`)).toBe("HTTP/1.1 200 Connection Established\r\n\r\nsix");
      expect(await exchange(`CONNECT [0:0:0:0:0:0:0:1]:${port} HTTP/1.1\r\n\r\n`)).toMatch(/200 Connection Established/);
      expect(await exchange(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 403/);
    } finally {
      await new Promise((r) => v6.close(r));
    }
  });

  it("closes an idle tunnel and audits its bytes", async () => {
    await start([`echo.test:${echoPort}`], { idleTimeoutMs: 300 });
    const out = await exchange(`CONNECT echo.test:${echoPort} HTTP/1.1\r\n\r\nabc`);
    expect(out).toBe("HTTP/1.1 200 Connection Established\r\n\r\nabc");
    await vi_waitFor(() => events.length === 1);
    expect(events[0]).toMatchObject({ allowed: true, bytesUp: 3, bytesDown: 3, address: "127.0.0.18" });
    expect(events[0]!.reason).toContain("idle for 300 ms");
  });

  it.each([
    ["GET /relative HTTP/1.1\r\n\r\n", 400, "absolute http:// URI"],
    ["GET https://web.test/ HTTP/1.1\r\n\r\n", 400, "must use CONNECT"],
    ["CONNECT web.test HTTP/1.1\r\n\r\n", 400, "host:port"],
    ["GET http://web.test/ HTTP/1.1\r\n folded\r\n\r\n", 400, "malformed header"],
    ["GET http://web.test/ HTTP/2.0\r\n\r\n", 400, "malformed request line"],
  ])("answers %j with %i", async (head, status, text) => {
    await start([`web.test:80`]);
    const out = await exchange(head);
    expect(out.slice(0, 12)).toBe(`HTTP/1.1 ${status}`);
    expect(out).toContain(text);
    expect(events.at(-1)).toMatchObject({ allowed: false, protocol: "http" });
  });
});

async function vi_waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
