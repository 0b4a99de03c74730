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
});
