// Secrets end to end on real processes: sources → resolveServerSecrets → a
// backend's LaunchContext → a real MCP server → redaction of its result, the
// log and the audit log, on the unsandboxed backend (the mechanics alone).
// test/integration/secrets-gateway.test.ts does it through the gateway with
// servers in real bubblewrap sandboxes.
import { readFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SecretSpec } from "../../src/config/spec.js";
import { AuditLog } from "../../src/audit/audit-log.js";
import { toolCall } from "../../src/audit/events.js";
import { verifyAuditLog } from "../../src/audit/verify.js";
import { Logger } from "../../src/log.js";
import type { Sandbox } from "../../src/sandbox/backend.js";
import { UnsandboxedBackend } from "../../src/sandbox/unsandboxed.js";
import { SecretRedactor } from "../../src/secrets/redactor.js";
import { resolveServerSecrets } from "../../src/secrets/resolve.js";
import { connectToSandbox } from "../helpers/mcp.js";
import { makeSpec } from "../helpers/spec.js";

const everything = createRequire(import.meta.url).resolve("@modelcontextprotocol/server-everything/dist/index.js");
const A_VALUE = "a-token-7Hq2Lw9Zp4Xc";
const B_VALUE = "b-token-Mv3Rt8Yk1Nd6";

let dir: string;
const sandboxes: Sandbox[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nucleus-secrets-it-"));
});
afterEach(async () => {
  delete process.env.NUCLEUS_TEST_GATEWAY_ONLY;
  await Promise.all(sandboxes.splice(0).map((s) => s.stop(2000)));
  await rm(dir, { recursive: true, force: true });
});

function secret(name: string, over: Partial<SecretSpec>): SecretSpec {
  return { name, from: "env", env: null, path: null, insecurePermissions: false, command: null, timeoutMs: 5000, attributes: null, ...over };
}

describe("secrets delivered to one server only, and redacted everywhere", () => {
  it("gives A its command secret and B its file secret, and masks both in results, logs and audit", async () => {
    const script = join(dir, "print-a");
    await writeFile(script, `#!/bin/sh\necho "${A_VALUE}"\n`, { mode: 0o700 });
    const bFile = join(dir, "b-token");
    await writeFile(bFile, `${B_VALUE}\n`, { mode: 0o600 });
    const all = { A_TOKEN: secret("A_TOKEN", { from: "command", command: [script] }), B_TOKEN: secret("B_TOKEN", { from: "file", path: bFile }) };
    const a = makeSpec({ name: "a", argv: [process.execPath, everything], insecureUnsandboxed: true, secrets: [{ name: "A_TOKEN", target: "TOKEN", as: "env" }] });
    const b = makeSpec({ name: "b", argv: [process.execPath, everything], insecureUnsandboxed: true, secrets: [{ name: "B_TOKEN", target: "TOKEN", as: "env" }] });

    const redactor = new SecretRedactor();
    const lines: string[] = [];
    const log = new Logger({ level: "debug", format: "json", sink: { write: (l) => void lines.push(l) } });
    log.setRedactor(redactor.fn);
    process.env.NUCLEUS_TEST_GATEWAY_ONLY = "gateway-env-not-for-servers";
    const env = process.env;
    const backend = new UnsandboxedBackend();
    const envOf = async (spec: typeof a): Promise<{ raw: string; redacted: string; pid: string }> => {
      const secrets = await resolveServerSecrets(spec, all, env, { redactor });
      const sandbox = await backend.launch(spec, { secrets, log, egressSocket: null });
      sandboxes.push(sandbox);
      const client = await connectToSandbox(sandbox);
      const result = await client.callTool({ name: "get-env", arguments: {} });
      // (The client stays open: closing it ends the server, whose /proc entry is checked below.)
      void client;
      return { raw: JSON.stringify(result), redacted: JSON.stringify(redactor.redactJson(result)), pid: sandbox.details.pid! };
    };
    const ra = await envOf(a);
    const rb = await envOf(b);

    // Delivery: each server has its own value under TOKEN, not the other's, nor the gateway's environment.
    expect(ra.raw).toContain(A_VALUE);
    expect(ra.raw).not.toContain(B_VALUE);
    expect(rb.raw).toContain(B_VALUE);
    expect(rb.raw).not.toContain(A_VALUE);
    expect(ra.raw + rb.raw).not.toContain("gateway-env-not-for-servers");
    // A server that returns its own token gets it redacted.
    expect(ra.redacted).not.toContain(A_VALUE);
    expect(rb.redacted).not.toContain(B_VALUE);
    expect(ra.redacted).toContain("[REDACTED]");
    // Not on the ps-visible argv of the server processes.
    for (const pid of [ra.pid, rb.pid]) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
      expect(cmdline).not.toContain(A_VALUE);
      expect(cmdline).not.toContain(B_VALUE);
    }
    // The log: a relayed stderr line holding both values comes out masked.
    log.child({ server: "a" }).warn(`server stderr: auth=${A_VALUE} other=${encodeURIComponent(B_VALUE)}`);
    expect(lines.join("")).not.toMatch(/a-token|b-token/);
    // The audit log, even with audit_arguments on.
    const auditPath = join(dir, "audit.jsonl");
    const audit = new AuditLog(auditPath, { redact: (f) => redactor.redactJson(f) });
    await audit.append(toolCall({ server: "a", tool: "echo", arguments: { message: A_VALUE, b64: Buffer.from(B_VALUE).toString("base64") }, outcome: "ok", durationMs: 2, includeArguments: true }));
    await audit.close();
    const auditText = await readFile(auditPath, "utf8");
    expect(auditText).not.toContain(A_VALUE);
    expect(auditText).not.toContain(Buffer.from(B_VALUE).toString("base64"));
    expect((await verifyAuditLog([auditPath])).ok).toBe(true);
  });

  it("stops only the server whose secret cannot be read, naming the secret and its source", async () => {
    const loose = join(dir, "loose");
    await writeFile(loose, `${B_VALUE}\n`, { mode: 0o644 });
    const all = { LOOSE: secret("LOOSE", { from: "file", path: loose }) };
    const spec = makeSpec({ name: "c", argv: [process.execPath, everything], insecureUnsandboxed: true, secrets: [{ name: "LOOSE", target: "TOKEN", as: "env" }] });
    const err = (await resolveServerSecrets(spec, all, {}).catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(`server "c" cannot start: secret "LOOSE" (from file ${loose}) is refused: the file is readable or writable by other users (mode 644)`);
    expect(String(err)).not.toContain(B_VALUE);
  });
});
