// Best-effort line numbers for TOML paths. smol-toml gives positions only for
// syntax errors, so this scans the source for table headers and `key =` lines
// and returns the line of the deepest one that is a prefix of the path.
// Not a TOML parser: multi-line arrays report the line of their key.

import type { PathSegment } from "./config-error.js";

interface Entry {
  readonly keys: readonly string[];
  readonly line: number;
}

const KEY = String.raw`(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')`;
const DOTTED = String.raw`${KEY}(?:\s*\.\s*${KEY})*`;
const HEADER_RE = new RegExp(String.raw`^\s*\[\[?\s*(${DOTTED})\s*\]\]?\s*(?:#.*)?$`);
const KEYLINE_RE = new RegExp(String.raw`^\s*(${DOTTED})\s*=`);
const SEG_RE = new RegExp(KEY, "g");

/** Index of every header and key line of a TOML document. */
export function indexLines(source: string): Entry[] {
  const entries: Entry[] = [];
  let table: string[] = [];
  let inMultiline: string | null = null;
  const lines = source.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    if (inMultiline !== null) {
      if (countDelims(text, inMultiline) % 2 === 1) inMultiline = null;
      continue;
    }
    const header = HEADER_RE.exec(text);
    if (header) {
      table = splitKey(header[1]!);
      entries.push({ keys: table, line: i + 1 });
      continue;
    }
    const key = KEYLINE_RE.exec(text);
    if (key) {
      entries.push({ keys: [...table, ...splitKey(key[1]!)], line: i + 1 });
      const rest = text.slice(key[0].length);
      for (const delim of ['"""', "'''"]) {
        if (countDelims(rest, delim) % 2 === 1) inMultiline = delim;
      }
    }
  }
  return entries;
}

/** The line of a TOML path, or null when no header or key line leads to it. */
export function lineOf(index: readonly Entry[], path: readonly PathSegment[]): number | null {
  const target: string[] = [];
  for (const seg of path) {
    if (typeof seg === "number") break;
    target.push(seg);
  }
  let best: Entry | null = null;
  for (const entry of index) {
    if (entry.keys.length > target.length) continue;
    if (!entry.keys.every((k, i) => k === target[i])) continue;
    if (best === null || entry.keys.length > best.keys.length) best = entry;
  }
  return best === null || best.keys.length === 0 ? null : best.line;
}

function splitKey(text: string): string[] {
  return (text.match(SEG_RE) ?? []).map((s) => {
    if (s.startsWith('"')) return JSON.parse(s) as string;
    if (s.startsWith("'")) return s.slice(1, -1);
    return s;
  });
}

function countDelims(text: string, delim: string): number {
  return text.split(delim).length - 1;
}
