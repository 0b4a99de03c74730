import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditLog } from "../../../src/audit/audit-log.js";
import { policyRefused, serverStart, toolCall } from "../../../src/audit/events.js";
import { auditFileSet } from "../../../src/audit/files.js";
import { verifyAuditLog } from "../../../src/audit/verify.js";
import { SecretRedactor } from "../../../src/secrets/redactor.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nucleus-audit-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const call = (i: number) => toolCall({ server: "fs", tool: "read_file", arguments: { path: `/docs/${i}.txt` }, outcome: "ok", durationMs: i, includeArguments: false });

describe("AuditLog", () => {
  it("creates a 0600 file in a 0700 directory and chains concurrent appends in call order", async () => {
    const path = join(dir, "state", "audit.jsonl");
    const log = new AuditLog(path);
    const seqs = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(call(i))));
    await log.close();
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 2)); // seq 1 is the audit.file record
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "state"))).mode & 0o777).toBe(0o700);
    const lines = (await readFile(path, "utf8")).trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(lines[0].type).toBe("audit.file");
    expect(lines.slice(1).map((l) => l.fields.durationMs)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(lines[1].fields).not.toHaveProperty("arguments");
    expect(lines[1].fields.argsDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const v = await verifyAuditLog([path]);
    expect(v).toMatchObject({ ok: true, records: 51, startsAtGenesis: true, firstSeq: 1, lastSeq: 51 });
    expect(await readdir(join(dir, "state"))).toEqual(["audit.jsonl"]); // no lock file left behind
  });

  it("continues the chain when reopened, and across two writers sharing the file", async () => {
    const path = join(dir, "audit.jsonl");
    const a = new AuditLog(path);
    await a.append(call(1));
    const b = new AuditLog(path);
    await Promise.all([b.append(call(2)), a.append(call(3)), b.append(call(4)), a.append(call(5))]);
    await Promise.all([a.close(), b.close()]);
    const c = new AuditLog(path);
    await c.append(call(6));
    await c.close();
    const v = await verifyAuditLog([path]);
    expect(v).toMatchObject({ ok: true, records: 7, lastSeq: 7 });
  });

  it("rotates by size, keeps N files, and the chain verifies across them", async () => {
    const path = join(dir, "audit.jsonl");
    const log = new AuditLog(path, { maxBytes: 2000, keep: 3 });
    for (let i = 0; i < 40; i++) await log.append(call(i));
    await log.close();
    const files = await auditFileSet(path);
    expect(files).toEqual([`${path}.3`, `${path}.2`, `${path}.1`, path]);
    for (const f of files) expect((await stat(f)).size).toBeLessThanOrEqual(2000);
    const v = await verifyAuditLog(files);
    expect(v.ok).toBe(true);
    expect(v.startsAtGenesis).toBe(false); // older files were rotated away (keep = 3)
    expect(v.lastSeq).toBeGreaterThan(40);
    const first = JSON.parse((await readFile(path, "utf8")).split("\n")[0]!);
    expect(first).toMatchObject({ type: "audit.file", fields: { reason: "rotated", chain: v.chain } });
  });

  it("passes every record through the redactor before writing it", async () => {
    const path = join(dir, "audit.jsonl");
    const r = new SecretRedactor();
    r.add("TOKEN", "sk-live-123456789");
    const log = new AuditLog(path, { redact: (f) => r.redactJson(f) });
    await log.append(toolCall({ server: "gh", tool: "x", arguments: { auth: "sk-live-123456789" }, outcome: "error", durationMs: 1, includeArguments: true }));
    await log.append(policyRefused({ server: "gh", what: "tool sk-live-123456789", rule: "servers.gh.tools.deny" }));
    await log.close();
    const text = await readFile(path, "utf8");
    expect(text).not.toContain("sk-live-123456789");
    expect(text).toContain('"auth":"[REDACTED]"');
    expect((await verifyAuditLog([path])).ok).toBe(true);
  });

  it("refuses to extend a log whose last line is damaged", async () => {
    const path = join(dir, "audit.jsonl");
    const log = new AuditLog(path);
    await log.append(serverStart({ server: "a", backend: "bubblewrap", policyDigest: "sha256:00" }));
    await log.close();
    const text = await readFile(path, "utf8");
    await writeFile(path, text.slice(0, -10));
    const again = new AuditLog(path);
    await expect(again.append(call(1))).rejects.toThrow(/last line is incomplete.*will not extend a broken chain/);
    await again.close();
  });

  it("heals a crash between rotating the file away and writing the new one", async () => {
    const path = join(dir, "audit.jsonl");
    const log = new AuditLog(path, { maxBytes: 1500, keep: 5 });
    for (let i = 0; i < 12; i++) await log.append(call(i));
    await log.close();
    // What rotate() does before the new file's first write.
    const files = await auditFileSet(path);
    for (let i = files.length - 1; i >= 1; i--) await rename(`${path}.${i}`, `${path}.${i + 1}`);
    await rename(path, `${path}.1`);
    const again = new AuditLog(path, { maxBytes: 1500, keep: 5 });
    await again.append(call(99));
    await again.close();
    const first = JSON.parse((await readFile(path, "utf8")).split("\n")[0]!);
    expect(first.fields.reason).toBe("continued");
    expect((await verifyAuditLog(await auditFileSet(path))).ok).toBe(true);
  });

  it("removes a lock left by a process that is gone, and waits for a live one", async () => {
    const path = join(dir, "audit.jsonl");
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid!;
    await writeFile(`${path}.lock`, String(dead));
    const log = new AuditLog(path, { lockTimeoutMs: 300 });
    await log.append(call(1));
    await writeFile(`${path}.lock`, String(process.ppid)); // alive, not us
    await expect(log.append(call(2))).rejects.toThrow(/has been held by another process for more than 300 ms/);
    await log.close();
  });
});
