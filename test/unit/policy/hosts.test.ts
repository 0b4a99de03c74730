import { describe, expect, it } from "vitest";
import { describeHostRule, parseHostRule } from "../../../src/policy/hosts.js";

type Want = { kind: string; host: string; ports: number[]; portExplicit: boolean; prefixLength?: number };

const accepted: Array<[string, Want]> = [
  ["api.github.com", { kind: "name", host: "api.github.com", ports: [443, 80], portExplicit: false }],
  ["API.GitHub.com.", { kind: "name", host: "api.github.com", ports: [443, 80], portExplicit: false }],
  ["db.internal:5432", { kind: "name", host: "db.internal", ports: [5432], portExplicit: true }],
  ["localhost:8080", { kind: "name", host: "localhost", ports: [8080], portExplicit: true }],
  ["*.example.com", { kind: "wildcard", host: "example.com", ports: [443, 80], portExplicit: false }],
  ["*.Example.COM.:8443", { kind: "wildcard", host: "example.com", ports: [8443], portExplicit: true }],
  ["bücher.example", { kind: "name", host: "xn--bcher-kva.example", ports: [443, 80], portExplicit: false }],
  ["*.bücher.example", { kind: "wildcard", host: "xn--bcher-kva.example", ports: [443, 80], portExplicit: false }],
  ["10.1.2.3", { kind: "ip", host: "10.1.2.3", ports: [443, 80], portExplicit: false }],
  ["127.0.0.1:5432", { kind: "ip", host: "127.0.0.1", ports: [5432], portExplicit: true }],
  ["[2001:db8::1]:443", { kind: "ip", host: "2001:db8::1", ports: [443], portExplicit: true }],
  ["[2001:DB8:0:0:0:0:0:1]", { kind: "ip", host: "2001:db8::1", ports: [443, 80], portExplicit: false }],
  ["2001:db8::1", { kind: "ip", host: "2001:db8::1", ports: [443, 80], portExplicit: false }],
  ["[::ffff:10.0.0.1]:80", { kind: "ip", host: "::ffff:a00:1", ports: [80], portExplicit: true }],
  ["10.0.0.0/8:5432", { kind: "cidr", host: "10.0.0.0", prefixLength: 8, ports: [5432], portExplicit: true }],
  ["192.168.1.0/24", { kind: "cidr", host: "192.168.1.0", prefixLength: 24, ports: [443, 80], portExplicit: false }],
  ["[fd00::/8]:443", { kind: "cidr", host: "fd00::", prefixLength: 8, ports: [443], portExplicit: true }],
  ["fd00:1::/32", { kind: "cidr", host: "fd00:1::", prefixLength: 32, ports: [443, 80], portExplicit: false }],
];

const rejected: Array<[string, RegExp]> = [
  ["*", /too broad/],
  ["*.com", /too broad.*two labels/],
  ["*.internal", /too broad/],
  ["*.co.uk", /too broad.*public suffix/],
  ["*.github.io", /public suffix/],
  ["*.*.example.com", /wildcard is allowed only/],
  ["api.*.com", /wildcard is allowed only/],
  ["a*.example.com", /wildcard is allowed only/],
  ["example.com:0", /port "0"/],
  ["example.com:65536", /port "65536"/],
  ["example.com:http", /port "http"/],
  ["example.com:", /port ""/],
  ["example.com:080", /port "080"/],
  ["2130706433", /decimal IP notation/],
  ["0177.0.0.1", /octal/],
  ["0x7f.0.0.1", /hexadecimal/],
  ["0x7f000001", /hexadecimal/],
  ["127.1", /short IP notation/],
  ["256.1.1.1", /not a valid IPv4/],
  ["example.123", /numeric label/],
  ["10.0.0.1/8", /host bits set; did you mean 10.0.0.0\/8/],
  ["0.0.0.0/0", /too broad/],
  ["10.0.0.0/33", /prefix length/],
  ["[::/0]", /too broad/],
  ["[2000::/3]:443", /too broad/],
  ["[fe80::1%eth0]", /zone/],
  ["[2001:db8::g]", /not a valid IPv6/],
  ["[10.0.0.1]", /not a valid IPv6/],
  ["https://example.com", /looks like a URL/],
  ["user@example.com", /looks like a URL/],
  ["exa mple.com", /whitespace/],
  ["-bad.example.com", /not a valid host name/],
  ["", /non-empty/],
  [":443", /names no host/],
];

describe("parseHostRule", () => {
  it.each(accepted)("accepts %s", (text, want) => {
    const res = parseHostRule(text);
    if (!res.ok) throw new Error(res.error);
    expect({ ...res.rule }).toEqual({ raw: text, ...want });
    expect(Object.isFrozen(res.rule)).toBe(true);
    expect(Object.isFrozen(res.rule.ports)).toBe(true);
  });

  it.each(rejected)("rejects %s", (text, why) => {
    const res = parseHostRule(text);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.error).toMatch(why);
  });
});

describe("describeHostRule", () => {
  const describe1 = (text: string) => {
    const res = parseHostRule(text);
    if (!res.ok) throw new Error(res.error);
    return describeHostRule(res.rule);
  };
  it("says what each kind admits", () => {
    expect(describe1("*.example.com")).toBe("subdomains of example.com (not example.com itself), ports 443, 80");
    expect(describe1("api.github.com")).toBe("api.github.com only (not its subdomains), ports 443, 80");
    expect(describe1("db.internal:5432")).toBe("db.internal only (not its subdomains), port 5432");
    expect(describe1("10.0.0.0/8:5432")).toBe("the 16777216 addresses of 10.0.0.0/8, port 5432");
    expect(describe1("[2001:db8::1]:443")).toBe("the address 2001:db8::1 only, port 443");
    expect(describe1("[fd00::/8]")).toBe("the 2^120 addresses of fd00::/8, ports 443, 80");
  });
});
