import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditLog } from "../../../src/audit/audit-log.js";
import { egressBudget } from "../../../src/audit/egress-budget.js";
import { egress, isRefusal, toolCall, type AuditEvent } from "../../../src/audit/events.js";
import { auditFileSet } from "../../../src/audit/files.js";
import { verifyAuditLog } from "../../../src/audit/verify.js";
import { boundedAudit } from "../../../src/gateway/services.js";
import { Logger } from "../../../src/log.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nucleus-egress-budget-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const refusedConnect = (server: string, host: string) => egress({ server, decision: "deny", protocol: "connect", host, port: 443, reason: "no rule matches" });

async function records(path: string): Promise<Array<{ type: string; fields: Record<string, unknown> }>> {
  const out = [];
  for (const f of await auditFileSet(path)) for (const l of (await readFile(f, "utf8")).trimEnd().split("\n")) out.push(JSON.parse(l));
  return out;
}

describe("egressBudget", () => {
  it("writes a server's burst, counts the rest, and sums them up in one egress.suppressed record; other servers keep their own budget", async () => {
    const path = join(dir, "audit.jsonl");
    const log = new AuditLog(path);
    let t = Date.parse("2026-11-25T20:00:00Z");
    const budget = egressBudget((e) => void log.append(e), { burst: 20, perSecond: 5, summaryMs: 60_000, now: () => t });
    for (let i = 0; i < 1000; i++) budget.audit(refusedConnect("evil", `h${i}.evil.example`));
    budget.audit(egress({ server: "evil", decision: "allow", protocol: "connect", host: "api.example.com", port: 443 }));
    budget.audit(egress({ server: "good", decision: "allow", protocol: "connect", host: "api.github.com", port: 443 }));
    budget.audit(toolCall({ server: "evil", tool: "flood", arguments: {}, outcome: "ok", durationMs: 1, includeArguments: false }));
    t += 2000; // refills 10 tokens
    for (let i = 0; i < 15; i++) budget.audit(refusedConnect("evil", `late${i}.evil.example`));
    budget.flush();
    await log.close();

    const recs = await records(path);
    const evil = recs.filter((r) => r.type === "egress" && r.fields.server === "evil");
    expect(evil).toHaveLength(30); // the burst, then what 2 s refilled
    expect(evil.slice(0, 20).map((r) => r.fields.host)).toEqual(Array.from({ length: 20 }, (_, i) => `h${i}.evil.example`));
    expect(recs.filter((r) => r.fields.server === "good").map((r) => r.fields.host)).toEqual(["api.github.com"]);
    expect(recs.filter((r) => r.type === "tool.call")).toHaveLength(1); // never budgeted
    const summaries = recs.filter((r) => r.type === "egress.suppressed");
    expect(summaries).toHaveLength(1);
    expect(summaries[0]!.fields).toEqual({
      server: "evil",
      count: 986,
      allow: 1,
      deny: 985,
      firstHost: "h20.evil.example",
      lastHost: "late14.evil.example",
      from: "2026-11-25T20:00:00.000Z",
      to: "2026-11-25T20:00:02.000Z",
    });
    // Every decision accounted for: written + counted = made.
    expect(evil.length + (summaries[0]!.fields.count as number)).toBe(1000 + 1 + 15);
    expect(isRefusal("egress.suppressed", summaries[0]!.fields)).toBe(true);
    expect((await verifyAuditLog(await auditFileSet(path))).ok).toBe(true);
  });

  it("writes the summary on its own after the interval, then counts afresh", async () => {
    const written: AuditEvent[] = [];
    const budget = egressBudget((e) => void written.push(e), { burst: 2, perSecond: 0, summaryMs: 30 });
    for (let i = 0; i < 7; i++) budget.audit(refusedConnect("evil", `h${i}`));
    expect(written.map((e) => e.type)).toEqual(["egress", "egress"]);
    await new Promise((r) => setTimeout(r, 120));
    expect(written.map((e) => e.type)).toEqual(["egress", "egress", "egress.suppressed"]);
    expect(written[2]!.fields).toMatchObject({ server: "evil", count: 5, deny: 5, allow: 0, firstHost: "h2", lastHost: "h6" });
    budget.audit(refusedConnect("evil", "again"));
    budget.flush();
    expect(written[3]!.fields).toMatchObject({ count: 1, firstHost: "again", lastHost: "again" });
    budget.flush(); // nothing pending: nothing written
    expect(written).toHaveLength(4);
  });

  it("keeps an earlier tool call in the rotated files through a flood of 15,000 refused connections (the review's experiment)", async () => {
    const path = join(dir, "audit.jsonl");
    const log = new AuditLog(path, { maxBytes: 64 * 1024, keep: 5 });
    const sink = boundedAudit(log, new Logger({ level: "silent" }));
    const budget = egressBudget(sink);
    budget.audit(toolCall({ server: "good", tool: "read_file", arguments: { path: "/docs/a" }, outcome: "ok", durationMs: 3, includeArguments: false }));
    for (let i = 0; i < 15_000; i++) budget.audit(refusedConnect("evil", `${"x".repeat(200)}.evil.example`));
    budget.flush();
    await log.close();
    const recs = await records(path);
    expect(recs.filter((r) => r.type === "tool.call").map((r) => r.fields.server)).toEqual(["good"]);
    const written = recs.filter((r) => r.type === "egress").length;
    const counted = recs.filter((r) => r.type === "egress.suppressed").reduce((n, r) => n + (r.fields.count as number), 0);
    expect(written).toBeGreaterThanOrEqual(200); // the burst (plus any refill while the loop ran)
    expect(written + counted).toBe(15_000);
    const v = await verifyAuditLog(await auditFileSet(path));
    expect(v).toMatchObject({ ok: true, startsAtGenesis: true });
  });
});
