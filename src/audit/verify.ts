// Verifies an audit log's hash chain over one or more files (oldest first):
// every record matches its own hash, links to the one before it, and seq
// counts up by one. Not responsible for printing (src/cli/audit.ts).

import { stat } from "node:fs/promises";
import { readLines } from "./files.js";
import { decodeRecord, genesisHash, MAX_RECORD_BYTES } from "./record.js";

export interface BrokenRecord {
  readonly file: string;
  /** 1-based line number in that file (0: the file itself). */
  readonly line: number;
  readonly reason: string;
}

export interface VerifyResult {
  readonly ok: boolean;
  /** Records checked and found good before the first broken one. */
  readonly records: number;
  readonly firstBad?: BrokenRecord;
  /** The chain id (from the first audit.file record seen). */
  readonly chain: string | null;
  /** True when the first file begins at the chain's genesis (seq 1): nothing older was rotated away. */
  readonly startsAtGenesis: boolean;
  readonly firstSeq: number | null;
  /** The last good record: record its seq and hash elsewhere to detect a rewritten or cut log later. */
  readonly lastSeq: number | null;
  readonly lastHash: string | null;
}

export async function verifyAuditLog(files: readonly string[]): Promise<VerifyResult> {
  let records = 0;
  let chain: string | null = null;
  let startsAtGenesis = false;
  let firstSeq: number | null = null;
  let prevHash: string | null = null;
  let prevSeq = 0;
  const result = (firstBad?: BrokenRecord): VerifyResult => ({
    ok: firstBad === undefined && records > 0,
    records,
    ...(firstBad ? { firstBad } : records === 0 ? { firstBad: { file: files[0] ?? "", line: 0, reason: "no audit files were given" } } : {}),
    chain,
    startsAtGenesis,
    firstSeq,
    lastSeq: prevHash === null ? null : prevSeq,
    lastHash: prevHash,
  });

  for (const [index, file] of files.entries()) {
    const st = await stat(file).catch(() => null);
    if (!st) return result({ file, line: 0, reason: "the file does not exist or cannot be read" });
    if (st.size === 0) return result({ file, line: 0, reason: "the file is empty (every audit file begins with an audit.file record)" });
    for await (const { number, bytes, terminated, tooLong } of readLines(file)) {
      const bad = (reason: string): VerifyResult => result({ file, line: number, reason });
      if (tooLong) return bad(`the line is longer than ${MAX_RECORD_BYTES} bytes: not an audit record`);
      if (!terminated) return bad("the last line is incomplete (no newline at the end): the file was truncated or a write was cut short");
      const decoded = decodeRecord(bytes);
      if (!decoded.ok) return bad(decoded.reason);
      const r = decoded.record;
      if (number === 1) {
        const id = r.type === "audit.file" ? r.fields.chain : undefined;
        if (typeof id !== "string") return bad("the first record of a file is not an audit.file record: records at the head of the file were removed");
        if (chain !== null && id !== chain) return bad(`the file belongs to another chain (${id}, expected ${chain})`);
        chain = id;
      }
      if (prevHash === null) {
        // The first record of all: either the chain's genesis, or the continuation of files rotated away.
        firstSeq = r.seq;
        startsAtGenesis = r.prev === genesisHash(chain!);
        if (startsAtGenesis && r.seq !== 1) return bad(`the chain's first record has seq ${r.seq}, expected 1`);
        if (!startsAtGenesis && index === 0 && r.fields.reason === "created") return bad("the chain's first record does not link to its genesis");
      } else {
        if (r.seq !== prevSeq + 1) return bad(seqReason(prevSeq, r.seq, number === 1));
        if (r.prev !== prevHash) return bad(`prev does not match the hash of record ${prevSeq}: a record before it was changed, removed or reordered`);
      }
      prevHash = r.hash;
      prevSeq = r.seq;
      records++;
    }
  }
  return result();
}

function seqReason(prev: number, seq: number, firstOfFile: boolean): string {
  if (seq <= prev) return `seq ${seq} follows seq ${prev}: records were reordered or repeated`;
  const missing = seq - prev - 1;
  const what = `${missing} record${missing === 1 ? "" : "s"} (seq ${prev + 1}${missing > 1 ? `–${seq - 1}` : ""})`;
  return firstOfFile ? `seq jumps from ${prev} to ${seq} between files: ${what} missing — a rotated file is missing or out of order` : `seq jumps from ${prev} to ${seq}: ${what} missing here (removed or moved)`;
}
