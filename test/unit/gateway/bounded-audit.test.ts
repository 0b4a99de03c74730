import { describe, expect, it } from "vitest";
import type { AuditEvent } from "../../../src/audit/events.js";
import { boundedAudit } from "../../../src/gateway/services.js";
import { Logger } from "../../../src/log.js";

describe("boundedAudit", () => {
  it("counts records past the bound and writes one audit.dropped record once the queue drains", async () => {
    const written: AuditEvent[] = [];
    const waiting: Array<() => void> = [];
    const slowLog = {
      append: (e: AuditEvent) =>
        new Promise<number>((resolve) => {
          waiting.push(() => {
            written.push(e);
            resolve(written.length);
          });
        }),
    };
    const warnings: string[] = [];
    const audit = boundedAudit(slowLog, new Logger({ level: "warn", sink: { write: (l) => void warnings.push(l) } }), 5);
    for (let i = 0; i < 50; i++) audit({ type: "egress", fields: { i } });
    expect(waiting).toHaveLength(5); // only the bound is queued
    expect(warnings).toHaveLength(1);
    while (waiting.length) waiting.shift()!();
    await new Promise((r) => setImmediate(r));
    audit({ type: "egress", fields: { i: "after" } });
    while (waiting.length) waiting.shift()!();
    await new Promise((r) => setImmediate(r));
    expect(written.map((e) => e.type)).toEqual(["egress", "egress", "egress", "egress", "egress", "audit.dropped", "egress"]);
    expect(written[5]!.fields).toEqual({ count: 45 });
  });

  it("warns about records behind at most once per 10 s, with what was counted since", async () => {
    const waiting: Array<() => void> = [];
    const written: AuditEvent[] = [];
    const slowLog = { append: (e: AuditEvent) => new Promise<number>((resolve) => void waiting.push(() => resolve(written.push(e)))) };
    const warnings: string[] = [];
    let t = 1_000_000;
    const audit = boundedAudit(slowLog, new Logger({ level: "warn", sink: { write: (l) => void warnings.push(l) } }), 3, () => t);
    const drain = async () => {
      while (waiting.length) waiting.shift()!();
      await new Promise((r) => setImmediate(r));
    };
    // 50 episodes of "behind" within 10 s: one warning.
    for (let episode = 0; episode < 50; episode++) {
      for (let i = 0; i < 10; i++) audit({ type: "egress", fields: { episode, i } });
      await drain();
      t += 100;
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/3 records behind.*\(1 counted since the last such warning\)/);
    t += 10_000;
    for (let i = 0; i < 10; i++) audit({ type: "egress", fields: { i } });
    expect(warnings).toHaveLength(2);
    // Dropped: 7 in the first episode, 8 in each later one (its audit.dropped record takes a slot); all but the
    // one warned about are counted, plus the first one dropped now.
    expect(warnings[1]).toMatch(/\(399 counted since the last such warning\)/);
    await drain();
    audit({ type: "egress", fields: { last: true } });
    await drain();
    const dropped = written.filter((e) => e.type === "audit.dropped").reduce((n, e) => n + (e.fields.count as number), 0);
    expect(dropped).toBe(7 + 49 * 8 + 8); // all of them on the record as well
  });
});
