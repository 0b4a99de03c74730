// Secrets through the real gateway, with two servers in real bubblewrap
// sandboxes: each gets its own value and never the other's; neither value
// appears in any process's argv, in the log, in the audit log (even with
// audit_arguments on) or in a result the client sees (unless the server opts
// out with redact_results = false).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { verifyAuditLog } from "../../src/audit/verify.js";
import { loadConfig } from "../../src/config/load.js";
import { startConfiguredGateway } from "../helpers/configured-gateway.js";
import { Gateway } from "../../src/gateway/gateway.js";
import type { Services } from "../../src/gateway/services.js";
import { Logger } from "../../src/log.js";
import { whichSync } from "../../src/sandbox/which.js";
import { EVERYTHING, TINY } from "../helpers/gateway.js";
import { everyCmdline } from "../helpers/process.js";

const A_VALUE = `a-secret-${process.pid}-Q7wLz2`;
const B_VALUE = `b-secret-${process.pid}-M4kTr9`;
const noBwrap = !whichSync("bwrap");


describe.skipIf(noBwrap)("secrets through the gateway, in bubblewrap sandboxes (needs bwrap)", () => {
  let dir: string;
  let services: Services;
  let gateway: Gateway;
  let client: Client;
  const logs: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "nucleus-secrets-gw-"));
    const script = join(dir, "print-a");
    writeFileSync(script, `#!/bin/sh\necho "${A_VALUE}"\n`, { mode: 0o700 });
    writeFileSync(join(dir, "b-token"), `${B_VALUE}\n`, { mode: 0o600 });
    const cfg = join(dir, "nucleus.toml");
    writeFileSync(
      cfg,
      `[gateway]
backend = "bubblewrap"
audit_log = "./audit.jsonl"
audit_arguments = true

[servers.a]
command = [${JSON.stringify(process.execPath)}, ${JSON.stringify(EVERYTHING)}]
vm_profile = "locked"
secrets = ["A_TOKEN"]
redact_results = false      # lets this test see what A received

[servers.b]
command = [${JSON.stringify(process.execPath)}, ${JSON.stringify(EVERYTHING)}]
vm_profile = "locked"
secrets = [{ name = "B_TOKEN", target = "TOKEN" }]

[servers.c]
command = [${JSON.stringify(process.execPath)}, ${JSON.stringify(TINY)}, "normal", "c"]
vm_profile = "locked"
secrets = [{ name = "B_TOKEN", target = "TOKEN" }]

[secrets.A_TOKEN]
from = "command"
command = ["./print-a"]

[secrets.B_TOKEN]
from = "file"
path = "./b-token"
`,
    );
    const config = await loadConfig(cfg);
    const log = new Logger({ level: "debug", sink: { write: (l) => void logs.push(l) } });
    ({ services, gateway, client } = await startConfiguredGateway(config, { log }));
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await gateway?.close();
    await services?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("delivers each server its own value, and only its own", async () => {
    const a = JSON.stringify((await client.callTool({ name: "a__get-env", arguments: {} })).content);
    expect(a).toContain(A_VALUE); // A opted out of redaction: it really received its value
    expect(a).not.toContain(B_VALUE);
    const b = JSON.stringify((await client.callTool({ name: "b__get-env", arguments: {} })).content);
    expect(b).toContain('\\"TOKEN\\": \\"[REDACTED]\\"'); // B received a value, masked on its way to the client
    expect(b).not.toContain(B_VALUE);
    expect(b).not.toContain(A_VALUE);
  });

  it("keeps both values off every process's argv", () => {
    const all = everyCmdline();
    expect(all).not.toContain(A_VALUE);
    expect(all).not.toContain(B_VALUE);
  });

  it("masks a value a server echoes back, and keeps both out of the log and the audit log", async () => {
    const echoed = JSON.stringify((await client.callTool({ name: "b__echo", arguments: { message: `leak ${B_VALUE}` } })).content);
    expect(echoed).not.toContain(B_VALUE);
    expect(echoed).toContain("[REDACTED]");
    await services.close(); // flush the audit log
    const auditPath = join(dir, "audit.jsonl");
    const audit = readFileSync(auditPath, "utf8");
    expect(audit).toContain('"type":"tool.call"');
    expect(audit).not.toContain(A_VALUE);
    expect(audit).not.toContain(B_VALUE);
    expect((await verifyAuditLog([auditPath])).ok).toBe(true);
    const log = logs.join("");
    expect(log).toContain('server "a" ready');
    expect(log).not.toContain(A_VALUE);
    expect(log).not.toContain(B_VALUE);
  });

  it("masks a value in a server's error message and data, and in its tool descriptions", async () => {
    const tools = JSON.stringify((await client.listTools()).tools.filter((t) => t.name.startsWith("c__")));
    expect(tools).toContain("I hold [REDACTED]");
    expect(tools).not.toContain(B_VALUE);
    const err = (await client.callTool({ name: "c__fail", arguments: {} }).catch((e: unknown) => e)) as { code: number; message: string; data: unknown };
    // The server's own -32000 error is passed on as its error, not mistaken for a crash.
    expect(err.code).toBe(-32000);
    expect(err.message).toContain("failed with [REDACTED]");
    expect(JSON.stringify(err.data)).toContain("[REDACTED]");
    expect(err.message + JSON.stringify(err.data)).not.toContain(B_VALUE);
    expect(err.message).not.toMatch(/stopped while handling/);
  });
});
