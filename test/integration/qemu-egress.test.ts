// allowed_hosts in a QEMU microVM (TCG here): the egress tests shared with
// Firecracker (test/helpers/vm-egress.ts) in one VM boot, then a second boot
// that runs the same path through the gateway's services and audit log.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttp, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { loadConfig } from "../../src/config/load.js";
import { startConfiguredGateway } from "../helpers/configured-gateway.js";
import { Gateway } from "../../src/gateway/gateway.js";
import type { Services } from "../../src/gateway/services.js";
import { Logger } from "../../src/log.js";
import { buildImage } from "../../src/sandbox/microvm/image/build.js";
import { QemuBackend } from "../../src/sandbox/microvm/qemu/backend.js";
import { whichSync } from "../../src/sandbox/which.js";
import { call, describeVmEgress, EGRESS_FIXTURE as FIXTURE, type Json } from "../helpers/vm-egress.js";

const node = process.execPath;
const noQemu = !whichSync("qemu-system-x86_64") || !whichSync("bwrap") || !whichSync("apt-get");

describeVmEgress("egress from a QEMU microVM (needs qemu-system-x86_64, bwrap and apt-get)", noQemu, (spec, o) =>
  new QemuBackend().launch(spec, { secrets: new Map(), log: o.log, egressSocket: o.egressSocket }),
);

// The same path through the gateway's own wiring (createServices → makeLauncher): the runtime starts
// the proxy, hands its socket to the QEMU backend and audits every decision to the audit log file.
describe.skipIf(noQemu)("egress from a QEMU microVM through the gateway's services (needs qemu-system-x86_64, bwrap and apt-get)", () => {
  const listeners: HttpServer[] = [];
  let webPort: number;
  let tmp: string;
  let services: Services;
  let gateway: Gateway;
  let client: Client;

  beforeAll(async () => {
    await buildImage();
    const web = createHttp((req, res) => res.end(`hello gateway ${req.url}`));
    listeners.push(web);
    await new Promise<void>((r) => web.listen(0, "127.0.0.18", r));
    webPort = (web.address() as AddressInfo).port;
    tmp = mkdtempSync(join(tmpdir(), "nucleus-qemu-egress-gw-"));
    const cfgPath = join(tmp, "nucleus.toml");
    writeFileSync(
      cfgPath,
      `[gateway]\naudit_log = ${JSON.stringify(join(tmp, "audit.jsonl"))}\n\n[servers.vm]\ncommand = [${JSON.stringify(node)}, ${JSON.stringify(FIXTURE)}]\nbackend = "qemu"\nallowed_hosts = ["gw.test:${webPort}"]\n`,
    );
    const config = await loadConfig(cfgPath);
    const log = new Logger({ level: "silent" });
    // SECURITY (test only): a fixed resolver and loopback stand-ins for a private network, injected in-process.
    let pf;
    ({ services, gateway, client, pf } = await startConfiguredGateway(config, {
      log,
      env: {},
      egress: { resolver: async (n) => (n === "gw.test" ? ["127.0.0.18"] : Promise.reject(new Error("no such name"))), insecureTestPrivateRanges: ["127.0.0.16/28"], socketBase: tmp },
    }));
    expect(pf.selections.get("vm")!.backend.name).toBe("qemu");
    await client.listTools();
  }, 600_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await gateway?.close();
    await services?.close();
    for (const s of listeners) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("reaches the allowed name, refuses another, and writes both decisions to the audit log", async () => {
    const ok = await call(client, "vm__http_get", { url: `http://gw.test:${webPort}/from-vm` });
    expect(ok.out).toMatch(/^HTTP\/1\.1 200[\s\S]*hello gateway \/from-vm$/);
    const no = await call(client, "vm__http_get", { url: `http://elsewhere.test:${webPort}/leak` });
    expect(no.out).toMatch(/^HTTP\/1\.1 403 Forbidden/);
    const path = join(tmp, "audit.jsonl");
    let recs: Json[] = [];
    for (let i = 0; i < 50; i++) {
      recs = existsSync(path) ? readFileSync(path, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
      if (recs.filter((r) => r.type === "egress").length >= 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const egress = recs.filter((r) => r.type === "egress").map((r) => r.fields as Json);
    expect(egress.find((e) => e.decision === "allow")).toMatchObject({ server: "vm", host: "gw.test", address: "127.0.0.18", protocol: "http" });
    expect(egress.find((e) => e.decision === "deny")).toMatchObject({ server: "vm", host: "elsewhere.test", address: null });
    expect(recs.find((r) => r.type === "server.start")?.fields).toMatchObject({ server: "vm", backend: "qemu" });
  });
});
