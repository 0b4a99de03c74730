// Pure address facts for egress decisions: normalising a host string from a
// client (case, trailing dot, punycode, bracketed IPv6, odd IPv4 notations),
// parsing IPs to bytes, CIDR containment, and classifying an address
// (loopback, link-local/metadata, private, ...). Not responsible for rules.

import { isIPv6 } from "node:net";
import { domainToASCII } from "node:url";

/** An IP address as bytes: 4 (IPv4) or 16 (IPv6). IPv4-mapped IPv6 is unwrapped to 4. */
export type IpBytes = Uint8Array;

export type Target = { readonly kind: "ip"; readonly address: string } | { readonly kind: "name"; readonly name: string };

export type AddressClass =
  | "public"
  | "private"
  | "loopback"
  | "link-local"
  | "metadata"
  | "multicast"
  | "unspecified"
  | "reserved"
  | "own";

interface Range {
  readonly net: IpBytes;
  readonly prefix: number;
  readonly cls: AddressClass;
}

function range(cidr: string, cls: AddressClass): Range {
  const [addr, len] = cidr.split("/");
  const net = parseIp(addr!);
  if (!net) throw new Error(`bad built-in range ${cidr}`);
  return { net, prefix: Number(len), cls };
}

// SECURITY: the special ranges no name rule may reach. Order matters: the most
// specific entries (metadata) come before the ranges that contain them.
const SPECIAL: readonly Range[] = [
  range("169.254.169.254/32", "metadata"), // AWS/GCP/Azure/OpenStack instance metadata
  range("100.100.100.200/32", "metadata"), // Alibaba Cloud metadata
  range("fd00:ec2::254/128", "metadata"), // AWS IPv6 metadata
  range("0.0.0.0/32", "unspecified"),
  range("::/128", "unspecified"),
  range("127.0.0.0/8", "loopback"),
  range("::1/128", "loopback"),
  range("169.254.0.0/16", "link-local"),
  range("fe80::/10", "link-local"),
  range("224.0.0.0/4", "multicast"),
  range("ff00::/8", "multicast"),
  range("0.0.0.0/8", "reserved"), // "this network"
  range("192.0.0.0/24", "reserved"), // IETF protocol assignments
  range("192.0.2.0/24", "reserved"), // documentation
  range("198.18.0.0/15", "reserved"), // benchmarking
  range("198.51.100.0/24", "reserved"),
  range("203.0.113.0/24", "reserved"),
  range("240.0.0.0/4", "reserved"), // incl. 255.255.255.255 broadcast
  range("::/96", "reserved"), // deprecated IPv4-compatible
  range("100::/64", "reserved"), // discard
  range("2001:db8::/32", "reserved"), // documentation
  range("2002::/16", "reserved"), // 6to4: embeds an IPv4 address we would not check
  range("fec0::/10", "reserved"), // deprecated site-local
];

const PRIVATE: readonly Range[] = [
  range("10.0.0.0/8", "private"),
  range("172.16.0.0/12", "private"),
  range("192.168.0.0/16", "private"),
  range("100.64.0.0/10", "private"), // CGNAT
  range("fc00::/7", "private"), // ULA
];

/** Parse a strict IP literal (dotted-quad IPv4 or IPv6) to bytes; mapped/NAT64 IPv6 is unwrapped to IPv4. */
export function parseIp(text: string): IpBytes | null {
  const v4 = parseDottedQuad(text);
  if (v4) return v4;
  const v6 = parseIpv6Literal(text);
  return v6 && unwrap(v6);
}

/** A strict IPv6 literal (RFC 4291 text, no zone) to 16 bytes, mapped forms kept as they are. */
export function parseIpv6Literal(text: string): IpBytes | null {
  if (!isIPv6(text) || text.includes("%")) return null;
  return parseIpv6(text);
}

/** A strict dotted quad (no leading zeros, each part ≤ 255) to 4 bytes. */
export function parseDottedQuad(text: string): IpBytes | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return null;
    out[i] = Number(p);
  }
  return out;
}

function parseIpv6(text: string): IpBytes {
  let head = text;
  const tail: number[] = [];
  // An embedded dotted quad at the end (::ffff:1.2.3.4).
  const lastColon = head.lastIndexOf(":");
  const maybeV4 = head.slice(lastColon + 1);
  if (maybeV4.includes(".")) {
    const q = parseDottedQuad(maybeV4)!;
    tail.push((q[0]! << 8) | q[1]!, (q[2]! << 8) | q[3]!);
    head = head.slice(0, lastColon + 1);
    if (head.endsWith(":") && !head.endsWith("::")) head = head.slice(0, -1);
  }
  const [left, right] = head.includes("::") ? head.split("::") : [head, null];
  const words = (s: string | undefined) => (s ? s.split(":").filter((w) => w !== "").map((w) => parseInt(w, 16)) : []);
  const l = words(left);
  const r = [...words(right ?? undefined), ...tail];
  const fill = right === null && tail.length > 0 ? [] : new Array(8 - l.length - r.length).fill(0);
  const all = right === null ? [...l, ...tail] : [...l, ...fill, ...r];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[i * 2] = (w >> 8) & 0xff;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

/** IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) addresses reach an IPv4 address: judge that one. */
function unwrap(b: IpBytes): IpBytes {
  const mapped = b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  const nat64 = b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b.slice(4, 12).every((x) => x === 0);
  return mapped || nat64 ? b.slice(12) : b;
}

/** Canonical text of an address: dotted quad, or compressed lower-case IPv6. */
export function formatIp(b: IpBytes): string {
  if (b.length === 4) return Array.from(b).join(".");
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Whether `addr` lies in net/prefix (same family only). */
export function inCidr(addr: IpBytes, net: IpBytes, prefix: number): boolean {
  if (addr.length !== net.length) return false;
  for (let bit = 0; bit < prefix; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if ((addr[byte]! & mask) !== (net[byte]! & mask)) return false;
  }
  return true;
}

export interface ClassifyOptions {
  /** The host's own addresses (os.networkInterfaces), never reachable through a name rule. */
  readonly ownAddresses?: readonly string[];
  /**
   * TEST ONLY, dangerous: addresses in these CIDRs are classified "private"
   * instead of what they are, so tests can stand in loopback targets for a
   * private network. Never set from configuration.
   */
  readonly insecureTestPrivateRanges?: readonly string[];
}

export interface Classification {
  readonly cls: AddressClass;
  /** The range the class came from (null for public). */
  readonly net: IpBytes | null;
  readonly prefix: number;
}

export function classify(addr: IpBytes, opts: ClassifyOptions = {}): Classification {
  for (const cidr of opts.insecureTestPrivateRanges ?? []) {
    const r = range(cidr, "private");
    if (inCidr(addr, r.net, r.prefix)) return { cls: "private", net: r.net, prefix: r.prefix };
  }
  for (const r of SPECIAL) if (inCidr(addr, r.net, r.prefix)) return { cls: r.cls, net: r.net, prefix: r.prefix };
  for (const own of opts.ownAddresses ?? []) {
    const b = parseIp(own);
    if (b && b.length === addr.length && inCidr(addr, b, b.length * 8)) return { cls: "own", net: b, prefix: b.length * 8 };
  }
  for (const r of PRIVATE) if (inCidr(addr, r.net, r.prefix)) return { cls: r.cls, net: r.net, prefix: r.prefix };
  return { cls: "public", net: null, prefix: 0 };
}

/**
 * Parse IPv4 the way inet_aton and the URL standard do: 1 to 4 parts, each
 * decimal, octal (leading 0) or hex (0x), the last part filling the remaining
 * bytes. "2130706433", "0177.0.0.1" and "0x7f.1" are all 127.0.0.1.
 */
export function parseLooseIpv4(text: string): IpBytes | null {
  const parts = text.split(".");
  if (parts.length > 4 || parts.some((p) => p === "")) return null;
  const nums: number[] = [];
  for (const p of parts) {
    let n: number;
    if (/^0x[0-9a-f]*$/i.test(p)) n = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]+$/.test(p)) n = parseInt(p.slice(1), 8);
    else if (/^(0|[1-9][0-9]*)$/.test(p)) n = Number(p);
    else return null;
    if (!Number.isSafeInteger(n)) return null;
    nums.push(n);
  }
  const last = nums.pop()!;
  if (nums.some((n) => n > 255) || last >= 256 ** (4 - nums.length)) return null;
  let value = last;
  nums.forEach((n, i) => (value += n * 256 ** (3 - i)));
  return Uint8Array.of((value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
}

/** Normalise a host as a client sent it; null when it is neither an IP nor a valid DNS name. */
export function normalizeHost(input: string): Target | null {
  let h = input;
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h.length === 0 || h.length > 255) return null;
  if (h.includes(":")) {
    const b = parseIp(h);
    return b ? { kind: "ip", address: formatIp(b) } : null;
  }
  if (h.endsWith(".")) h = h.slice(0, -1);
  // SECURITY: any host whose last label is numeric is an IPv4 address in some
  // notation (or invalid) — never a name, so "0x7f.1" cannot pass a name rule.
  // Checked again after IDNA mapping, which turns full-width digits into ASCII.
  const asIp = numericHost(h);
  if (asIp !== undefined) return asIp;
  // SECURITY: the IDNA mapper stops at "/", "?", "#" etc.; refuse every ASCII
  // character a host name cannot hold before it sees the string.
  if (/[\x00-\x2c\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]/.test(h)) return null;
  const ascii = domainToASCII(h);
  if (!ascii || ascii.length > 253) return null;
  const mapped = numericHost(ascii);
  if (mapped !== undefined) return mapped;
  const labels = ascii.split(".");
  if (!labels.every((l) => /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/.test(l))) return null;
  return { kind: "name", name: ascii };
}

function numericHost(h: string): Target | null | undefined {
  const lastLabel = h.slice(h.lastIndexOf(".") + 1);
  if (!/^(0x[0-9a-f]*|[0-9]+)$/i.test(lastLabel)) return undefined;
  const b = parseLooseIpv4(h);
  return b ? { kind: "ip", address: formatIp(b) } : null;
}
