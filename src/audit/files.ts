// Finding an audit log's rotated files and reading audit files line by line
// (streamed, so a large log is not loaded whole). Not responsible for
// checking records (verify.ts).

import { createReadStream } from "node:fs";
import { readdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { MAX_RECORD_BYTES } from "./record.js";

/** FILE.N … FILE.1, FILE: the files of one log, oldest first (those that exist). */
export async function auditFileSet(path: string): Promise<string[]> {
  const dir = dirname(path);
  const base = basename(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [path];
  }
  const rotated = names
    .map((n) => (n.startsWith(`${base}.`) ? /^\d+$/.exec(n.slice(base.length + 1)) : null))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[0]))
    .filter((n) => n > 0)
    .sort((a, b) => b - a)
    .map((n) => join(dir, `${base}.${n}`));
  return [...rotated, path];
}

export interface Line {
  /** 1-based line number in its file. */
  readonly number: number;
  /** The line's bytes as stored, without the newline (empty when `tooLong`). */
  readonly bytes: Buffer;
  /** False for a last line without a newline (a truncated tail). */
  readonly terminated: boolean;
  /** True when the line is longer than the bound: its bytes were skipped, not kept. */
  readonly tooLong: boolean;
}

/** The lines of a file, streamed; a line longer than `maxLineBytes` is skipped and reported, never buffered whole. */
export async function* readLines(path: string, start = 0, maxLineBytes = MAX_RECORD_BYTES): AsyncGenerator<Line> {
  let rest = Buffer.alloc(0);
  let number = 0;
  // SECURITY: a hostile or damaged file may hold one endless line; past the bound its bytes are dropped.
  let skipping = false;
  for await (const chunk of createReadStream(path, { start, highWaterMark: 1024 * 1024 })) {
    let buf = rest.length ? Buffer.concat([rest, chunk as Buffer]) : (chunk as Buffer);
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) !== -1) {
      if (skipping || nl > maxLineBytes) yield { number: ++number, bytes: Buffer.alloc(0), terminated: true, tooLong: true };
      else yield { number: ++number, bytes: Buffer.from(buf.subarray(0, nl)), terminated: true, tooLong: false };
      skipping = false;
      buf = buf.subarray(nl + 1);
    }
    if (buf.length > maxLineBytes) {
      skipping = true;
      buf = Buffer.alloc(0);
    }
    rest = Buffer.from(buf);
  }
  if (skipping) yield { number: ++number, bytes: Buffer.alloc(0), terminated: false, tooLong: true };
  else if (rest.length > 0) yield { number: ++number, bytes: rest, terminated: false, tooLong: false };
}
