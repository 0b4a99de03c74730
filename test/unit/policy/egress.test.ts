import { describe, expect, it } from "vitest";
import { classify, normalizeHost, parseIp } from "../../../src/policy/addresses.js";
import { decide, describeEgress, nameToResolve, suggestRule } from "../../../src/policy/egress.js";
import { rules } from "./egress-rule-helper.js";

describe("normalizeHost", () => {
  it.each([
    ["API.GitHub.COM", "name", "api.github.com"],
    ["api.github.com.", "name", "api.github.com"],
    ["bücher.example", "name", "xn--bcher-kva.example"],
    ["XN--BCHER-KVA.example", "name", "xn--bcher-kva.example"],
    ["2130706433", "ip", "127.0.0.1"],
    ["0177.0.0.1", "ip", "127.0.0.1"],
    ["0x7f.1", "ip", "127.0.0.1"],
    ["0x7f.0.0.1.", "ip", "127.0.0.1"],
    ["127.1", "ip", "127.0.0.1"],
    ["0xA9.0xFE.0xA9.0xFE", "ip", "169.254.169.254"],
    ["１２７.０.０.１", "ip", "127.0.0.1"],
    ["[::1]", "ip", "::1"],
    ["::FFFF:127.0.0.1", "ip", "127.0.0.1"],
    ["[::ffff:a9fe:a9fe]", "ip", "169.254.169.254"],
    ["64:ff9b::10.0.0.1", "ip", "10.0.0.1"],
    ["FD00:EC2:0::254", "ip", "fd00:ec2::254"],
    ["2001:DB8:0:0:1:0:0:1", "ip", "2001:db8::1:0:0:1"],
  ])("%s is the %s %s", (input, kind, value) => {
    const t = normalizeHost(input);
    expect(t).toEqual(kind === "ip" ? { kind, address: value } : { kind, name: value });
  });

  it.each(["", "1.2.3.256", "08.0.0.1", "fe80::1%eth0", "a..b", "-bad.com", "bad-.com", "sp ace.com", "x".repeat(64) + ".com", "evil.com/x", "a@b.com", "1.2.3.4.5"])(
    "%j is refused as invalid",
    (input) => expect(normalizeHost(input)).toBeNull(),
  );
});

describe("classify", () => {
  it.each([
    ["8.8.8.8", "public"],
    ["2606:4700::1111", "public"],
    ["10.0.0.5", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.1", "public"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "private"],
    ["fd12:3456::1", "private"],
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["169.254.169.254", "metadata"],
    ["fd00:ec2::254", "metadata"],
    ["100.100.100.200", "metadata"],
    ["169.254.1.1", "link-local"],
    ["fe80::1", "link-local"],
    ["224.0.0.1", "multicast"],
    ["ff02::1", "multicast"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"],
    ["255.255.255.255", "reserved"],
    ["2002:7f00:1::", "reserved"],
  ])("%s is %s", (addr, cls) => expect(classify(parseIp(addr)!).cls).toBe(cls));

  it("treats the host's own addresses (given as data) as own", () => {
    expect(classify(parseIp("192.168.7.9")!, { ownAddresses: ["192.168.7.9", "fe80::5"] }).cls).toBe("own");
    expect(classify(parseIp("192.168.7.10")!, { ownAddresses: ["192.168.7.9"] }).cls).toBe("private");
  });
});

const R = rules(
  "api.github.com",
  "db.internal:5432",
  "*.example.com",
  "10.1.2.3:6379",
  "10.9.0.0/16:8080",
  "0.0.0.0/0:9999",
  "169.254.169.254:80",
  "[2001:db8::5]:22",
  "192.168.7.9:7000",
);
const own = { ownAddresses: ["192.168.7.9"] };

describe("decide", () => {
  it.each([
    // host, port, resolved, allowed, rule
    ["api.github.com", 443, ["140.82.112.5"], true, "api.github.com"],
    ["API.github.com.", 80, ["140.82.112.5"], true, "api.github.com"],
    ["api.github.com", 8443, ["140.82.112.5"], false, null],
    ["github.com", 443, ["140.82.112.4"], false, null],
    ["evilapi.github.com", 443, ["1.2.3.4"], false, null],
    // rebinding: an allowed name pointing at special addresses
    ["api.github.com", 443, ["127.0.0.1"], false, "api.github.com"],
    ["api.github.com", 443, ["169.254.169.254"], false, "api.github.com"],
    ["api.github.com", 443, ["::ffff:169.254.169.254"], false, "api.github.com"],
    ["api.github.com", 443, ["fd00:ec2::254"], false, "api.github.com"],
    ["api.github.com", 443, ["0.0.0.0"], false, "api.github.com"],
    ["api.github.com", 443, ["224.0.0.1"], false, "api.github.com"],
    ["api.github.com", 443, ["192.168.7.9"], false, "api.github.com"],
    ["api.github.com", 443, [], false, "api.github.com"],
    // exact name may land on private; wildcard may not
    ["db.internal", 5432, ["10.0.0.5"], true, "db.internal:5432"],
    ["db.internal", 443, ["10.0.0.5"], false, null],
    ["db.internal", 5432, ["127.0.0.1"], false, "db.internal:5432"],
    ["a.example.com", 443, ["93.184.216.34"], true, "*.example.com"],
    ["a.b.example.com", 80, ["93.184.216.34"], true, "*.example.com"],
    ["a.example.com", 443, ["10.0.0.5"], false, "*.example.com"],
    ["a.example.com", 443, ["fd00::5"], false, "*.example.com"],
    ["example.com", 443, ["93.184.216.34"], false, null],
    ["badexample.com", 443, ["93.184.216.34"], false, null],
    // IP literals: only IP/CIDR rules, never name rules
    ["10.1.2.3", 6379, [], true, "10.1.2.3:6379"],
    ["10.1.2.3", 6380, [], false, null],
    ["10.9.3.4", 8080, [], true, "10.9.0.0/16:8080"],
    ["0x0a.0x09.3.4", 8080, [], true, "10.9.0.0/16:8080"],
    ["8.8.8.8", 9999, [], true, "0.0.0.0/0:9999"],
    ["10.0.0.1", 9999, [], false, null],
    ["127.0.0.1", 9999, [], false, null],
    ["2130706433", 9999, [], false, null],
    ["169.254.169.254", 9999, [], false, null],
    ["169.254.169.254", 80, [], true, "169.254.169.254:80"],
    ["0251.0376.0251.0376", 80, [], true, "169.254.169.254:80"],
    ["[2001:db8::5]", 22, [], true, "[2001:db8::5]:22"],
    ["2001:db8:0::5", 22, [], true, "[2001:db8::5]:22"],
    ["192.168.7.9", 7000, [], true, "192.168.7.9:7000"],
    ["140.82.112.5", 443, [], false, null],
    // IP/CIDR rules never admit names (names matching no name rule are not even resolved)
    ["svc.corp", 8080, ["10.9.1.1"], false, null],
    ["svc.corp", 9999, ["10.9.1.1"], false, null],
    // invalid input
    ["", 443, [], false, null],
    ["api.github.com", 0, ["140.82.112.5"], false, null],
    ["api.github.com", 70000, ["140.82.112.5"], false, null],
  ] as const)("%s:%i resolving to %j → allowed %s by %s", (host, port, resolved, allowed, ruleRaw) => {
    const d = decide(R, { host, port }, resolved, own);
    expect(d.allowed).toBe(allowed);
    expect(d.rule).toBe(ruleRaw);
    expect(d.reason.length).toBeGreaterThan(5);
    if (allowed) expect(d.addresses).toContain(d.address);
    else expect(d.address).toBeNull();
  });

  it("dials only the checked addresses of a name with mixed answers", () => {
    const d = decide(R, { host: "api.github.com", port: 443 }, ["127.0.0.1", "140.82.112.5", "169.254.169.254", "140.82.112.6"]);
    expect(d.allowed).toBe(true);
    expect(d.addresses).toEqual(["140.82.112.5", "140.82.112.6"]);
    expect(d.address).toBe("140.82.112.5");
  });

  it("resolves only names that some rule matches on that port", () => {
    expect(nameToResolve(R, { host: "A.Example.com.", port: 443 })).toBe("a.example.com");
    expect(nameToResolve(R, { host: "db.internal", port: 5432 })).toBe("db.internal");
    expect(nameToResolve(R, { host: "db.internal", port: 443 })).toBeNull();
    expect(nameToResolve(R, { host: "secret-data.attacker.example", port: 443 })).toBeNull();
    expect(nameToResolve(R, { host: "10.1.2.3", port: 6379 })).toBeNull();
  });

  it("keeps control characters from a client out of the reason", () => {
    const d = decide(R, { host: "evil\r\ninjected\u001b[31m", port: 443 }, []);
    expect(d.allowed).toBe(false);
    expect(d.reason).not.toMatch(/[\r\n\u001b]/);
  });

  it("denies everything with no rules", () => {
    expect(decide([], { host: "api.github.com", port: 443 }, ["140.82.112.5"]).allowed).toBe(false);
    expect(decide([], { host: "1.1.1.1", port: 443 }, []).allowed).toBe(false);
  });

  it("lets a test-only range stand in for a private network, and nothing else", () => {
    const t = { insecureTestPrivateRanges: ["127.0.0.16/28"] };
    const r = rules("svc.test:5000", "*.test:5000");
    expect(decide(r, { host: "svc.test", port: 5000 }, ["127.0.0.17"], t).allowed).toBe(true);
    expect(decide(r, { host: "x.svc.test", port: 5000 }, ["127.0.0.17"], t).allowed).toBe(false);
    expect(decide(r, { host: "svc.test", port: 5000 }, ["127.0.0.1"], t).allowed).toBe(false);
    expect(decide(r, { host: "svc.test", port: 5000 }, ["127.0.0.17"]).allowed).toBe(false);
  });
});

describe("suggestRule and describeEgress", () => {
  it("suggests the rule to add, but never one for a special address", () => {
    expect(suggestRule("api.example.org", 443, ["93.184.216.34"])).toBe("api.example.org");
    expect(suggestRule("db.internal", 5432, ["10.0.0.5"])).toBe("db.internal:5432");
    expect(suggestRule("2001:4860::8888", 853, [])).toBe("[2001:4860::8888]:853");
    expect(suggestRule("api.example.org", 443, ["169.254.169.254"])).toBeNull();
    expect(suggestRule("127.0.0.1", 8080, [])).toBeNull();
  });

  it("describes each rule in one line", () => {
    const lines = describeEgress(R);
    expect(lines).toHaveLength(R.length);
    expect(lines[0]).toMatch(/^api\.github\.com: api\.github\.com only \(not its subdomains\), ports 443, 80 \(default\)/);
    expect(lines[2]).toMatch(/subdomains of example\.com \(not example\.com itself\)/);
    expect(lines[4]).toMatch(/10\.9\.0\.0\/16, port 8080/);
    expect(describeEgress([])).toEqual(["no host is reachable (the allowlist is empty)"]);
  });
});
