// Config problems: one record per mistake (TOML path, line, sentence), the
// rendering of zod issues into such records, and the CONFIG_INVALID error that
// lists them all. Not responsible for finding line numbers (lines.ts).

import type { z } from "zod";
import { NucleusError } from "../errors.js";

export interface ConfigProblem {
  /** TOML path, e.g. `servers.github.allowed_hosts[2]`; "" for the document as a whole. */
  readonly path: string;
  /** 1-based line, best effort; null when unknown. */
  readonly line: number | null;
  readonly message: string;
}

export type PathSegment = string | number;

/** Collects problems during validation; lines are filled in afterwards from the source text. */
export class Problems {
  readonly items: Array<{ path: PathSegment[]; message: string; line?: number }> = [];

  add(path: PathSegment[], message: string, line?: number): void {
    this.items.push(line === undefined ? { path, message } : { path, message, line });
  }

  /** `keysAt(path)`: the keys valid in the table at `path` (relative to `base`), for "did you mean". */
  addZodIssues(base: PathSegment[], issues: readonly z.core.$ZodIssue[], keysAt: (path: PathSegment[]) => readonly string[]): void {
    for (const issue of issues) this.addZodIssue(base, [], issue, keysAt);
  }

  get length(): number {
    return this.items.length;
  }

  private addZodIssue(base: PathSegment[], prefix: PathSegment[], issue: z.core.$ZodIssue, keysAt: (path: PathSegment[]) => readonly string[]): void {
    const rel = [...prefix, ...issue.path.map((p) => (typeof p === "symbol" ? String(p) : p))];
    const path = [...base, ...rel];
    switch (issue.code) {
      case "unrecognized_keys":
        for (const key of issue.keys) {
          const guess = closest(key, keysAt(rel));
          this.add([...path, key], `unknown key${guess ? ` (did you mean "${guess}"?)` : ""}`);
        }
        return;
      case "invalid_union": {
        // Report the branch that matched the value's type (e.g. the inline-table form).
        const branch = issue.errors.find((errs) => !errs.some((e) => e.path.length === 0 && e.code === "invalid_type"));
        if (branch) for (const sub of branch) this.addZodIssue(base, rel, sub, keysAt);
        else this.add(path, issue.message === "Invalid input" ? "has the wrong type" : issue.message);
        return;
      }
      case "invalid_key":
        this.add(path, `invalid key name: ${issue.issues.map((i) => i.message).join("; ")}`);
        return;
      case "invalid_type":
        this.add(path, issue.message.includes("received undefined") ? "is required" : `expected ${describeExpected(issue.expected)}, got ${describeReceived(issue.message)}`);
        return;
      case "invalid_value":
        this.add(path, `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`);
        return;
      case "too_small":
      case "too_big": {
        const word = issue.code === "too_small" ? (issue.inclusive === false ? "greater than" : "at least") : issue.inclusive === false ? "less than" : "at most";
        const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
        if (issue.origin === "array") {
          this.add(path, issue.code === "too_small" && Number(bound) === 1 ? "must not be empty" : `must have ${word} ${bound} entries`);
          return;
        }
        if (issue.origin === "string" && issue.code === "too_small" && Number(bound) === 1) {
          this.add(path, "must not be empty");
          return;
        }
        this.add(path, `must be ${issue.origin === "string" ? `${word} ${bound} characters long` : `${word} ${bound}`}`);
        return;
      }
      default:
        this.add(path, issue.message);
    }
  }
}

function describeReceived(message: string): string {
  const received = message.replace(/.*received /, "");
  return received === "TomlDate" || received === "Date" ? "a date/time" : received;
}

function describeExpected(expected: string): string {
  if (expected === "int") return "an integer";
  if (expected === "record" || expected === "object") return "a table";
  if (expected === "array") return "an array";
  return `a ${expected}`;
}

/** `servers.github.allowed_hosts[2]`; keys that are not bare TOML keys are quoted. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else {
      const key = /^[A-Za-z0-9_-]+$/.test(seg) ? seg : JSON.stringify(seg);
      out += out === "" ? key : `.${key}`;
    }
  }
  return out;
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line === null ? "" : ` (line ${p.line})`;
  return p.path === "" ? `${p.message}${where}` : `${p.path}: ${p.message}${where}`;
}

/** Sorted by path (array indices in numeric order), then line. */
export function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const key = (p: ConfigProblem) => p.path.replace(/\[(\d+)\]/g, (_, n: string) => `[${n.padStart(6, "0")}]`);
  return [...problems].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (ka !== kb) return ka < kb ? -1 : 1;
    return (a.line ?? 0) - (b.line ?? 0);
  });
}

export function configInvalidError(source: string, problems: readonly ConfigProblem[]): NucleusError {
  const n = problems.length;
  const lines = problems.map((p) => `  - ${formatProblem(p)}`);
  return new NucleusError("CONFIG_INVALID", `config file ${source} has ${n} ${n === 1 ? "problem" : "problems"}:\n${lines.join("\n")}`, {
    hint: "fix the entries above; `nucleus check` re-validates, and docs/config.md lists every key",
  });
}

function closest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDist = Infinity;
  for (const c of candidates) {
    const w = word.toLowerCase();
    const d = c.startsWith(w) || w.startsWith(c) ? 1 : editDistance(w, c);
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  return best !== null && bestDist <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  let before = prev;
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      // A swap of two neighbours ("form" for "from") counts as one edit.
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) cur[j] = Math.min(cur[j]!, before[j - 2]! + 1);
    }
    before = prev;
    prev = cur;
  }
  return prev[b.length]!;
}
