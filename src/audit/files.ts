// Finding an audit log's rotated files and reading audit files line by line
// (streamed, so a large log is not loaded whole). Not responsible for
// checking records (verify.ts).

import { createReadStream } from "node:fs";
import { readdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

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
  readonly text: string;
  /** False for a last line without a newline (a truncated tail). */
  readonly terminated: boolean;
}

/** The lines of a file, streamed. */
export async function* readLines(path: string, start = 0): AsyncGenerator<Line> {
  let rest = Buffer.alloc(0);
  let number = 0;
  for await (const chunk of createReadStream(path, { start, highWaterMark: 1024 * 1024 })) {
    let buf = rest.length ? Buffer.concat([rest, chunk as Buffer]) : (chunk as Buffer);
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) !== -1) {
      yield { number: ++number, text: buf.subarray(0, nl).toString("utf8"), terminated: true };
      buf = buf.subarray(nl + 1);
    }
    rest = Buffer.from(buf);
  }
  if (rest.length > 0) yield { number: ++number, text: rest.toString("utf8"), terminated: false };
}
