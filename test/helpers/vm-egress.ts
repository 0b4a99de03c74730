// Test helper: egress from a microVM, shared by the QEMU and Firecracker tests.
// A hostile MCP server in a VM with no NIC reaches the host only through the
// guest agent's egress streams, which the host joins to a real egress proxy.
// The proxy resolves names with a fixed test resolver and treats the loopback
// stand-ins 127.0.0.16/28 as a private network (test only, in-process; the
// configuration cannot set either). One VM boot per backend.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttp, type Server as HttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { ServerSpec } from "../../src/config/spec.js";
import { startEgressProxy, type EgressEvent, type EgressProxy } from "../../src/egress/index.js";
import { Logger } from "../../src/log.js";
import { parseHostRule } from "../../src/policy/hosts.js";
import type { Sandbox } from "../../src/sandbox/backend.js";
import { buildImage } from "../../src/sandbox/microvm/image/build.js";
import { REPO } from "./cli.js";
import { Listeners } from "./listeners.js";
import { connectToSandbox } from "./mcp.js";
import { makeSpec } from "./spec.js";

export const EGRESS_FIXTURE = join(REPO, "test/fixtures/egress/server-that-tries-egress.mjs");
/** Larger than the streams' flow-control window (256 KiB) several times over. */
const BIG = "x".repeat(1536 * 1024);
const NAMES: Record<string, string> = { "web.test": "127.0.0.17", "db.test": "127.0.0.19", "forbidden.test": "127.0.0.20" };

export type Json = Record<string, any>;
/** Calls a tool of the egress fixture and parses its JSON answer. */
export async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<Json> {
  const res = await client.callTool({ name, arguments: args });
  return JSON.parse((res.content as Array<{ text: string }>)[0]!.text);
}

export async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !cond(); i++) await new Promise((r) => setTimeout(r, 100));
  expect(cond()).toBe(true);
}

/** Starts the hostile server in a VM: `launch` runs `spec` with the proxy's socket; `tmp` is private to this run. */
export type VmLaunch = (spec: ServerSpec, o: { tmp: string; log: Logger; egressSocket: string }) => Promise<Sandbox>;

/** The egress tests, in a `describe` of their own (skipped with `skip`, the reason in `title`). */
export function describeVmEgress(title: string, skip: boolean, launch: VmLaunch): void {
  describe.skipIf(skip)(title, () => {
    const listeners = new Listeners();
    const listen = (s: Server | HttpServer, host: string, port = 0) => listeners.listen(s, host, port);
    const canaryHits: string[] = [];
    const events: EgressEvent[] = [];
    let ports: { web: number; db: number; sink: number };
    let tmp: string;
    let proxy: EgressProxy;
    let sandbox: Sandbox;
    let client: Client;

    beforeAll(async () => {
      await buildImage();
      ports = {
        web: await listen(createHttp((req, res) => res.end(req.url === "/big" ? BIG : `hello web ${req.url}`)), "127.0.0.17"),
        db: await listen(createServer((s) => s.once("data", (d) => s.end(`db:${d.toString().trim()}\n`))), "127.0.0.19"),
        // Counts what a client sends until it half-closes, then answers with the count.
        sink: await listen(
          createServer({ allowHalfOpen: true }, (s) => {
            let n = 0;
            s.on("data", (d: Buffer) => (n += d.length));
            s.on("end", () => s.end(`got:${n}\n`));
          }),
          "127.0.0.19",
        ),
      };
      // A canary on a disallowed host: anything reaching it is a failure.
      await listen(createHttp((req, res) => (canaryHits.push(`127.0.0.20${req.url}`), res.end("canary"))), "127.0.0.20", ports.web);
      tmp = mkdtempSync(join(tmpdir(), "nucleus-vm-egress-"));
      const hosts = [`web.test:${ports.web}`, `db.test:${ports.db}`, `db.test:${ports.sink}`].map((h) => {
        const r = parseHostRule(h);
        if (!r.ok) throw new Error(r.error);
        return r.rule;
      });
      const log = new Logger({ level: "silent" });
      proxy = await startEgressProxy({
        server: "hostile",
        rules: hosts,
        socketPath: join(tmp, "egress.sock"),
        audit: (e) => void events.push(e),
        log,
        resolver: async (name) => {
          const a = NAMES[name];
          if (!a) throw new Error(`${name} does not resolve`);
          return [a];
        },
        // SECURITY (test only): the loopback stand-ins count as a private network.
        insecureTestPrivateRanges: ["127.0.0.16/28"],
      });
      const argv = [process.execPath, EGRESS_FIXTURE];
      const spec = makeSpec({
        name: "hostile",
        argv,
        launch: { argv, args: [], package: null, cwd: null, env: {}, codeDirs: [dirname(EGRESS_FIXTURE)] },
        network: { mode: "allowlist", hosts },
      });
      sandbox = await launch(spec, { tmp, log, egressSocket: proxy.socketPath });
      client = await connectToSandbox(sandbox);
    }, 600_000);

    afterAll(async () => {
      await client?.close().catch(() => undefined);
      await sandbox?.stop(2000);
      await proxy?.close();
      await listeners.closeAll();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it("reaches an allowed name through HTTP_PROXY and a pinned name:port over raw TCP", async () => {
      const look = await call(client, "look");
      expect(look.proxyVars.HTTP_PROXY).toBe("http://127.0.0.1:3128");
      expect(look.proxyVars.NO_PROXY).toBe("localhost,127.0.0.1");
      expect(look.hosts).toMatch(/^127\.0\.1\.\d+\tdb\.test$/m);
      const web = await call(client, "http_get", { url: `http://web.test:${ports.web}/via-proxy` });
      expect(web.out).toMatch(/^HTTP\/1\.1 200[\s\S]*hello web \/via-proxy$/);
      // No proxy variable involved: db.test is in the guest's /etc/hosts on 127.0.1.N, where the agent listens.
      const db = await call(client, "tcp", { host: "db.test", port: ports.db, send: "ping" });
      expect(db).toEqual({ err: null, out: "db:ping\n" });
      await waitFor(() => events.some((e) => e.allowed && e.protocol === "pin" && e.host === "db.test"));
      expect(events.some((e) => e.allowed && e.protocol === "http" && e.host === "web.test")).toBe(true);
    });

    it("carries more than the flow-control window each way (1.5 MiB down via the proxy, 1.5 MiB up via a pin)", async () => {
      const down = await call(client, "http_get", { url: `http://web.test:${ports.web}/big` });
      expect(down.err).toBeNull();
      expect(down.out.endsWith(BIG)).toBe(true);
      const up = await call(client, "tcp", { host: "db.test", port: ports.sink, send: BIG });
      expect(up).toEqual({ err: null, out: `got:${BIG.length}\n` });
    });

    it("refuses a disallowed host with 403 and an audit record", async () => {
      const r = await call(client, "http_get", { url: `http://forbidden.test:${ports.web}/leak` });
      expect(r.out).toMatch(/^HTTP\/1\.1 403 Forbidden/);
      await waitFor(() => events.some((e) => !e.allowed && e.host === "forbidden.test"));
      expect(canaryHits).toEqual([]);
    });

    it("has no way around the proxy: direct connects and DNS fail", async () => {
      // The guest has no NIC: the host's loopback is not the guest's, and nothing routes anywhere else.
      expect((await call(client, "tcp", { host: "127.0.0.17", port: ports.web, send: "GET / HTTP/1.0\r\n\r\n" })).err).toBe("ECONNREFUSED");
      expect((await call(client, "tcp", { host: "192.0.2.1", port: 80 })).err).toMatch(/ENETUNREACH|EHOSTUNREACH/);
      const d = await call(client, "dns", { name: "forbidden.test", server: "127.0.0.20" });
      expect(d.lookup.ok).toBe(false);
      expect(d.direct.ok).toBe(false);
      expect(canaryHits).toEqual([]);
    });
  });
}
