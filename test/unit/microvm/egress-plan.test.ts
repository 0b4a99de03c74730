import { describe, expect, it } from "vitest";
import { parseHostRule } from "../../../src/policy/hosts.js";
import { guestEgressPlan } from "../../../src/sandbox/microvm/egress-plan.js";
import { makeSpec } from "../../helpers/spec.js";

const rules = (...texts: string[]) =>
  texts.map((t) => {
    const r = parseHostRule(t);
    if (!r.ok) throw new Error(r.error);
    return r.rule;
  });

describe("guest egress plan", () => {
  it("gives no plan to a network = none server", () => {
    expect(guestEgressPlan(makeSpec({ name: "s", argv: ["/usr/bin/node"] }), { egressSocket: null })).toBeNull();
  });

  it("refuses an allowlist without a proxy socket (fail closed, exit 3)", () => {
    const spec = makeSpec({ name: "gh", argv: ["/usr/bin/node"], network: { mode: "allowlist", hosts: rules("api.github.com") } });
    expect(() => guestEgressPlan(spec, { egressSocket: null })).toThrow(expect.objectContaining({ code: "POLICY_REFUSED", exitCode: 3 }));
  });

  it("pins each exact name:port on its own loopback address with the proxy's preamble, and sets the proxy variables", () => {
    const spec = makeSpec({ name: "db", argv: ["/usr/bin/node"], network: { mode: "allowlist", hosts: rules("db.internal:5432", "*.example.com", "10.0.0.0/8:80") } });
    const g = guestEgressPlan(spec, { egressSocket: "/tmp/x.sock" })!;
    expect(g.plan.proxyPort).toBe(3128);
    expect(g.plan.pins).toEqual([{ address: "127.0.1.1", port: 5432, preamble: "NUCLEUS-PIN db.internal 5432\n" }]);
    expect(g.plan.hosts).toMatch(/^127\.0\.1\.1\tdb\.internal$/m);
    expect(g.plan.hosts).toMatch(/^127\.0\.0\.1\tlocalhost$/m);
    expect(g.env).toMatchObject({ HTTP_PROXY: "http://127.0.0.1:3128", https_proxy: "http://127.0.0.1:3128", ALL_PROXY: "http://127.0.0.1:3128", NO_PROXY: "localhost,127.0.0.1" });
  });
});
