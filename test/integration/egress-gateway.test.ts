// allowed_hosts end to end through the gateway, in real bubblewrap sandboxes:
// a hostile MCP server behind the real egress agent and proxy tries every way
// out, next to a network = "none" server. Part 1 builds the gateway's services
// in-process (the only place the test-only private-range option and the
// dnsmasq resolver can be injected: the CLI has no switch for them); part 2
// drives the built `nucleus serve` CLI with nothing test-only at all.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttp, type Server as HttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { loadConfig } from "../../src/config/load.js";
import { startConfiguredGateway } from "../helpers/configured-gateway.js";
import { dnsServerResolver } from "../../src/egress/resolver.js";
import { Gateway } from "../../src/gateway/gateway.js";
import type { Services } from "../../src/gateway/services.js";
import { Logger } from "../../src/log.js";
import { whichSync } from "../../src/sandbox/which.js";
import { startDnsmasq, type LocalDns } from "../fixtures/egress/dnsmasq.js";
import { NUCLEUS, REPO, ensureBuilt, runCli, tempConfig } from "../helpers/cli.js";
import { TEST_USER, ensureTestUser } from "../helpers/test-user.js";
import { Listeners } from "../helpers/listeners.js";
import { pidsWhere, procFile } from "../helpers/process.js";

const FIXTURE = join(REPO, "test/fixtures/egress/server-that-tries-egress.mjs");
const node = process.execPath;
const missing = ["bwrap", "dnsmasq"].filter((b) => !whichSync(b));
const skip = missing.length > 0;
const needs = `(needs ${missing.join(", ") || "bwrap, dnsmasq"})`;

const CANARY = "egress-canary-secret-5b1e";
const listeners = new Listeners();
const listen = (s: Server | HttpServer, host: string, port = 0) => listeners.listen(s, host, port);
const canaryHits: string[] = [];
let ports: { web: number; db: number };
/** A port below 1024 where db.test also answers (root only: an ordinary user cannot listen there on the host). */
let lowDb: number | null = null;
let dns: LocalDns | null = null;
const root = process.getuid?.() === 0;

type Json = Record<string, any>;
async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<Json> {
  const res = await client.callTool({ name, arguments: args });
  return JSON.parse((res.content as Array<{ text: string }>)[0]!.text);
}

/** Audit records of one file (waits until `want` holds: the audit log appends asynchronously). */
async function auditRecords(path: string, want: (r: Json[]) => boolean): Promise<Json[]> {
  let recs: Json[] = [];
  for (let i = 0; i < 50; i++) {
    try {
      recs = readFileSync(path, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
    } catch {
      recs = [];
    }
    if (want(recs)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return recs;
}
const egressRecords = (recs: Json[]) => recs.filter((r) => r.type === "egress").map((r) => r.fields as Json);

function configText(audit: string, hostileHosts: string[], secret = false): string {
  const secrets = secret ? `secrets = ["EGRESS_TOKEN"]\n[secrets.EGRESS_TOKEN]\nfrom = "env"\nenv = "NUCLEUS_EGRESS_CANARY"\n` : "";
  return `
[gateway]
audit_log = ${JSON.stringify(audit)}

[servers.hostile]
command = [${JSON.stringify(node)}, ${JSON.stringify(FIXTURE)}]
allowed_hosts = ${JSON.stringify(hostileHosts)}
${secrets}
[servers.offline]
command = [${JSON.stringify(node)}, ${JSON.stringify(FIXTURE)}]
network = "none"
`;
}

beforeAll(async () => {
  if (skip) return;
  ensureBuilt(); // dist/agent is what the bubblewrap backend binds into allowlist sandboxes
  ports = {
    web: await listen(createHttp((req, res) => res.end(`hello web ${req.url}`)), "127.0.0.17"),
    db: await listen(createServer((s) => s.once("data", (d) => s.end(`db:${d.toString().trim()}\n`))), "127.0.0.19"),
  };
  if (root) {
    const db = () => createServer((s) => s.once("data", (d) => s.end(`db:${d.toString().trim()}\n`)));
    for (let p = 999; p > 900 && lowDb === null; p--) lowDb = await listen(db(), "127.0.0.19", p).catch(() => null);
  }
  // Canaries: a disallowed host on the web port, and the DNS-named one; anything reaching them is a failure.
  await listen(createHttp((req, res) => (canaryHits.push(`127.0.0.20${req.url}`), res.end("canary"))), "127.0.0.20", ports.web);
  dns = await startDnsmasq({ "web.test": "127.0.0.17", "db.test": "127.0.0.19", "forbidden.test": "127.0.0.20" });
}, 180_000);

afterAll(async () => {
  await dns?.stop();
  await listeners.closeAll();
});

describe.skipIf(skip)(`allowed_hosts through the gateway's services, in-process ${needs}`, () => {
  let tmp: string;
  let services: Services;
  let gateway: Gateway;
  let client: Client;
  const logs: string[] = [];
  let socketDirs: string[] = [];

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), "nucleus-egress-gw-"));
    const low = lowDb !== null ? [`db.test:${lowDb}`] : [];
    const cfg = tempConfig(configText(join(tmp, "audit.jsonl"), [`web.test:${ports.web}`, `db.test:${ports.db}`, "web.test", ...low], true));
    const config = await loadConfig(cfg.path);
    cfg.cleanup();
    const log = new Logger({ level: "debug", sink: { write: (l) => void logs.push(l) } });
    // SECURITY (test only): the loopback stand-ins 127.0.0.16/28 count as a private network, and names come from
    // the test's dnsmasq. Injected here, in-process; the configuration and the CLI cannot set either.
    let pf;
    ({ services, gateway, client, pf } = await startConfiguredGateway(config, {
      log,
      env: { NUCLEUS_EGRESS_CANARY: CANARY },
      egress: { resolver: dnsServerResolver([dns!.server]), insecureTestPrivateRanges: ["127.0.0.16/28"], socketBase: tmp },
    }));
    expect(pf.selections.get("hostile")!.backend.name).toBe("bubblewrap");
    await client.listTools();
    socketDirs = readdirSync(tmp).filter((d) => d.startsWith("nucleus-egress-"));
  }, 120_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await gateway?.close();
    await services?.close();
    if (tmp) {
      // The socket directory is gone once the services are closed.
      expect(readdirSync(tmp).filter((d) => d.startsWith("nucleus-egress-"))).toEqual([]);
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("reaches an allowed name through HTTP_PROXY and a pinned name:port over raw TCP", async () => {
    const web = await call(client, "hostile__http_get", { url: `http://web.test:${ports.web}/via-proxy` });
    expect(web.out).toMatch(/^HTTP\/1\.1 200[\s\S]*hello web \/via-proxy$/);
    // No proxy variable involved: db.test is in /etc/hosts on 127.0.1.N, where the agent relays it.
    const db = await call(client, "hostile__tcp", { host: "db.test", port: ports.db, send: "ping" });
    expect(db).toEqual({ err: null, out: "db:ping\n" });
    const look = await call(client, "hostile__look");
    expect(look.hosts).toMatch(/^127\.0\.1\.\d+\tdb\.test$/m);
    expect(look.proxyVars.HTTP_PROXY).toBe("http://127.0.0.1:3128");
    expect(look.agentConfigLeft).toBe(false);
    // The agent handed its listeners to the gateway's proxy (one relay); its IPC channel never reached the server.
    // Every pin listens, those below 1024 too (web.test's default ports 443 and 80, and the low db port).
    expect(logs.filter((l) => /egress: /.test(l) && !/egress proxy listening/.test(l)).join("\n")).toMatch(new RegExp(`egress: the proxy accepts in the sandbox itself.*pins=${lowDb !== null ? 5 : 4}`));
    expect(look.channelEnv).toBe(false);
    expect(look.socketFds).toEqual([]);
    expect(look.socket).toBe(true);
    expect(look.tokenSet).toBe(true);
    // SECURITY: the secret reached the server's environment, and no argv on this host (bwrap, agent, server).
    const argvs = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "latin1");
      } catch {
        return "";
      }
    });
    expect(argvs.some((a) => a.includes("/run/nucleus/agent/main.js"))).toBe(true);
    expect(argvs.filter((a) => a.includes(CANARY))).toEqual([]);
    expect(socketDirs).toHaveLength(1);
    expect(logs.filter((l) => /cannot pin|cannot listen/.test(l))).toEqual([]);
  });

  it.skipIf(!root)(`pins a port below 1024: a raw TCP client reaches db.test there${root ? "" : " (skipped: an ordinary user cannot listen below 1024 on the host for the target)"}`, async () => {
    expect(lowDb).not.toBeNull();
    const db = await call(client, "hostile__tcp", { host: "db.test", port: lowDb, send: "low" });
    expect(db).toEqual({ err: null, out: "db:low\n" });
    // The namespace admits listening from the lowest pin up (80, web.test's), no lower; the server cannot change it.
    const look = await call(client, "hostile__look");
    expect(look.portStart).toBe("80");
    expect(look.portStartRewrite).toMatch(/EROFS|EACCES|EPERM/);
    expect((await call(client, "offline__look")).portStart).toBe("1024");
    // web.test:80 (a default port of the rule "web.test") is pinned as well: the connection is accepted inside the
    // sandbox (not refused, as it was while nothing could listen there) and ends when the host refuses the proxy.
    const web80 = await call(client, "hostile__tcp", { host: "web.test", port: 80, send: "GET / HTTP/1.0\r\n\r\n" });
    expect(web80.err).not.toBe("ECONNREFUSED");
  });

  it("refuses a disallowed host, with an audit record and one warning naming the rule to add", async () => {
    for (let i = 0; i < 2; i++) {
      const r = await call(client, "hostile__http_get", { url: `http://forbidden.test:${ports.web}/leak` });
      expect(r.out).toMatch(/^HTTP\/1\.1 403 Forbidden/);
    }
    // Raw TCP to a name that is not pinned: it does not even resolve inside the sandbox.
    const raw = await call(client, "hostile__tcp", { host: "forbidden.test", port: ports.web, send: "x" });
    expect(raw).toMatchObject({ out: "", err: expect.stringMatching(/ENOTFOUND|EAI_AGAIN/) });
    expect(canaryHits).toEqual([]);
    const warnings = logs.filter((l) => l.includes(`to allow it, add "forbidden.test:${ports.web}" to servers.hostile.allowed_hosts`));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/WARN|warn/);
  });

  it("has no way around the proxy: direct connects and DNS fail", async () => {
    // The target listens on the host's loopback, which is not the sandbox's.
    expect((await call(client, "hostile__tcp", { host: "127.0.0.17", port: ports.web, send: "GET / HTTP/1.0\r\n\r\n" })).err).toBe("ECONNREFUSED");
    expect((await call(client, "hostile__tcp", { host: "192.0.2.1", port: 80 })).err).toBe("ENETUNREACH");
    // No resolver is reachable: a name that is not pinned does not resolve, and a direct query gets no answer.
    const d = await call(client, "hostile__dns", { name: "forbidden.test", server: dns!.server });
    expect(d.lookup.ok).toBe(false);
    expect(d.direct.ok).toBe(false);
    // A pinned name resolves only from /etc/hosts, to the agent's loopback relay, never to the real address.
    const pinned = await call(client, "hostile__dns", { name: "web.test", server: dns!.server });
    expect(pinned.lookup.value.map((a: { address: string }) => a.address)).toEqual([expect.stringMatching(/^127\.0\.1\.\d+$/)]);
    expect(pinned.direct.ok).toBe(false);
    expect(canaryHits).toEqual([]);
  });

  it("keeps the network = \"none\" server cut off: no proxy, no socket, no inet sockets", async () => {
    const look = await call(client, "offline__look");
    expect(look).toMatchObject({ socket: false, agentConfigLeft: false, proxyVars: { HTTP_PROXY: null } });
    expect(look.hosts).not.toMatch(/\.test/);
    const tcp = await call(client, "offline__tcp", { host: "127.0.0.19", port: ports.db, send: "ping" });
    expect(tcp.out).toBe("");
    expect(tcp.err).toMatch(/EAFNOSUPPORT|EPERM|EACCES/);
    const d = await call(client, "offline__dns", { name: "web.test", server: dns!.server });
    expect([d.lookup.ok, d.direct.ok]).toEqual([false, false]);
  });

  it("audits every decision of the hostile server (allowed with bytes, refused with the reason)", async () => {
    const path = join(tmp, "audit.jsonl");
    // (Records are written asynchronously: wait until all the decisions are there.)
    const ready = (r: Parameters<typeof egressRecords>[0]) => {
      const e = egressRecords(r);
      return e.filter((x) => x.decision === "allow").length >= 2 && e.filter((x) => x.decision === "deny" && x.host === "forbidden.test").length >= 2;
    };
    const recs = egressRecords(await auditRecords(path, ready));
    const allowed = recs.filter((e) => e.decision === "allow");
    expect(allowed.find((e) => e.host === "web.test")).toMatchObject({ server: "hostile", protocol: "http", port: ports.web, address: "127.0.0.17", rule: `web.test:${ports.web}` });
    expect(allowed.find((e) => e.host === "db.test")).toMatchObject({ protocol: "pin", address: "127.0.0.19", rule: `db.test:${ports.db}` });
    // (web.test:80 is allowed but nothing listens there on the host: no bytes come back.)
    const answered = allowed.filter((e) => e.port !== 80);
    expect(answered.map((e) => [e.host, e.bytesUp > 0, e.bytesDown > 0])).toEqual(answered.map((e) => [e.host, true, true]));
    const denied = recs.filter((e) => e.decision === "deny");
    expect(denied.filter((e) => e.host === "forbidden.test").map((e) => e.protocol)).toEqual(["http", "http"]);
    expect(denied.find((e) => e.host === "forbidden.test")).toMatchObject({ server: "hostile", address: null, rule: null, reason: expect.stringMatching(/no rule allows it/) });
    expect(readFileSync(path, "utf8")).not.toContain(CANARY);
    expect(logs.join("\n")).not.toContain(CANARY);
    // The offline server has no proxy, so nothing of it is in the egress records.
    expect(recs.every((e) => e.server === "hostile")).toBe(true);
  });
});

describe.skipIf(skip)(`nucleus serve (the built CLI) with an allowlist server and a network = "none" server ${needs}`, () => {
  let tmp: string;
  let cfgPath: string;
  let client: Client;
  let stderr = "";

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), "nucleus-egress-cli-"));
    // Nothing test-only: an exact IP rule is the one way to admit a loopback address. "web.test" (which the host
    // cannot resolve) is pinned on its default ports 443 and 80, below 1024.
    const cfg = tempConfig(configText(join(tmp, "audit.jsonl"), [`127.0.0.17:${ports.web}`, "web.test"]));
    cfgPath = cfg.path;
    const transport = new StdioClientTransport({ command: node, args: [NUCLEUS, "--log-level", "debug", "-c", cfgPath, "serve"], stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TMPDIR: tmp } });
    transport.stderr?.on("data", (d) => (stderr += d));
    client = new Client({ name: "egress-cli-test", version: "1" });
    await client.connect(transport);
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    // The gateway removes its egress socket directory (under TMPDIR) when it exits.
    let left: string[] = [];
    for (let i = 0; i < 100; i++) {
      left = tmp ? readdirSync(tmp).filter((d) => d.startsWith("nucleus-egress-")) : [];
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(left).toEqual([]);
    rmSync(join(cfgPath, ".."), { recursive: true, force: true });
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("admits the allowed address through the proxy and refuses everything else", async () => {
    const ok = await call(client, "hostile__http_get", { url: `http://127.0.0.17:${ports.web}/cli` });
    expect(ok.out).toMatch(/^HTTP\/1\.1 200[\s\S]*hello web \/cli$/);
    const refused = await call(client, "hostile__http_get", { url: `http://127.0.0.20:${ports.web}/leak` });
    expect(refused.out).toMatch(/^HTTP\/1\.1 403 Forbidden/);
    expect((await call(client, "hostile__tcp", { host: "127.0.0.17", port: ports.web, send: "GET / HTTP/1.0\r\n\r\n" })).err).toBe("ECONNREFUSED");
    expect((await call(client, "hostile__tcp", { host: "192.0.2.1", port: 80 })).err).toBe("ENETUNREACH");
    const d = await call(client, "hostile__dns", { name: "forbidden.test", server: dns!.server });
    expect([d.lookup.ok, d.direct.ok]).toEqual([false, false]);
    const off = await call(client, "offline__tcp", { host: "127.0.0.17", port: ports.web, send: "x" });
    expect(off.err).toMatch(/EAFNOSUPPORT|EPERM|EACCES/);
    expect((await call(client, "offline__http_get", { url: `http://127.0.0.17:${ports.web}/` })).err).toMatch(/no HTTP_PROXY/);
    expect(canaryHits).toEqual([]);
    expect(stderr).toMatch(/server "hostile": backend bubblewrap/);
    expect(stderr).toMatch(/egress: 127\.0\.0\.20 port \d+ is refused/);
    // web.test's pins (443 and 80, below 1024) listen inside the sandbox and were handed to the proxy. (Not
    // dialled here: the host's resolver would be asked for the name.)
    expect(stderr).toMatch(/egress: the proxy accepts in the sandbox itself.*pins=2/);
    expect(stderr).not.toMatch(/cannot pin|cannot listen/);
  });

  it("writes both decisions to the audit log", async () => {
    // (Records are written asynchronously: wait until both decisions are there.)
    const both = (r: Parameters<typeof egressRecords>[0]) => ["allow", "deny"].every((d) => egressRecords(r).some((e) => e.decision === d));
    const recs = egressRecords(await auditRecords(join(tmp, "audit.jsonl"), both));
    expect(recs.find((e) => e.decision === "allow")).toMatchObject({ server: "hostile", host: "127.0.0.17", port: ports.web, address: "127.0.0.17", rule: `127.0.0.17:${ports.web}` });
    expect(recs.find((e) => e.decision === "deny")).toMatchObject({ server: "hostile", host: "127.0.0.20", port: ports.web, address: null });
    const verify = await runCli(["audit", "verify", join(tmp, "audit.jsonl")]);
    expect(verify.code).toBe(0);
  });

  it("explain shows the effective egress rules, the backend auto picks here and the limit enforcement", async () => {
    const r = await runCli(["-c", cfgPath, "explain", "hostile"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`127.0.0.17:${ports.web}: the address 127.0.0.17 only, port ${ports.web}`);
    const host = r.stdout.slice(r.stdout.indexOf("  on this host"));
    expect(host).toMatch(/backend: +bubblewrap \(auto: .*bubblewrap available and enforces every rule\)/);
    expect(host).toContain("refuses:   nothing: every rule is enforced here");
    expect(host).toMatch(/memory +512 MiB \(default\): (enforced|NOT ENFORCED) \(/);
    expect(host).toContain("agent at http://127.0.0.1:3128");
    expect(host).toMatch(/pin: +web\.test:443 → the agent at 127\.0\.1\.\d+:443 /);
    expect(host).toMatch(/pin: +web\.test:80 → the agent at 127\.0\.1\.\d+:80 /);
    const off = await runCli(["-c", cfgPath, "explain", "offline", "--json"]);
    const json = JSON.parse(off.stdout);
    expect(json.network).toEqual({ mode: "none" });
    expect(json.host).toMatchObject({ backend: "bubblewrap", refusals: [], egress: null });
    expect(json.host.limits.map((l: { limit: string }) => l.limit)).toEqual(["memory", "pids", "cpus", "tmp"]);
  });
});

describe.skipIf(skip || !root)(`pins below 1024 under [gateway] run_as (bwrap and its helper run as an ordinary user) ${needs}${root ? "" : " (skipped: needs a root gateway)"}`, () => {
  let tmp: string;
  let services: Services;
  let gateway: Gateway;
  let client: Client;
  const logs: string[] = [];

  let uid = -1;

  beforeAll(async () => {
    ({ uid } = ensureTestUser());
    tmp = mkdtempSync(join(tmpdir(), "nucleus-egress-runas-"));
    chmodSync(tmp, 0o711); // the socket directory's parent, as /tmp is: the run_as user passes through it
    const cfg = tempConfig(`
[gateway]
run_as = "${TEST_USER}"

[servers.hostile]
command = [${JSON.stringify(node)}, ${JSON.stringify(FIXTURE)}]
allowed_hosts = ["db.test:${lowDb}"]
`);
    const config = await loadConfig(cfg.path);
    cfg.cleanup();
    const log = new Logger({ level: "debug", sink: { write: (l) => void logs.push(l) } });
    // SECURITY (test only): as in part 1, the loopback stand-ins and the dnsmasq resolver are injected in-process.
    ({ services, gateway, client } = await startConfiguredGateway(config, {
      log,
      egress: { resolver: dnsServerResolver([dns!.server]), insecureTestPrivateRanges: ["127.0.0.16/28"], socketBase: tmp },
    }));
  }, 120_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await gateway?.close();
    await services?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it(`reaches db.test on its low port from a sandbox running as ${TEST_USER}`, async () => {
    expect(lowDb).not.toBeNull();
    const tools = (await client.listTools()).tools.map((t) => t.name);
    if (!tools.includes("hostile__tcp")) throw new Error(`the server did not start: ${logs.slice(-30).join("\n")}`);
    const db = await call(client, "hostile__tcp", { host: "db.test", port: lowDb, send: "as-runas" });
    expect(db).toEqual({ err: null, out: "db:as-runas\n" });
    // The agent (and so bwrap's whole sandbox) runs as the run_as user on the host.
    const agents = pidsWhere((p) => procFile(p, "cmdline").includes("/run/nucleus/agent/main.js") && /^Uid:\t(\d+)/m.exec(procFile(p, "status"))?.[1] === String(uid));
    expect(agents.length).toBeGreaterThan(0);
    // The helper that lowered the start port ran as that user too, never as the gateway's root.
    expect(logs.join("\n")).toMatch(new RegExp(`admits listening from this port up \\(.*port=${lowDb}.*helperUid=${uid}\\b`));
    expect((await call(client, "hostile__look")).portStart).toBe(String(lowDb));
    expect(logs.filter((l) => /cannot pin|cannot listen/.test(l))).toEqual([]);
  });
});
