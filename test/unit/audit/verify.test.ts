import { copyFile, mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditLog } from "../../../src/audit/audit-log.js";
import { serverExit, serverStart, toolCall } from "../../../src/audit/events.js";
import { auditFileSet, readLines } from "../../../src/audit/files.js";
import { verifyAuditLog } from "../../../src/audit/verify.js";

let dir: string;
let path: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nucleus-verify-"));
  path = join(dir, "audit.jsonl");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeLog(count: number, opts: { maxBytes?: number; keep?: number } = {}): Promise<string[]> {
  const log = new AuditLog(path, opts);
  await log.append(serverStart({ server: "fs", backend: "bubblewrap", policyDigest: "sha256:abc" }));
  for (let i = 0; i < count; i++) {
    await log.append(toolCall({ server: "fs", tool: "read_file", arguments: { i }, outcome: i % 3 ? "ok" : "refused", durationMs: i, includeArguments: true }));
  }
  await log.append(serverExit({ server: "fs", cause: "stopped", code: 0, signal: null }));
  await log.close();
  return auditFileSet(path);
}

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, "utf8")).split("\n").slice(0, -1);
}
async function putLines(file: string, ls: string[]): Promise<void> {
  await writeFile(file, ls.map((l) => `${l}\n`).join(""));
}

describe("verifyAuditLog", () => {
  it("passes a log written by real appends", async () => {
    const files = await writeLog(10);
    expect(await verifyAuditLog(files)).toMatchObject({ ok: true, records: 13, startsAtGenesis: true, firstSeq: 1, lastSeq: 13 });
  });

  it("finds one changed byte, in the middle and in the very last record", async () => {
    await writeLog(10);
    const ls = await lines(path);
    await putLines(path, ls.map((l, i) => (i === 5 ? l.replace('"i":3', '"i":4') : l)));
    expect((await verifyAuditLog([path])).firstBad).toEqual({ file: path, line: 6, reason: "the record does not match its own hash (it was changed after it was written)" });
    await putLines(path, ls.map((l, i) => (i === ls.length - 1 ? l.replace('"code":0', '"code":1') : l)));
    expect((await verifyAuditLog([path])).firstBad?.line).toBe(13);
  });

  it("finds a removed record", async () => {
    await writeLog(10);
    const ls = await lines(path);
    await putLines(path, ls.filter((_, i) => i !== 4));
    const v = await verifyAuditLog([path]);
    expect(v.ok).toBe(false);
    expect(v.records).toBe(4);
    expect(v.firstBad).toEqual({ file: path, line: 5, reason: "seq jumps from 4 to 6: 1 record (seq 5) missing here (removed or moved)" });
  });

  it("finds two swapped records", async () => {
    await writeLog(10);
    const ls = await lines(path);
    [ls[3], ls[4]] = [ls[4]!, ls[3]!];
    await putLines(path, ls);
    const v = await verifyAuditLog([path]);
    expect(v.firstBad?.line).toBe(4);
    expect(v.records).toBe(3);
  });

  it("finds a truncated last line", async () => {
    await writeLog(3);
    const text = await readFile(path, "utf8");
    await writeFile(path, text.slice(0, -20));
    expect((await verifyAuditLog([path])).firstBad).toMatchObject({ line: 6, reason: expect.stringContaining("incomplete") });
  });

  it("finds records removed from the head of a file", async () => {
    await writeLog(5);
    await putLines(path, (await lines(path)).slice(2));
    expect((await verifyAuditLog([path])).firstBad).toMatchObject({ line: 1, reason: expect.stringContaining("not an audit.file record") });
  });

  it("finds a rewritten chain start that no longer links to its genesis", async () => {
    await writeLog(2);
    const ls = await lines(path);
    const other = join(dir, "other.jsonl");
    const log = new AuditLog(other);
    await log.append(serverStart({ server: "x", backend: "qemu", policyDigest: "sha256:1" }));
    await log.close();
    // Splice another chain's records in after the first record.
    await putLines(path, [ls[0]!, ...(await lines(other)).slice(1), ...ls.slice(2)]);
    expect((await verifyAuditLog([path])).ok).toBe(false);
  });

  describe("across rotated files", () => {
    it("passes, and finds a missing middle file", async () => {
      const files = await writeLog(60, { maxBytes: 3000, keep: 20 });
      expect(files.length).toBeGreaterThan(3);
      const v = await verifyAuditLog(files);
      expect(v).toMatchObject({ ok: true, startsAtGenesis: true, records: 63 + files.length - 1 });
      await unlink(files[1]!);
      const broken = await verifyAuditLog(files.filter((_, i) => i !== 1));
      expect(broken.firstBad?.file).toBe(files[2]);
      expect(broken.firstBad?.line).toBe(1);
      expect(broken.firstBad?.reason).toMatch(/between files: .* a rotated file is missing or out of order/);
      expect((await verifyAuditLog(await auditFileSet(path))).ok).toBe(false);
    });

    it("finds files given in the wrong order and a file that is missing altogether", async () => {
      const files = await writeLog(30, { maxBytes: 3000, keep: 20 });
      expect((await verifyAuditLog([...files].reverse())).ok).toBe(false);
      expect((await verifyAuditLog([...files, join(dir, "gone")])).firstBad?.reason).toContain("does not exist");
    });
  });

  describe("bytes as stored", () => {
    // Written by the writer before lines were hashed as bytes (commit 5084c4d): U+FFFD, é, an emoji, a lone surrogate.
    const before = resolve(import.meta.dirname, "../../fixtures/audit/written-before-byte-hashing.jsonl");

    it("passes a log written before, and the current writer continues it", async () => {
      await copyFile(before, path);
      expect(await verifyAuditLog([path])).toMatchObject({ ok: true, records: 4 });
      const log = new AuditLog(path);
      await log.append(toolCall({ server: "fs", tool: "écrire", arguments: { s: "🔒\uDC00" }, outcome: "ok", durationMs: 1, includeArguments: true }));
      await log.close();
      expect(await verifyAuditLog([path])).toMatchObject({ ok: true, records: 5 });
    });

    it("finds a byte that is not UTF-8 where U+FFFD was (the review's experiment)", async () => {
      const bytes = await readFile(before);
      const at = bytes.indexOf(Buffer.from([0xef, 0xbf, 0xbd]));
      expect(at).toBeGreaterThan(0);
      await writeFile(path, Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff]), bytes.subarray(at + 3)]));
      expect((await verifyAuditLog([path])).firstBad).toMatchObject({ line: 2, reason: expect.stringMatching(/not valid UTF-8/) });
    });

    it("reports a line longer than the bound without reading it whole", async () => {
      const bytes = await readFile(before);
      await writeFile(path, Buffer.concat([bytes, Buffer.alloc(5000, 0x61), Buffer.from("\nshort\n"), Buffer.alloc(3000, 0x62)]));
      const got = [];
      for await (const l of readLines(path, 0, 1000)) got.push({ n: l.number, len: l.bytes.length, terminated: l.terminated, tooLong: l.tooLong });
      expect(got.slice(4)).toEqual([
        { n: 5, len: 0, terminated: true, tooLong: true },
        { n: 6, len: 5, terminated: true, tooLong: false },
        { n: 7, len: 0, terminated: false, tooLong: true },
      ]);
    });
  });
});
