// Parsing and validation of egress allowlist rules (`allowed_hosts`) into the
// normalised HostRule of src/config/spec.ts, and a sentence saying what a rule
// admits. Not responsible for matching connections against rules (src/egress/).

import { domainToASCII } from "node:url";
import type { HostRule } from "../config/spec.js";
import { canonicalIPv4, canonicalIPv6, ipv4ToBigInt, ipv6ToBigInt, bigIntToIPv4, bigIntToIPv6 } from "./ip-text.js";

export type HostRuleResult = { ok: true; rule: HostRule } | { ok: false; error: string };

/** Ports a rule admits when it names none. */
export const DEFAULT_PORTS: readonly number[] = Object.freeze([443, 80]);

// SECURITY: a wildcard directly under one of these suffixes admits hosts of
// unrelated owners (every `*.co.uk` site, every GitHub Pages user). This is a
// small built-in excerpt of the Public Suffix List: common multi-label public
// suffixes and shared hosting domains. Single-label suffixes (`*.com`) are
// refused by the label-count rule instead.
const PUBLIC_SUFFIXES: ReadonlySet<string> = new Set([
  "co.uk", "org.uk", "ac.uk", "gov.uk", "ltd.uk", "plc.uk", "me.uk", "net.uk", "sch.uk", "nhs.uk",
  "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp", "gr.jp",
  "com.au", "net.au", "org.au", "edu.au", "gov.au", "id.au",
  "co.nz", "org.nz", "net.nz", "govt.nz", "ac.nz",
  "com.br", "net.br", "org.br", "gov.br",
  "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn",
  "co.in", "net.in", "org.in", "gov.in", "ac.in",
  "co.kr", "or.kr", "ac.kr", "go.kr",
  "co.za", "org.za", "gov.za",
  "com.mx", "com.ar", "com.tr", "com.tw", "com.hk", "com.sg", "com.my", "com.ph", "com.vn",
  "com.pl", "com.ua", "com.co", "com.pe", "com.ng", "com.eg", "com.sa", "co.il", "co.id", "co.th",
  "eu.org", "us.com", "uk.com",
  // Shared hosting: every customer gets a subdomain.
  "github.io", "githubusercontent.com", "gitlab.io", "herokuapp.com", "appspot.com", "blogspot.com",
  "cloudfront.net", "amazonaws.com", "s3.amazonaws.com", "azurewebsites.net", "cloudapp.net",
  "firebaseapp.com", "web.app", "vercel.app", "netlify.app", "pages.dev", "workers.dev",
  "fly.dev", "onrender.com", "ngrok.io", "ngrok-free.app", "glitch.me", "repl.co",
]);

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
const MIN_V4_PREFIX = 8;
const MIN_V6_PREFIX = 7; // fc00::/7 (all unique-local addresses) is the widest accepted

export function parseHostRule(text: string): HostRuleResult {
  const raw = text;
  if (typeof text !== "string" || text.length === 0) return fail("a host rule must be a non-empty string");
  if (/\s/.test(text)) return fail(`"${raw}" contains whitespace`);
  const lower = text.toLowerCase();
  if (lower.includes("://") || lower.includes("@") || lower.includes("?") || lower.includes("#")) {
    return fail(`"${raw}" looks like a URL; write a host name with an optional port, e.g. "api.example.com:443"`);
  }

  let hostPart: string;
  let portText: string | null = null;
  let bracketed = false;
  if (lower.startsWith("[")) {
    const close = lower.indexOf("]");
    if (close === -1) return fail(`"${raw}" has "[" without a closing "]"`);
    hostPart = lower.slice(1, close);
    const rest = lower.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return fail(`"${raw}": only ":PORT" may follow "]"`);
      portText = rest.slice(1);
    }
    bracketed = true;
  } else if ((lower.match(/:/g) ?? []).length >= 2) {
    hostPart = lower; // bare IPv6 (or IPv6 CIDR) without a port
  } else {
    const colon = lower.lastIndexOf(":");
    hostPart = colon === -1 ? lower : lower.slice(0, colon);
    portText = colon === -1 ? null : lower.slice(colon + 1);
  }

  let ports: readonly number[] = DEFAULT_PORTS;
  if (portText !== null) {
    const port = parsePort(portText);
    if (typeof port === "string") return fail(`"${raw}": ${port}`);
    ports = Object.freeze([port]);
  }
  const portExplicit = portText !== null;

  if (hostPart.includes(":") || bracketed) {
    return parseV6(raw, hostPart, ports, portExplicit);
  }
  if (hostPart.endsWith(".")) hostPart = hostPart.slice(0, -1);
  if (hostPart === "") return fail(`"${raw}" names no host`);
  if (hostPart.includes("/")) return parseV4Cidr(raw, hostPart, ports, portExplicit);

  const ipProblem = oddIPv4(hostPart);
  if (ipProblem === "ok") {
    return ok({ raw, kind: "ip", host: canonicalIPv4(hostPart)!, ports, portExplicit });
  }
  if (ipProblem !== null) return fail(`"${raw}": ${ipProblem}`);

  if (hostPart === "*") return fail(`"${raw}" is too broad: it admits every host; list the hosts the server needs`);
  if (hostPart.startsWith("*.")) return parseWildcard(raw, hostPart.slice(2), ports, portExplicit);
  if (hostPart.includes("*")) {
    return fail(`"${raw}": a wildcard is allowed only as the whole first label, as in "*.example.com"`);
  }
  const name = toAsciiName(hostPart);
  if (typeof name !== "string") return fail(`"${raw}": ${name.error}`);
  return ok({ raw, kind: "name", host: name, ports, portExplicit });
}

/** What a rule admits, as a phrase: `subdomains of example.com (not example.com itself), ports 443, 80`. */
export function describeHostRule(rule: HostRule): string {
  const ports = `${rule.ports.length === 1 ? "port" : "ports"} ${rule.ports.join(", ")}`;
  switch (rule.kind) {
    case "name":
      return `${rule.host} only (not its subdomains), ${ports}`;
    case "wildcard":
      return `subdomains of ${rule.host} (not ${rule.host} itself), ${ports}`;
    case "ip":
      return `the address ${rule.host} only, ${ports}`;
    case "cidr": {
      const bits = (rule.host.includes(":") ? 128 : 32) - (rule.prefixLength ?? 0);
      const count = bits <= 52 ? String(2 ** bits) : `2^${bits}`;
      return `the ${count} addresses of ${rule.host}/${rule.prefixLength}, ${ports}`;
    }
  }
}

function parseWildcard(raw: string, suffixText: string, ports: readonly number[], portExplicit: boolean): HostRuleResult {
  if (suffixText.includes("*")) {
    return fail(`"${raw}": a wildcard is allowed only as the whole first label, as in "*.example.com"`);
  }
  const suffix = toAsciiName(suffixText);
  if (typeof suffix !== "string") return fail(`"${raw}": ${suffix.error}`);
  if (oddIPv4(suffix) !== null) return fail(`"${raw}": a wildcard cannot stand in front of an IP address`);
  if (suffix.split(".").length < 2) {
    return fail(`"${raw}" is too broad: a wildcard needs at least two labels after "*." (e.g. "*.example.com")`);
  }
  if (PUBLIC_SUFFIXES.has(suffix)) {
    return fail(`"${raw}" is too broad: ${suffix} is a public suffix shared by unrelated owners; name the hosts instead`);
  }
  return ok({ raw, kind: "wildcard", host: suffix, ports, portExplicit });
}

function parseV4Cidr(raw: string, text: string, ports: readonly number[], portExplicit: boolean): HostRuleResult {
  const [addr = "", lenText = "", ...extra] = text.split("/");
  if (extra.length > 0) return fail(`"${raw}" has more than one "/"`);
  const problem = oddIPv4(addr);
  if (problem !== "ok") return fail(`"${raw}": ${problem ?? `"${addr}" is not an IPv4 address`}`);
  const len = parsePrefix(lenText, 32);
  if (typeof len === "string") return fail(`"${raw}": ${len}`);
  if (len < MIN_V4_PREFIX) return fail(`"${raw}" is too broad: IPv4 networks need a prefix of /${MIN_V4_PREFIX} or longer`);
  const value = ipv4ToBigInt(addr)!;
  const mask = ((1n << 32n) - 1n) ^ ((1n << BigInt(32 - len)) - 1n);
  if ((value & mask) !== value) {
    return fail(`"${raw}" has host bits set; did you mean ${bigIntToIPv4(value & mask)}/${len}?`);
  }
  return ok({ raw, kind: "cidr", host: canonicalIPv4(addr)!, prefixLength: len, ports, portExplicit });
}

function parseV6(raw: string, text: string, ports: readonly number[], portExplicit: boolean): HostRuleResult {
  const [addr = "", lenText, ...extra] = text.split("/");
  if (extra.length > 0) return fail(`"${raw}" has more than one "/"`);
  if (addr.includes("%")) return fail(`"${raw}": zone indexes (%eth0) are not allowed in rules`);
  const canon = canonicalIPv6(addr);
  if (canon === null) return fail(`"${raw}": "${addr}" is not a valid IPv6 address`);
  if (lenText === undefined) return ok({ raw, kind: "ip", host: canon, ports, portExplicit });
  const len = parsePrefix(lenText, 128);
  if (typeof len === "string") return fail(`"${raw}": ${len}`);
  if (len < MIN_V6_PREFIX) return fail(`"${raw}" is too broad: IPv6 networks need a prefix of /${MIN_V6_PREFIX} or longer`);
  const value = ipv6ToBigInt(addr)!;
  const mask = ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - len)) - 1n);
  if ((value & mask) !== value) {
    return fail(`"${raw}" has host bits set; did you mean [${bigIntToIPv6(value & mask)}/${len}]?`);
  }
  return ok({ raw, kind: "cidr", host: canon, prefixLength: len, ports, portExplicit });
}

/**
 * "ok" for a strict dotted quad, null for something that is not IP-like at all,
 * or a sentence for IP-like text in a notation that resolvers read differently.
 */
function oddIPv4(text: string): "ok" | string | null {
  const labels = text.split(".");
  const last = labels[labels.length - 1] ?? "";
  // A name whose last label is numeric is read as an IPv4 address by URL parsers.
  if (!/^(0x[0-9a-f]*|[0-9]+)$/.test(last)) return null;
  if (canonicalIPv4(text) !== null) return "ok";
  const hint = "write it as a plain dotted quad such as 127.0.0.1";
  if (labels.some((l) => /^0x/.test(l))) return `hexadecimal IP notation is not accepted; ${hint}`;
  if (labels.some((l) => /^0[0-9]+$/.test(l))) return `octal-looking IP notation (a leading zero) is not accepted; ${hint}`;
  if (labels.length === 1) return `decimal IP notation is not accepted; ${hint}`;
  if (labels.length < 4 && labels.every((l) => /^[0-9]+$/.test(l))) return `short IP notation is not accepted; ${hint}`;
  return `"${text}" is not a valid IPv4 address and a host name cannot end in a numeric label`;
}

function toAsciiName(text: string): string | { error: string } {
  const ascii = /^[\x21-\x7e]*$/.test(text) ? text : domainToASCII(text);
  if (ascii === "") return { error: `"${text}" is not a valid host name` };
  if (ascii.length > 253) return { error: "a host name is at most 253 characters long" };
  for (const label of ascii.split(".")) {
    if (!LABEL.test(label)) {
      return { error: `"${text}" is not a valid host name (label "${label}": letters, digits, "-" and "_" only, 1-63 characters)` };
    }
  }
  return ascii;
}

function parsePort(text: string): number | string {
  if (!/^[0-9]{1,5}$/.test(text)) return `port "${text}" is not a number from 1 to 65535`;
  const port = Number(text);
  if (port < 1 || port > 65535 || (text.length > 1 && text.startsWith("0"))) {
    return `port "${text}" is not a number from 1 to 65535`;
  }
  return port;
}

function parsePrefix(text: string, max: number): number | string {
  if (!/^[0-9]{1,3}$/.test(text) || Number(text) > max || (text.length > 1 && text.startsWith("0"))) {
    return `prefix length "/${text}" must be a number from 0 to ${max}`;
  }
  return Number(text);
}

function ok(rule: HostRule): HostRuleResult {
  const frozen: HostRule = Object.freeze({ ...rule, ports: Object.freeze([...rule.ports]) });
  return { ok: true, rule: frozen };
}

function fail(error: string): HostRuleResult {
  return { ok: false, error };
}
