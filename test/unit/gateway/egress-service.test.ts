import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { AuditEvent } from "../../../src/audit/events.js";
import { createEgressService } from "../../../src/gateway/egress-service.js";
import { Logger } from "../../../src/log.js";
import { parseHostRule } from "../../../src/policy/hosts.js";
import { makeSpec } from "../../helpers/spec.js";

const rule = (r: string) => {
  const p = parseHostRule(r);
  if (!p.ok) throw new Error(p.error);
  return p.rule;
};
const spec = makeSpec({ name: "api", argv: ["/usr/bin/node"], network: { mode: "allowlist", hosts: [rule("api.example.com")] } });

let base: string | null = null;
afterEach(() => {
  if (base) rmSync(base, { recursive: true, force: true });
  base = null;
});

/** Send one request head to a proxy socket and return what it answers. */
function ask(path: string, head: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(path, () => s.write(head));
    let out = "";
    s.on("data", (d) => (out += d));
    s.on("error", () => undefined);
    s.on("close", () => resolve(out));
  });
}

describe("the gateway's egress service", () => {
  it("gives each launch its own 0600 socket in one 0700 directory, audits decisions, warns once, and removes it all at close", async () => {
    base = mkdtempSync(join(tmpdir(), "nucleus-egress-svc-"));
    const audit: AuditEvent[] = [];
    const logs: string[] = [];
    const svc = createEgressService({ log: new Logger({ level: "debug", sink: { write: (l) => void logs.push(l) } }), audit: (e) => audit.push(e), socketBase: base });
    const a = await svc.start(spec);
    const b = await svc.start(spec);
    expect(a.socketPath).not.toBe(b.socketPath);
    expect(dirname(a.socketPath)).toBe(dirname(b.socketPath));
    expect(statSync(dirname(a.socketPath)).mode & 0o777).toBe(0o700);
    expect(statSync(a.socketPath).mode & 0o777).toBe(0o600);

    for (let i = 0; i < 2; i++) expect(await ask(a.socketPath, "CONNECT evil.example.net:443 HTTP/1.1\r\nHost: api.example.com\r\n\r\n")).toMatch(/^HTTP\/1\.1 403/);
    expect(audit).toHaveLength(2);
    expect(audit[0]).toMatchObject({ type: "egress", fields: { server: "api", decision: "deny", protocol: "connect", host: "evil.example.net", port: 443, address: null, rule: null } });
    expect(logs.filter((l) => l.includes('to allow it, add "evil.example.net" to servers.api.allowed_hosts'))).toHaveLength(1);

    await a.close();
    expect(existsSync(a.socketPath)).toBe(false);
    expect(existsSync(b.socketPath)).toBe(true);
    await svc.close();
    expect(readdirSync(base)).toEqual([]);
    await expect(svc.start(spec)).rejects.toThrow(/shutting down/);
  });

  it("refuses a network = \"none\" server and creates nothing for it", async () => {
    base = mkdtempSync(join(tmpdir(), "nucleus-egress-svc-"));
    const svc = createEgressService({ log: new Logger({ level: "silent" }), audit: undefined, socketBase: base });
    await expect(svc.start(makeSpec({ name: "off", argv: ["/usr/bin/node"] }))).rejects.toThrow(/network = "none"/);
    expect(readdirSync(base)).toEqual([]);
    await svc.close();
    expect(readdirSync(base)).toEqual([]);
  });

  it("budgets each server's egress records over its launches and sums up the rest at close", async () => {
    base = mkdtempSync(join(tmpdir(), "nucleus-egress-svc-"));
    const audit: AuditEvent[] = [];
    const svc = createEgressService({ log: new Logger({ level: "silent" }), audit: (e) => audit.push(e), socketBase: base, auditBudget: { burst: 3, perSecond: 0 } });
    const other = makeSpec({ name: "other", argv: ["/usr/bin/node"], network: { mode: "allowlist", hosts: [rule("api.example.com")] } });
    const a = await svc.start(spec);
    const again = await svc.start(spec); // a second launch of the same server shares its budget
    const o = await svc.start(other);
    const refuse = (path: string, host: string) => ask(path, `CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    for (let i = 0; i < 4; i++) await refuse(a.socketPath, `a${i}.evil.example`);
    for (let i = 0; i < 4; i++) await refuse(again.socketPath, `b${i}.evil.example`);
    await refuse(o.socketPath, "x.example");
    expect(audit.map((e) => `${e.fields.server} ${e.fields.host}`)).toEqual(["api a0.evil.example", "api a1.evil.example", "api a2.evil.example", "other x.example"]);
    await svc.close();
    expect(audit.slice(4)).toEqual([
      { type: "egress.suppressed", fields: expect.objectContaining({ server: "api", count: 5, deny: 5, allow: 0, firstHost: "a3.evil.example", lastHost: "b3.evil.example" }) },
    ]);
  });
});
