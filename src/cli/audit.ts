// `nucleus audit verify|tail`: checks an audit log's hash chain, and shows its
// records with filters. Parsing and printing only; the work is in src/audit/.

import { open, stat, type FileHandle } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { auditFileSet, readLines } from "../audit/files.js";
import { formatRecord, matches, type TailFilter } from "../audit/format.js";
import { decodeRecord, MAX_RECORD_BYTES, type AuditRecord } from "../audit/record.js";
import { verifyAuditLog } from "../audit/verify.js";
import { ExitCode, NucleusError } from "../errors.js";
import { discoverConfig } from "../config/discover.js";
import { loadConfig } from "../config/load.js";
import type { CliCommand, CliContext } from "./command.js";

const USAGE = `Usage:
  nucleus audit verify [--json] FILE...
  nucleus audit tail [FILE] [--server S] [--refused] [--type T] [-n N] [--follow] [--json]

verify  Checks the hash chain: every record matches its own hash, links to the
        one before it, and seq counts up by one. Given the current file, its
        rotated files (FILE.1, FILE.2, …) are checked with it. Exit 0 when the
        chain is intact, 1 with the first broken record (file:line and why).
tail    Prints the last records (default 10), oldest first.
  --server S   only records of server S
  --refused    only refusals (policy.refused, refused tool calls, denied egress)
  --type T     only type T (tool.call) or a family (server → server.*)
  -n N         how many records (default 10)
  --follow     keep printing new records as they are written (Ctrl-C to stop)
  --json       print the records as JSON Lines, as stored`;

/** The `[gateway] audit_log` of the config (-c, ./nucleus.toml, or the user's), or null. */
export async function defaultAuditPath(ctx: CliContext): Promise<string | null> {
  // The config's [gateway] audit_log, when a config is found; no config is not an error here.
  let path: string;
  try {
    path = discoverConfig({ flag: ctx.configPath, env: ctx.env });
  } catch {
    return null;
  }
  return (await loadConfig(path)).gateway.auditLog;
}

export const auditCommand: CliCommand = {
  name: "audit",
  summary: "verify the audit log's hash chain, or show its records",
  usage: USAGE,
  async run(args, ctx) {
    const [sub, ...rest] = args;
    if (sub === "verify") return verify(rest, ctx);
    if (sub === "tail") return tail(rest, ctx);
    ctx.stderr.write(`nucleus audit: ${sub ? `unknown subcommand "${sub}"` : "missing subcommand"}; use verify or tail\n\n${USAGE}\n`);
    return ExitCode.usage;
  },
};

async function verify(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, strict: true, options: { json: { type: "boolean" } } });
  if (positionals.length === 0) throw new NucleusError("USAGE", "nucleus audit verify needs at least one FILE", { hint: "nucleus audit verify ~/.local/state/nucleus/audit.jsonl" });
  const files = await orderedFiles(positionals);
  const v = await verifyAuditLog(files);
  if (values.json) {
    ctx.stdout.write(`${JSON.stringify({ files, ...v })}\n`);
    return v.ok ? ExitCode.ok : ExitCode.failure;
  }
  if (!v.ok && v.firstBad) {
    const where = v.firstBad.line > 0 ? `${v.firstBad.file}:${v.firstBad.line}` : v.firstBad.file;
    ctx.stdout.write(`${where}: broken: ${v.firstBad.reason}\n`);
    ctx.stdout.write(`${v.records} record${v.records === 1 ? "" : "s"} before it verified${v.lastSeq !== null ? ` (last good: seq ${v.lastSeq})` : ""}.\n`);
    return ExitCode.failure;
  }
  const origin = v.startsAtGenesis ? "from the chain's first record" : `from seq ${v.firstSeq} (older records were rotated away)`;
  ctx.stdout.write(`ok: ${v.records} records in ${files.length} file${files.length === 1 ? "" : "s"}, ${origin}, chain ${v.chain}\n`);
  ctx.stdout.write(`head: seq ${v.lastSeq} hash ${v.lastHash}\n`);
  return ExitCode.ok;
}

/** One FILE: it and its rotated siblings. Several: those, ordered by their first record's seq. */
async function orderedFiles(paths: string[]): Promise<string[]> {
  if (paths.length === 1) return auditFileSet(resolve(paths[0]!));
  const unique = [...new Set(paths.map((p) => resolve(p)))];
  const keyed = await Promise.all(unique.map(async (p) => ({ p, seq: await firstSeq(p) })));
  return keyed.sort((a, b) => a.seq - b.seq).map((k) => k.p);
}

async function firstSeq(path: string): Promise<number> {
  try {
    for await (const line of readLines(path)) {
      const r = decodeRecord(line.bytes);
      return r.ok ? r.record.seq : -Infinity;
    }
  } catch {
    // unreadable: verify reports it
  }
  return -Infinity;
}

async function tail(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      server: { type: "string" },
      type: { type: "string" },
      refused: { type: "boolean" },
      n: { type: "string", short: "n" },
      follow: { type: "boolean", short: "f" },
      json: { type: "boolean" },
    },
  });
  if (positionals.length > 1) throw new NucleusError("USAGE", "nucleus audit tail takes one FILE", { hint: "Rotated files are read with it." });
  const count = Number(values.n ?? "10");
  if (!Number.isSafeInteger(count) || count < 0) throw new NucleusError("USAGE", `-n must be a whole number; got "${values.n}"`);
  const file = positionals[0] ? resolve(positionals[0]) : await defaultAuditPath(ctx);
  if (!file) {
    throw new NucleusError("USAGE", "nucleus audit tail needs a FILE: none was given and no [gateway] audit_log is configured", {
      hint: "nucleus audit tail ~/.local/state/nucleus/audit.jsonl",
    });
  }
  if (!(await stat(file).catch(() => null))) throw new NucleusError("USAGE", `the audit log ${file} does not exist`);
  const filter: TailFilter = { server: values.server, type: values.type, refused: values.refused };
  const print = (r: AuditRecord, raw: string): void => void ctx.stdout.write(`${values.json ? raw : formatRecord(r)}\n`);
  const last: Array<[AuditRecord, string]> = [];
  let invalid = 0;
  let seen = 0;
  for (const f of await auditFileSet(file)) {
    for await (const line of readLines(f)) {
      if (!line.terminated) continue; // a write in progress, or a truncated tail: verify reports it
      const d = decodeRecord(line.bytes);
      if (!d.ok) {
        invalid++;
        continue;
      }
      seen = Math.max(seen, d.record.seq);
      if (!matches(d.record, filter)) continue;
      last.push([d.record, d.text]);
      if (last.length > count) last.shift();
    }
  }
  for (const [r, raw] of last) print(r, raw);
  const lastSeq = seen;
  if (invalid > 0) ctx.stderr.write(`nucleus audit: ${invalid} line${invalid === 1 ? " is" : "s are"} not valid audit records; run \`nucleus audit verify ${file}\`\n`);
  if (!values.follow) return ExitCode.ok;
  return follow(file, filter, print, lastSeq);
}

/**
 * Prints records appended after `lastSeq`; follows the file across rotations
 * (several may happen between two polls). Runs until the process is stopped.
 */
async function follow(file: string, filter: TailFilter, print: (r: AuditRecord, raw: string) => void, lastSeq: number): Promise<number> {
  let fh = await open(file, "r");
  let offset = (await fh.stat()).size;
  let pending = Buffer.alloc(0);
  const take = (raw: Buffer): void => {
    const d = decodeRecord(raw);
    if (!d.ok || d.record.seq <= lastSeq) return;
    lastSeq = d.record.seq;
    if (matches(d.record, filter)) print(d.record, d.text);
  };
  const drain = async (): Promise<void> => {
    const { size } = await fh.stat();
    if (size <= offset) return;
    // Bytes, not text: a character split between two reads stays whole. Bounded like every reader.
    const buf = Buffer.alloc(Math.min(size - offset, MAX_RECORD_BYTES + 1));
    await fh.read(buf, 0, buf.length, offset);
    offset += buf.length;
    let data = pending.length ? Buffer.concat([pending, buf]) : buf;
    let nl: number;
    while ((nl = data.indexOf(0x0a)) !== -1) {
      take(data.subarray(0, nl));
      data = data.subarray(nl + 1);
    }
    pending = data.length > MAX_RECORD_BYTES ? Buffer.alloc(0) : Buffer.from(data);
  };
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    await drain();
    const now = await stat(file).catch(() => null);
    if (now && now.ino !== (await fh.stat()).ino) {
      // Rotated, maybe several times: read the rotated files for records after lastSeq, then go on in the new file.
      await drain();
      await fh.close();
      fh = await openWhenThere(file);
      await readRotated(file, take);
      offset = 0;
      pending = Buffer.alloc(0);
    }
  }
}

const gone = (err: unknown) => (err as NodeJS.ErrnoException).code === "ENOENT";

/** Opens `file`, waiting out the moment of a rotation when it is renamed away and not yet created anew. */
async function openWhenThere(file: string): Promise<FileHandle> {
  for (let i = 0; ; i++) {
    try {
      return await open(file, "r");
    } catch (err) {
      if (!gone(err) || i >= 100) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * Every terminated line of the rotated files, oldest file first. A rotation running meanwhile renames them
 * (FILE.1 → FILE.2 …): a file gone under the reader is read again under its new name in another pass (what
 * was taken already is skipped by its sequence number).
 */
async function readRotated(file: string, take: (raw: Buffer) => void): Promise<void> {
  for (let pass = 0; pass < 5; pass++) {
    let missed = false;
    for (const f of await auditFileSet(file)) {
      if (f === file) continue;
      try {
        for await (const line of readLines(f)) if (line.terminated) take(line.bytes);
      } catch (err) {
        if (!gone(err)) throw err;
        missed = true;
      }
    }
    if (!missed) return;
  }
}
