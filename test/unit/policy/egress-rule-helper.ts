// Test helper: builds parsed HostRule objects the way src/policy/hosts.ts will
// (after the merge, parseHostRule produces these; this stays a tiny stand-in).
import type { HostRule } from "../../../src/config/spec.js";

export function rule(raw: string): HostRule {
  let text = raw;
  let ports: number[] = [443, 80];
  let portExplicit = false;
  const bracket = /^\[(.+)\](?::(\d+))?$/.exec(raw);
  const single = /^([^:]+):(\d+)$/.exec(raw);
  const m = bracket ?? single;
  if (m) {
    text = m[1]!;
    if (m[2]) [ports, portExplicit] = [[Number(m[2])], true];
  }
  if (text.startsWith("*.")) return { raw, kind: "wildcard", host: text.slice(2), ports, portExplicit };
  if (text.includes("/")) {
    const [host, len] = text.split("/");
    return { raw, kind: "cidr", host: host!, prefixLength: Number(len), ports, portExplicit };
  }
  if (/^[0-9.]+$/.test(text) || text.includes(":")) return { raw, kind: "ip", host: text, ports, portExplicit };
  return { raw, kind: "name", host: text, ports, portExplicit };
}

export function rules(...raws: string[]): HostRule[] {
  return raws.map(rule);
}
