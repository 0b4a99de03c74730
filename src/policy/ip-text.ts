// IPv4/IPv6 literals of host rules as integers (for prefix masks) and as
// canonical text. Parsing and formatting are those of the egress decisions
// (addresses.ts), so a rule and a dialled address are read the same way. Only
// the plain notations are accepted (dotted quad; RFC 4291 IPv6 text); the odd
// forms resolvers also accept are rejected by src/policy/hosts.ts.

import { formatIp, parseDottedQuad, parseIpv6Literal, type IpBytes } from "./addresses.js";

export function ipv4ToBigInt(text: string): bigint | null {
  const b = parseDottedQuad(text);
  return b && toBigInt(b);
}

export function canonicalIPv4(text: string): string | null {
  const b = parseDottedQuad(text);
  return b && formatIp(b);
}

export function bigIntToIPv4(v: bigint): string {
  return formatIp(fromBigInt(v, 4));
}

export function ipv6ToBigInt(text: string): bigint | null {
  const b = parseIpv6Literal(text);
  return b && toBigInt(b);
}

export function canonicalIPv6(text: string): string | null {
  const b = parseIpv6Literal(text);
  return b && formatIp(b);
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (≥ 2) of zero groups as "::". */
export function bigIntToIPv6(v: bigint): string {
  return formatIp(fromBigInt(v, 16));
}

function toBigInt(b: IpBytes): bigint {
  return b.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
}

function fromBigInt(v: bigint, length: 4 | 16): IpBytes {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--, v >>= 8n) out[i] = Number(v & 255n);
  return out;
}
