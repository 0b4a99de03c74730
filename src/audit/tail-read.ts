// Reads where an existing audit file's chain stands: its chain id (first
// record) and its last record, checked against their own hashes. Not
// responsible for verifying the whole chain (verify.ts).

import type { FileHandle } from "node:fs/promises";
import { NucleusError } from "../errors.js";
import { openForRead } from "./open-file.js";
import { decodeRecord, MAX_RECORD_BYTES, type AuditRecord } from "./record.js";

const CHUNK = 64 * 1024;

export interface ChainEnd {
  readonly chain: string;
  readonly seq: number;
  readonly hash: string;
}

/** The chain id and last record of `path`; null when it does not exist (and `missingOk`) or is empty. */
export async function readLastRecord(path: string, missingOk = false): Promise<ChainEnd | null> {
  const fh = await openForRead(path);
  if (fh === null) {
    if (missingOk) return null;
    throw damaged(path, "it does not exist");
  }
  try {
    return await readChainEnd(fh, path);
  } finally {
    await fh.close();
  }
}

/** The same, through a descriptor already open for reading (`path` names it in errors). */
export async function readChainEnd(fh: FileHandle, path: string): Promise<ChainEnd | null> {
  const { size } = await fh.stat();
  if (size === 0) return null;
  const first = decodeOrThrow(path, await firstLine(fh, size, path));
  const chain = first.type === "audit.file" ? first.fields.chain : undefined;
  if (typeof chain !== "string") throw damaged(path, "its first record is not an audit.file record");
  const last = decodeOrThrow(path, await lastLine(fh, size, path));
  return { chain, seq: last.seq, hash: last.hash };
}

function damaged(path: string, why: string): NucleusError {
  return new NucleusError("INTERNAL", `the audit log ${path} is damaged: ${why}; nucleus will not extend a broken chain`, {
    hint: `Run \`nucleus audit verify ${path}\` to see where, then move the file (and its rotated siblings) aside to start a new chain.`,
  });
}

function decodeOrThrow(path: string, line: Buffer): AuditRecord {
  const r = decodeRecord(line);
  if (!r.ok) throw damaged(path, r.reason);
  return r.record;
}

function tooLong(path: string): NucleusError {
  return damaged(path, `a line is longer than ${MAX_RECORD_BYTES} bytes`);
}

async function firstLine(fh: FileHandle, size: number, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let off = 0; off < size; off += CHUNK) {
    // SECURITY: bounded, so a file of one endless line is refused, not read into memory.
    if (off > MAX_RECORD_BYTES) throw tooLong(path);
    const buf = Buffer.alloc(Math.min(CHUNK, size - off));
    await fh.read(buf, 0, buf.length, off);
    const nl = buf.indexOf(0x0a);
    if (nl !== -1) {
      parts.push(buf.subarray(0, nl));
      return Buffer.concat(parts);
    }
    parts.push(buf);
  }
  return Buffer.concat(parts);
}

async function lastLine(fh: FileHandle, size: number, path: string): Promise<Buffer> {
  const tail = Buffer.alloc(1);
  await fh.read(tail, 0, 1, size - 1);
  if (tail[0] !== 0x0a) throw damaged(path, "its last line is incomplete (no newline at the end)");
  const parts: Buffer[] = [];
  let end = size - 1; // exclusive end of the last line
  while (end > 0) {
    if (size - 1 - end > MAX_RECORD_BYTES) throw tooLong(path);
    const start = Math.max(0, end - CHUNK);
    const buf = Buffer.alloc(end - start);
    await fh.read(buf, 0, buf.length, start);
    const nl = buf.lastIndexOf(0x0a);
    if (nl !== -1) {
      parts.unshift(buf.subarray(nl + 1));
      return Buffer.concat(parts);
    }
    parts.unshift(buf);
    end = start;
  }
  return Buffer.concat(parts);
}
