// Pure egress decisions: may this server reach host:port, and at which of the
// addresses the proxy resolved? Also what each rule admits (for `explain`) and
// the rule a user could add after a refusal. Not responsible for parsing rules
// (src/policy/hosts.ts), DNS or sockets (src/egress/).

import type { HostRule } from "../config/spec.js";
import { classify, formatIp, inCidr, normalizeHost, parseIp, type AddressClass, type ClassifyOptions, type IpBytes } from "./addresses.js";

export interface EgressRequest {
  /** The host exactly as the client sent it (name or IP literal in any notation). */
  readonly host: string;
  readonly port: number;
}

export interface EgressDecision {
  readonly allowed: boolean;
  /** `raw` of the rule that admitted the connection (or that matched the name but not the address). */
  readonly rule: string | null;
  /** The address to dial: the first admitted one. */
  readonly address: string | null;
  /** Every admitted address, in resolver order (the proxy dials these only, in order). */
  readonly addresses: readonly string[];
  /** A sentence: why. */
  readonly reason: string;
  /** The normalised host (punycode, lower case, IPs canonical); null when invalid. */
  readonly host: string | null;
}

export type DecideOptions = ClassifyOptions;

/**
 * Decide on a connection. `resolved` are the addresses the proxy's own resolver
 * returned for a name (ignored for an IP literal). A missing rule means deny.
 */
export function decide(
  rules: readonly HostRule[],
  req: EgressRequest,
  resolved: readonly string[],
  opts: DecideOptions = {},
): EgressDecision {
  const refuse = (reason: string, host: string | null, rule: string | null = null): EgressDecision => ({
    allowed: false,
    rule,
    address: null,
    addresses: [],
    reason,
    host,
  });
  const target = normalizeHost(req.host);
  if (!target) return refuse(`"${clip(req.host)}" is neither a valid host name nor an IP address`, null);
  if (!Number.isInteger(req.port) || req.port < 1 || req.port > 65535) {
    return refuse(`port ${req.port} is not a valid TCP port`, hostText(target));
  }
  const portRules = rules.filter((r) => r.ports.includes(req.port));

  if (target.kind === "ip") {
    const addr = parseIp(target.address)!;
    for (const rule of portRules) {
      if (ipRuleAdmits(rule, addr, opts)) {
        return { allowed: true, rule: rule.raw, address: target.address, addresses: [target.address], reason: `allowed by "${rule.raw}"`, host: target.address };
      }
    }
    const cls = classify(addr, opts).cls;
    const why = cls === "public" ? "no rule allows it" : `it is a ${describeClass(cls)} address and no rule names it explicitly`;
    return refuse(`${target.address} port ${req.port} is refused: ${why}`, target.address);
  }

  const name = target.name;
  const nameRules = portRules.filter((r) => nameMatches(r, name));
  if (nameRules.length === 0) {
    const otherPort = rules.some((r) => nameMatches(r, name));
    const why = otherPort ? `no rule allows port ${req.port} for it` : "no rule allows it";
    return refuse(`${name} port ${req.port} is refused: ${why}`, name);
  }
  const matched = nameRules[0]!.raw;
  if (resolved.length === 0) return refuse(`${name} did not resolve to any address`, name, matched);

  const admitted: string[] = [];
  let firstRule: string | null = null;
  const refusedWhy: string[] = [];
  for (const text of resolved) {
    const addr = parseIp(text);
    if (!addr) {
      refusedWhy.push(`${clip(text)} (not an address)`);
      continue;
    }
    const cls = classify(addr, opts).cls;
    // SECURITY: a name rule admits public addresses; an exact name may also land on a
    // private one (db.internal). Loopback, link-local, metadata, multicast, unspecified,
    // reserved and the host's own addresses are never reachable through a name.
    const rule = nameRules.find((r) => cls === "public" || (cls === "private" && r.kind === "name"));
    if (rule) {
      admitted.push(formatIp(addr));
      firstRule ??= rule.raw;
    } else {
      refusedWhy.push(`${formatIp(addr)} (${describeClass(cls)})`);
    }
  }
  if (admitted.length === 0) {
    const why = `it resolves only to addresses that "${matched}" may not reach: ${refusedWhy.join(", ")}`;
    return refuse(`${name} port ${req.port} is refused: ${why}`, name, matched);
  }
  return { allowed: true, rule: firstRule, address: admitted[0]!, addresses: admitted, reason: `allowed by "${firstRule}"`, host: name };
}

/**
 * The normalised name the proxy may resolve for this request, or null.
 * SECURITY: a name no rule matches is never looked up, so a server cannot leak
 * data through DNS queries for names of its choosing (secret.attacker.example).
 */
export function nameToResolve(rules: readonly HostRule[], req: EgressRequest): string | null {
  const target = normalizeHost(req.host);
  if (!target || target.kind !== "name") return null;
  return rules.some((r) => r.ports.includes(req.port) && nameMatches(r, target.name)) ? target.name : null;
}

function nameMatches(rule: HostRule, name: string): boolean {
  if (rule.kind === "name") return rule.host === name;
  // SECURITY: "*.example.com" is subdomains only, never the apex, never "badexample.com".
  if (rule.kind === "wildcard") return name.endsWith(`.${rule.host}`) && name.length > rule.host.length + 1;
  return false;
}

/**
 * An IP or CIDR rule admits an address inside it. A non-public address is admitted
 * only when the rule lies wholly inside that address's special range (so
 * "0.0.0.0/0" never reaches 169.254.169.254, but "10.0.0.0/24" reaches 10.0.0.5),
 * and the host's own addresses only by an exact IP rule.
 */
function ipRuleAdmits(rule: HostRule, addr: IpBytes, opts: ClassifyOptions): boolean {
  if (rule.kind !== "ip" && rule.kind !== "cidr") return false;
  const net = parseIp(rule.host);
  if (!net) return false;
  let prefix = rule.kind === "ip" ? net.length * 8 : (rule.prefixLength ?? net.length * 8);
  if (rule.host.includes(":") && net.length === 4) prefix = Math.max(0, prefix - 96); // mapped rule
  if (!inCidr(addr, net, prefix)) return false;
  const c = classify(addr, opts);
  if (c.cls === "public") return true;
  if (c.cls === "own") return prefix === addr.length * 8;
  // SECURITY: the rule must name the special range itself, not merely contain it.
  return c.net !== null && prefix >= c.prefix && inCidr(net, c.net, c.prefix);
}

export function describeClass(cls: AddressClass): string {
  switch (cls) {
    case "own":
      return "this host's own";
    case "metadata":
      return "cloud metadata";
    default:
      return cls;
  }
}

function hostText(t: NonNullable<ReturnType<typeof normalizeHost>>): string {
  return t.kind === "ip" ? t.address : t.name;
}

/** Client-supplied text in a message: short, and no control characters (no log injection). */
function clip(s: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\x00-\x1f\x7f-\x9f]/g, "?");
  return clean.length > 80 ? `${clean.slice(0, 80)}…` : clean;
}

/** The allowed_hosts entry a user could add to admit a refused connection (never for special addresses). */
export function suggestRule(host: string | null, port: number, resolved: readonly string[], opts: ClassifyOptions = {}): string | null {
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  const addrs = resolved.length > 0 ? resolved : [host];
  const classes = addrs.map((a) => parseIp(a)).filter((b): b is IpBytes => b !== null).map((b) => classify(b, opts).cls);
  if (classes.some((c) => c !== "public" && c !== "private")) return null;
  const h = host.includes(":") ? `[${host}]` : host;
  return port === 443 || port === 80 ? h : `${h}:${port}`;
}

/** One line per rule: what it admits (`raw: phrase`). */
export function describeEgress(rules: readonly HostRule[]): string[] {
  if (rules.length === 0) return ["no host is reachable (the allowlist is empty)"];
  return rules.map((r) => `${r.raw}: ${describeEgressRule(r)}`);
}

/** What one rule admits, as a phrase (names, ports, address classes, pinning). */
export function describeEgressRule(r: HostRule): string {
  const ports = `port${r.ports.length > 1 ? "s" : ""} ${r.ports.join(", ")}${r.portExplicit ? "" : " (default)"}`;
  switch (r.kind) {
    case "name":
      return `${r.host} only (not its subdomains), ${ports}; its public or private (RFC 1918, ULA, CGNAT) addresses, never loopback, link-local, metadata, multicast or this host's own; pinned in /etc/hosts for clients that ignore proxies, on ports the sandbox may listen on`;
    case "wildcard":
      return `subdomains of ${r.host} (not ${r.host} itself), ${ports}; public addresses only`;
    case "ip":
      return `the address ${r.host} only, ${ports}`;
    case "cidr":
      return `addresses in ${r.host}/${r.prefixLength}, ${ports}; special ranges (loopback, link-local, metadata, private) only where the range lies inside them`;
  }
}
