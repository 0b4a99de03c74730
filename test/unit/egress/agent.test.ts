// The in-sandbox agent: its plan (argv, env, /etc/hosts), its config checks,
// and the agent process itself (run here without a sandbox: it only relays).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAgentConfig, proxyEnv } from "../../../src/agent/config.js";
import { buildAgentPlan } from "../../../src/agent/plan.js";
import { formatPinLine, parsePinLine } from "../../../src/agent/protocol.js";
import { egressSocketPath } from "../../../src/egress/socket-path.js";
import { buildAgentInto } from "../../fixtures/egress/build-agent.js";
import { makeSpec } from "../../helpers/spec.js";
import { rules } from "../policy/egress-rule-helper.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

describe("buildAgentPlan", () => {
  const spec = makeSpec({
    name: "db",
    argv: ["/usr/bin/node", "server.js"],
    network: { mode: "allowlist", hosts: rules("db.internal:5432", "api.github.com", "*.example.com", "10.0.0.0/8:6379", "db.internal:5433") },
  });
  const plan = buildAgentPlan(spec, { agentEntry: "/run/nucleus-agent/main.js", socketPathInSandbox: "/run/nucleus/egress.sock", nodePath: "/usr/bin/node" });

  it("wraps the server argv and pins every exact name on its own loopback address", () => {
    expect(plan.argvPrefix).toEqual(["/usr/bin/node", "/run/nucleus-agent/main.js", "--"]);
    expect(plan.pins).toEqual([
      { host: "db.internal", port: 5432, address: "127.0.1.1" },
      { host: "api.github.com", port: 443, address: "127.0.1.2" },
      { host: "api.github.com", port: 80, address: "127.0.1.2" },
      { host: "db.internal", port: 5433, address: "127.0.1.1" },
    ]);
    expect(plan.hostsFile).toBe("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tdb.internal\n127.0.1.2\tapi.github.com\n");
    const cfg = parseAgentConfig(plan.env.NUCLEUS_AGENT_CONFIG);
    expect(cfg).toMatchObject({ version: 1, socket: "/run/nucleus/egress.sock", proxy: { host: "127.0.0.1", port: 3128 } });
    expect(Object.keys(plan.env)).toEqual(["NUCLEUS_AGENT_CONFIG"]);
  });

  it("refuses a server with network = none", () => {
    expect(() => buildAgentPlan(makeSpec({ name: "x", argv: ["/bin/true"] }), { agentEntry: "/a", socketPathInSandbox: "/s" })).toThrow(/network = "none"/);
  });

  it("gives every proxy variable and keeps localhost direct", () => {
    const env = proxyEnv(parseAgentConfig(plan.env.NUCLEUS_AGENT_CONFIG));
    for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"]) expect(env[k]).toBe("http://127.0.0.1:3128");
    expect(env.NO_PROXY).toBe("localhost,127.0.0.1");
  });

  it.each([
    ["not json", /not valid JSON/],
    ['{"version":2}', /version must be 1/],
    ['{"version":1,"socket":"rel","proxy":{"host":"127.0.0.1","port":1},"pins":[]}', /absolute path/],
    ['{"version":1,"socket":"/s","proxy":{"host":"0.0.0.0","port":1},"pins":[]}', /loopback/],
    ['{"version":1,"socket":"/s","proxy":{"host":"127.0.0.1","port":1},"pins":[{"host":"a b","port":1,"address":"127.0.1.1"}]}', /invalid entry/],
  ])("rejects the config %s", (text, msg) => expect(() => parseAgentConfig(text)).toThrow(msg));

  it("round-trips the pin line and rejects junk", () => {
    expect(parsePinLine(formatPinLine("db.internal", 5432))).toEqual({ host: "db.internal", port: 5432 });
    expect(() => parsePinLine(Buffer.from("NUCLEUS-PIN a b c\n"))).toThrow(/malformed/);
  });

  it("keeps socket paths short enough for a unix socket", () => {
    expect(egressSocketPath("/tmp/nucleus-egress-abc", 3, "my server")).toBe("/tmp/nucleus-egress-abc/3-my_server.sock");
    expect(egressSocketPath("/tmp/d", 0, "x".repeat(300)).length).toBeLessThanOrEqual(100);
  });
});

describe("the agent process", () => {
  let dir: string;
  let entry: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "nucleus-agent-unit-"));
    entry = buildAgentInto(join(root, "src/agent"), join(dir, "agent"));
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const spec = makeSpec({ name: "a", argv: [], network: { mode: "allowlist", hosts: [] } });
    const plan = buildAgentPlan(spec, { agentEntry: entry, socketPathInSandbox: join(dir, "none.sock"), proxyPort: port });
    env = { PATH: process.env.PATH ?? "/usr/bin:/bin", KEEP: "yes", ...plan.env };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (script: string, onOut?: (out: string, pid: number) => void) =>
    new Promise<{ code: number | null; signal: string | null; out: string; err: string }>((res) => {
      const c = spawn(process.execPath, [entry, "--", process.execPath, "-e", script], { env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      c.stdout.on("data", (d) => {
        out += d;
        onOut?.(out, c.pid!);
      });
      c.stderr.on("data", (d) => (err += d));
      c.once("exit", (code, signal) => res({ code, signal, out, err }));
    });

  it("leaves stdout to the server, passes the proxy env without its own config, and exits with the server's code", async () => {
    const r = await run("process.stdout.write(JSON.stringify([process.env.HTTPS_PROXY, process.env.KEEP, process.env.NUCLEUS_AGENT_CONFIG ?? null])); process.exit(7)");
    expect(r.code).toBe(7);
    const [proxy, keep, cfg] = JSON.parse(r.out);
    expect(proxy).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect([keep, cfg]).toEqual(["yes", null]);
  });

  it("forwards SIGTERM to the server", async () => {
    const script = "process.on('SIGTERM', () => { process.stdout.write('got TERM'); process.exit(42); }); process.stdout.write('ready'); setInterval(() => {}, 1000);";
    // The agent is signalled once the server has said it is ready.
    const r = await run(script, (out, pid) => out === "ready" && process.kill(pid, "SIGTERM"));
    expect(r.out).toBe("readygot TERM");
    expect(r.code).toBe(42);
  });

  it("fails with a sentence when started without its configuration", async () => {
    const c = spawn(process.execPath, [entry, "--", "/bin/true"], { env: { PATH: "/usr/bin:/bin" }, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    let out = "";
    c.stderr.on("data", (d) => (err += d));
    c.stdout.on("data", (d) => (out += d));
    const code = await new Promise((r) => c.once("exit", r));
    expect(code).toBe(1);
    expect(out).toBe("");
    expect(err).toMatch(/nucleus-agent: the agent needs its configuration in NUCLEUS_AGENT_CONFIG/);
  });
});
