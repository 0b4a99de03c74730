// Best-effort line numbers for TOML paths. smol-toml gives positions only for
// syntax errors, so this scans the source for table headers and `key =` lines
// and returns the line of the deepest one that is a prefix of the path.
// Not a TOML parser: an array element is found by counting the elements after
// its key (strings, nesting and comments skipped); inline tables give their key's line.

import type { PathSegment } from "./config-error.js";

interface Entry {
  readonly keys: readonly string[];
  readonly line: number;
  /** Offset in the source just after `=` (key lines only). */
  readonly valueAt?: number;
}

export interface LineIndex {
  readonly source: string;
  readonly entries: readonly Entry[];
}

const KEY = String.raw`(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')`;
const DOTTED = String.raw`${KEY}(?:\s*\.\s*${KEY})*`;
const HEADER_RE = new RegExp(String.raw`^\s*\[\[?\s*(${DOTTED})\s*\]\]?\s*(?:#.*)?$`);
const KEYLINE_RE = new RegExp(String.raw`^\s*(${DOTTED})\s*=`);
const SEG_RE = new RegExp(KEY, "g");

/** Index of every header and key line of a TOML document. */
export function indexLines(source: string): LineIndex {
  const entries: Entry[] = [];
  let offset = 0;
  let table: string[] = [];
  let inMultiline: string | null = null;
  const lines = source.split(/\r?\n/);
  for (let i = 0; i < lines.length; offset += lines[i]!.length + 1, i++) {
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
      entries.push({ keys: [...table, ...splitKey(key[1]!)], line: i + 1, valueAt: offset + key[0].length });
      const rest = text.slice(key[0].length);
      for (const delim of ['"""', "'''"]) {
        if (countDelims(rest, delim) % 2 === 1) inMultiline = delim;
      }
    }
  }
  return { source, entries };
}

/** The line of a TOML path, or null when no header or key line leads to it. */
export function lineOf(index: LineIndex, path: readonly PathSegment[]): number | null {
  const target: string[] = [];
  for (const seg of path) {
    if (typeof seg === "number") break;
    target.push(seg);
  }
  let best: Entry | null = null;
  for (const entry of index.entries) {
    if (entry.keys.length > target.length) continue;
    if (!entry.keys.every((k, i) => k === target[i])) continue;
    if (best === null || entry.keys.length > best.keys.length) best = entry;
  }
  if (best === null || best.keys.length === 0) return null;
  const next = path[best.keys.length];
  if (best.valueAt !== undefined && best.keys.length === target.length && typeof next === "number") {
    return elementLine(index.source, best.valueAt, next) ?? best.line;
  }
  return best.line;
}

/** Line of element `n` of the array that starts after `from`, or null. */
function elementLine(source: string, from: number, n: number): number | null {
  let i = from;
  while (i < source.length && /[ \t]/.test(source[i]!)) i++;
  if (source[i] !== "[") return null;
  let depth = 0;
  let element = 0;
  let seenValue = false;
  for (; i < source.length; i++) {
    const c = source[i]!;
    if (c === "#") {
      while (i < source.length && source[i] !== "\n") i++;
      continue;
    }
    if (c === '"' || c === "'") {
      if (depth === 1 && !seenValue) {
        if (element === n) return lineAt(source, i);
        seenValue = true;
      }
      const triple = source.startsWith(c.repeat(3), i);
      const end = triple ? source.indexOf(c.repeat(3), i + 3) : findClose(source, i, c);
      if (end === -1) return null;
      i = triple ? end + 2 : end;
      continue;
    }
    if (c === "[" || c === "{") {
      if (depth === 1 && !seenValue) {
        if (element === n) return lineAt(source, i);
        seenValue = true;
      }
      depth++;
    } else if (c === "]" || c === "}") {
      depth--;
      if (depth === 0) return null;
    } else if (c === "," && depth === 1) {
      element++;
      seenValue = false;
    } else if (depth === 1 && !seenValue && !/\s/.test(c)) {
      if (element === n) return lineAt(source, i);
      seenValue = true;
    }
  }
  return null;
}

function findClose(source: string, start: number, quote: string): number {
  for (let i = start + 1; i < source.length; i++) {
    if (source[i] === "\n") return -1;
    if (quote === '"' && source[i] === "\\") i++;
    else if (source[i] === quote) return i;
  }
  return -1;
}

function lineAt(source: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (source[i] === "\n") line++;
  return line;
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
