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
/** ASCII: as many bytes as characters. */
const SUFFIX_LENGTH = ',"hash":"'.length + 64 + '"}'.length;

/** The longest record line (without its newline) written or read: a bound for every reader's buffer. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

// SECURITY: fatal, so a byte that is not UTF-8 is an error, not U+FFFD (which would hide a changed byte);
// ignoreBOM keeps a leading EF BB BF as text (a changed line, not a silently dropped prefix).
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function sha256(data: string | Uint8Array): string {
  return typeof data === "string" ? createHash("sha256").update(data, "utf8").digest("hex") : createHash("sha256").update(data).digest("hex");
}

/** The `prev` of a chain's first record: binds the chain to its id. */
export function genesisHash(chainId: string): string {
  return sha256(`nucleus-audit-v1 genesis ${chainId}`);
}

/**
 * Serialises one record and returns the exact bytes to write (the line and its newline) with its hash, which
 * covers those bytes up to the hash member. JSON.stringify escapes lone surrogates, so the text is well-formed
 * and its UTF-8 bytes are the ones hashed.
 */
export function encodeRecord(r: Omit<AuditRecord, "hash">): { bytes: Buffer; hash: string } {
  const body = JSON.stringify({ seq: r.seq, time: r.time, type: r.type, fields: r.fields, prev: r.prev });
  const prefix = Buffer.from(body.slice(0, -1), "utf8");
  const hash = sha256(prefix);
  return { bytes: Buffer.concat([prefix, Buffer.from(`,"hash":"${hash}"}\n`, "ascii")]), hash };
}

export type DecodeResult =
  | { readonly ok: true; readonly record: AuditRecord; /** The line as text. */ readonly text: string }
  | { readonly ok: false; readonly reason: string };

/** Checks one line (its bytes as stored, without the newline) against its own hash, then parses it. */
export function decodeRecord(line: Uint8Array): DecodeResult {
  if (line.length > MAX_RECORD_BYTES) return { ok: false, reason: `the line is longer than ${MAX_RECORD_BYTES} bytes (not an audit record)` };
  let text: string;
  try {
    text = UTF8.decode(line);
  } catch {
    return { ok: false, reason: "the line is not valid UTF-8 (a byte was changed after it was written)" };
  }
  const m = SUFFIX.exec(text);
  if (!m) return { ok: false, reason: "the line does not end in a hash member (truncated or not an audit record)" };
  const hash = m[1]!;
  // SECURITY: the hash covers the bytes as stored, not a re-encoding of the decoded text.
  if (sha256(line.subarray(0, line.length - SUFFIX_LENGTH)) !== hash) {
    return { ok: false, reason: "the record does not match its own hash (it was changed after it was written)" };
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
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
    text,
  };
}
