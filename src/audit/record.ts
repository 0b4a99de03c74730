// The audit record line format and its hashes: each line is one JSON object
// ending in `"hash":"<sha256 of the line up to that member>"`, and `prev` holds
// the previous line's hash. Not responsible for files (audit-log.ts, verify.ts).

import { createHash } from "node:crypto";

export interface AuditRecord {
  readonly seq: number;
  readonly time: string;
  readonly type: string;
  readonly fields: Readonly<Record<string, unknown>>;
  readonly prev: string;
  readonly hash: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
const SUFFIX = /,"hash":"([0-9a-f]{64})"}$/;
const SUFFIX_LENGTH = ',"hash":"'.length + 64 + '"}'.length;

function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** The `prev` of a chain's first record: binds the chain to its id. */
export function genesisHash(chainId: string): string {
  return sha256(`nucleus-audit-v1 genesis ${chainId}`);
}

/** Serialises one record (without a trailing newline) and returns it with its hash. */
export function encodeRecord(r: Omit<AuditRecord, "hash">): { line: string; hash: string } {
  const body = JSON.stringify({ seq: r.seq, time: r.time, type: r.type, fields: r.fields, prev: r.prev });
  const prefix = body.slice(0, -1);
  const hash = sha256(prefix);
  return { line: `${prefix},"hash":"${hash}"}`, hash };
}

export type DecodeResult = { readonly ok: true; readonly record: AuditRecord } | { readonly ok: false; readonly reason: string };

/** Parses one line and checks it against its own hash. */
export function decodeRecord(line: string): DecodeResult {
  const m = SUFFIX.exec(line);
  if (!m) return { ok: false, reason: "the line does not end in a hash member (truncated or not an audit record)" };
  const hash = m[1]!;
  if (sha256(line.slice(0, line.length - SUFFIX_LENGTH)) !== hash) {
    return { ok: false, reason: "the record does not match its own hash (it was changed after it was written)" };
  }
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    return { ok: false, reason: "the line is not valid JSON" };
  }
  const o = obj as Record<string, unknown>;
  if (
    typeof o !== "object" ||
    o === null ||
    !Number.isSafeInteger(o.seq) ||
    (o.seq as number) < 1 ||
    typeof o.time !== "string" ||
    typeof o.type !== "string" ||
    typeof o.fields !== "object" ||
    o.fields === null ||
    Array.isArray(o.fields) ||
    typeof o.prev !== "string" ||
    !HEX64.test(o.prev)
  ) {
    return { ok: false, reason: "the record lacks seq, time, type, fields or prev" };
  }
  return {
    ok: true,
    record: { seq: o.seq as number, time: o.time, type: o.type, fields: o.fields as Record<string, unknown>, prev: o.prev, hash },
  };
}
