// Egress end to end: a hostile client runs under the real agent inside a real
// bubblewrap network namespace (loopback only, the proxy socket bound in) and
// tries every way out. Targets are HTTP, HTTPS and raw TCP servers on
// 127.0.0.16/28 outside the sandbox, named by a real dnsmasq. Those loopback
// targets stand in for a private network through the proxy's test-only
// `insecureTestPrivateRanges` option (never reachable from configuration).
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { createServer as createHttp, type Server as HttpServer } from "node:http";
import { createServer as createHttps } from "node:https";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAgentPlan, SANDBOX_AGENT_PATHS } from "../../src/agent/plan.js";
import { dnsServerResolver } from "../../src/egress/resolver.js";
import { startEgressProxy } from "../../src/egress/proxy.js";
import type { EgressEvent, EgressProxy } from "../../src/egress/types.js";
import { whichSync } from "../../src/sandbox/which.js";
import { buildAgentInto } from "../fixtures/egress/build-agent.js";
import { startDnsmasq, type LocalDns } from "../fixtures/egress/dnsmasq.js";
import { makeSpec } from "../helpers/spec.js";
import { Listeners } from "../helpers/listeners.js";
import { rules as parseRules } from "../unit/policy/egress-rule-helper.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const missing = ["bwrap", "dnsmasq", "openssl", "curl"].filter((b) => !whichSync(b));
const CAP = 64;

let tmp: string;
let dns: LocalDns | null = null;
let proxy: EgressProxy | null = null;
const servers = new Listeners();
const events: EgressEvent[] = [];
const canaryHits: string[] = [];
let results: Record<string, any>;
let ports: { web: number; secure: number; db: number; canary: number };

const listen = (s: Server | HttpServer, host: string) => servers.listen(s, host);

describe.skipIf(missing.length > 0)(`egress through a real sandbox (needs ${missing.join(", ") || "bwrap, dnsmasq, openssl, curl"})`, () => {
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), "nucleus-egress-it-"));
    // Self-signed certificate for secure.test.
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=secure.test", "-addext", "subjectAltName=DNS:secure.test", "-keyout", join(tmp, "key.pem"), "-out", join(tmp, "cert.pem")], { stdio: "ignore" });
    const web = await listen(createHttp((req, res) => res.end(`hello web ${req.url}`)), "127.0.0.17");
    const secure = await listen(createHttps({ key: readFileSync(join(tmp, "key.pem")), cert: readFileSync(join(tmp, "cert.pem")) }, (req, res) => res.end(`hello secure ${req.url}`)), "127.0.0.18");
    const db = await listen(createServer((s) => s.once("data", (d) => s.end(`db:${d.toString().trim()}\n`))), "127.0.0.19");
    // Canaries: anything reaching them is a failure.
    const canaryHandler = (where: string) => (s: { destroy(): void }) => {
      canaryHits.push(where);
      s.destroy();
    };
    const canary = await listen(createServer(canaryHandler("127.0.0.1")), "127.0.0.1");
    await servers.listen(createServer(canaryHandler("forbidden")), "127.0.0.20", web);
    ports = { web, secure, db, canary };

    dns = await startDnsmasq({
      "web.test": "127.0.0.17",
      "secure.test": "127.0.0.18",
      "db.test": "127.0.0.19",
      "forbidden.test": "127.0.0.20",
      "rebind.test": "127.0.0.1",
      "metadata.test": "169.254.169.254",
      "wild.test": "127.0.0.17",
    });
    const rules = parseRules(`web.test:${web}`, `secure.test:${secure}`, `db.test:${db}`, `rebind.test:${canary}`, `metadata.test:${web}`, `*.wild.test:${web}`, `127.0.0.17:${web}`);
    proxy = await startEgressProxy({
      server: "hostile",
      rules,
      socketPath: join(tmp, "egress.sock"),
      resolver: dnsServerResolver([dns.server]),
      audit: (e) => events.push(e),
      limits: { headerTimeoutMs: 2000, maxConnections: CAP },
      insecureTestPrivateRanges: ["127.0.0.16/28"],
    });

    const agentDir = join(tmp, "agent");
    buildAgentInto(join(root, "src/agent"), agentDir);
    const spec = makeSpec({ name: "hostile", argv: [], network: { mode: "allowlist", hosts: rules } });
    // The binds below are what the bubblewrap backend does (see docs/egress.md).
    const plan = buildAgentPlan(spec);
    const S = SANDBOX_AGENT_PATHS;
    writeFileSync(join(tmp, "hosts"), plan.hostsFile);
    const clientArgs = JSON.stringify({ ports, caFile: "/run/fixture-tls/cert.pem", slowMs: 200, flood: 1000, cap: CAP, dnsServer: dns.server, socketPath: "/run/nucleus/egress.sock" });
    const argv = [
      "--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session",
      "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run",
      "--ro-bind", proxy.socketPath, S.socket,
      "--ro-bind", join(tmp, "hosts"), S.hosts,
      "--ro-bind", agentDir, S.agentDir,
      "--ro-bind", join(root, "package.json"), S.packageJson,
      "--ro-bind", join(root, "test/fixtures/egress"), "/run/fixture",
      "--ro-bind", join(tmp, "cert.pem"), "/run/fixture-tls/cert.pem",
      ...plan.argvPrefix, process.execPath, "/run/fixture/hostile-client.mjs", clientArgs,
    ];
    const child = spawn("bwrap", argv, { env: { PATH: "/usr/bin:/bin", ...plan.env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const t0 = Date.now();
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    if (process.env.NUCLEUS_EGRESS_TIMINGS) console.error(`sandbox ran ${Date.now() - t0} ms`);
    if (code !== 0) throw new Error(`sandboxed client exited with ${code}: ${err}`);
    results = JSON.parse(out);
    if (process.env.NUCLEUS_EGRESS_TIMINGS) console.error(results.ms);
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
    await dns?.stop();
    await servers.closeAll();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("reaches allowed hosts: HTTP and HTTPS through the proxy variables, raw TCP through a pinned name, SOCKS5", () => {
    expect(results.httpAllowed.out).toMatch(/^HTTP\/1\.1 200[\s\S]*hello web \/hello$/);
    expect(results.httpsAllowed).toMatchObject({ ok: true });
    expect(results.httpsAllowed.out).toContain("hello secure /");
    expect(results.pinnedTcp.out).toBe("db:ping\n");
    expect(results.socksAllowed.reply).toEqual([5, 0]);
    expect(results.socksAllowed.out).toContain("db:socks");
    expect(results.curlHttp).toEqual({ code: 0, out: "hello web /curl" });
    expect(results.curlHttps).toEqual({ code: 0, out: "hello secure /curl" });
    expect(results.hexAllowedIp.out).toContain("hello web /hex");
  });

  it("refuses disallowed hosts, other ports, rebinding names, odd IP notations, the wildcard's apex and a mismatched TLS name", () => {
    const refusedBy403 = ["disallowedHost", "otherPort", "rebindLoopback", "rebindMetadata", "hostHeaderTrick", "ipv6Loopback", "mappedLoopback", "decimalLoopback", "octalLoopback", "wildcardApex", "wildcardSub"];
    for (const k of refusedBy403) expect([k, results[k].out.slice(0, 22)]).toEqual([k, "HTTP/1.1 403 Forbidden"]);
    expect(results.rebindLoopback.out).toContain("127.0.0.1 (loopback)");
    expect(results.rebindMetadata.out).toContain("169.254.169.254 (cloud metadata)");
    expect(results.wildcardSub.out).toContain("private");
    expect(results.socksRefused.reply).toEqual([5, 2]);
    expect(results.pinForged.out).toBe("");
    expect(results.sniMismatch.ok).toBe(false);
    expect(canaryHits).toEqual([]);
  });

  it("has no way around the proxy: no route, no reachable resolver", () => {
    expect(results.directLoopbackTarget.err).toBe("ECONNREFUSED");
    expect(results.directOutside.err).toBe("ENETUNREACH");
    expect(results.dnsLookup.ok).toBe(false);
    // Only the pinned names resolve, from /etc/hosts, to the agent's loopback relays.
    expect(results.pinnedLookup.a.address).toMatch(/^127\.0\.1\.\d+$/);
    expect(results.dnsDirect.ok).toBe(false);
  });

  it("cuts slowloris heads, caps a flood of 1,000 connections and keeps serving", () => {
    expect(results.slowloris.closed).toBe(true);
    expect(results.slowloris.afterMs).toBeLessThan(15_000);
    expect(results.flood.closedByProxy).toBeGreaterThanOrEqual(1000 - CAP);
    expect(results.afterFlood.out).toContain("hello web /after");
    expect(proxy!.stats().overCapacity).toBeGreaterThanOrEqual(1000 - CAP);
  });

  it("audits every refusal with the rule and reason", () => {
    const refused = events.filter((e) => !e.allowed);
    const hosts = new Set(refused.map((e) => `${e.host}:${e.port}`));
    const { web, secure, canary } = ports;
    for (const h of [`forbidden.test:${web}`, `web.test:${secure}`, `rebind.test:${canary}`, `metadata.test:${web}`, `::1:${canary}`, `127.0.0.1:${canary}`, `wild.test:${web}`, `a.wild.test:${web}`]) {
      expect(hosts, h).toContain(h);
    }
    expect(refused.find((e) => e.host === "rebind.test")).toMatchObject({ rule: `rebind.test:${canary}`, address: null, resolved: ["127.0.0.1"], protocol: "connect" });
    expect(refused.find((e) => e.host === "metadata.test")).toMatchObject({ address: null, resolved: ["169.254.169.254"] });
    expect(refused.find((e) => e.host === "forbidden.test" && e.protocol === "pin")).toBeDefined();
    expect(refused.find((e) => e.host === "forbidden.test" && e.protocol === "socks5")).toBeDefined();
    expect(refused.find((e) => e.host === "secure.test")).toMatchObject({ protocol: "connect", address: "127.0.0.18", reason: "TLS server name forbidden.test does not match CONNECT host secure.test" });
    expect(refused.some((e) => /did not arrive within 2000 ms/.test(e.reason))).toBe(true);
    expect(refused.filter((e) => /concurrent connections/.test(e.reason)).length).toBeGreaterThanOrEqual(1000 - CAP);
    const allowed = events.filter((e) => e.allowed && e.host === "db.test");
    expect(allowed.map((e) => e.protocol).sort()).toEqual(["pin", "socks5"]);
    expect(allowed.every((e) => e.address === "127.0.0.19" && e.bytesDown > 0 && e.bytesUp > 0)).toBe(true);
  });
});
