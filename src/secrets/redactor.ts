// Masks every loaded secret value (and its common encodings) in text and in
// JSON values, for logs, audit records, relayed stderr and tool results.
// Not responsible for loading secrets (load.ts) or deciding where to apply it.

import { secretForms } from "./encodings.js";
import { MIN_SECRET_LENGTH } from "./load.js";

/** The mask. It never says which secret matched: that would tell a reader more than "a secret was here". */
export const REDACTED = "[REDACTED]";

/** Deeper than this, a JSON value being redacted is masked whole. */
export const MAX_JSON_DEPTH = 256;

/**
 * Forms longer than this are searched with indexOf rather than in the one combined regular
 * expression: V8 refuses to compile a pattern of a few hundred thousand characters (a 20 KB
 * certificate bundle and its encodings), and would say so in an error holding the pattern.
 */
export const LONG_FORM_LENGTH = 512;

interface Span {
  start: number;
  end: number;
}

export class SecretRedactor {
  private readonly forms = new Set<string>();
  private readonly names = new Set<string>();
  /** Short forms, combined (null when there are none). */
  private pattern: RegExp | null = null;
  /** Long forms (or every form, should the pattern not compile), longest first. */
  private long: string[] = [];

  /** The redactor as a plain function, for `logger.setRedactor(redactor.fn)`. */
  readonly fn = (text: string): string => this.redact(text);

  /**
   * Registers a loaded value. Values shorter than MIN_SECRET_LENGTH are not
   * masked (loadSecret refuses them, so none reach here from a source).
   */
  add(name: string, value: string): void {
    this.names.add(name);
    if (value.length < MIN_SECRET_LENGTH) return;
    let grew = false;
    for (const form of secretForms(value)) {
      if (!this.forms.has(form)) {
        this.forms.add(form);
        grew = true;
      }
    }
    if (grew) this.compile();
  }

  /** How many distinct forms are masked (for diagnostics; no values). */
  get formCount(): number {
    return this.forms.size;
  }

  /** Names of the secrets registered (for `explain`-style diagnostics; no values). */
  secretNames(): string[] {
    return [...this.names].sort();
  }

  private get empty(): boolean {
    return this.pattern === null && this.long.length === 0;
  }

  /**
   * Replaces every occurrence of any form with REDACTED; overlapping occurrences are masked as one span.
   * SECURITY: fails closed: should matching itself fail, the whole text is masked.
   */
  redact(text: string): string {
    if (this.empty || text.length === 0) return text;
    let spans: Span[];
    try {
      spans = this.spans(text);
    } catch {
      return REDACTED;
    }
    if (spans.length === 0) return text;
    let out = "";
    let copied = 0;
    for (const sp of spans) {
      out += text.slice(copied, sp.start) + REDACTED;
      copied = sp.end;
    }
    return out + text.slice(copied);
  }

  /** True when `text` contains any form of any registered secret (true, failing closed, should matching fail). */
  contains(text: string): boolean {
    if (this.empty) return false;
    try {
      const re = this.pattern;
      if (re !== null) {
        re.lastIndex = 0;
        if (re.test(text)) return true;
      }
      return this.long.some((f) => text.includes(f));
    } catch {
      return true;
    }
  }

  /** Every occurrence of every form, merged into disjoint spans in order. */
  private spans(text: string): Span[] {
    const found: Span[] = [];
    const re = this.pattern;
    if (re !== null) {
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        found.push({ start: m.index, end: m.index + m[0].length });
        // Restart one past the match start: a second form may begin inside this one and end after it.
        re.lastIndex = m.index + 1;
      }
    }
    for (const form of this.long) {
      for (let at = text.indexOf(form); at >= 0; at = text.indexOf(form, at + 1)) found.push({ start: at, end: at + form.length });
    }
    if (found.length <= 1) return found;
    found.sort((a, b) => a.start - b.start);
    const merged: Span[] = [found[0]!];
    for (const sp of found.slice(1)) {
      const last = merged[merged.length - 1]!;
      if (sp.start <= last.end) last.end = Math.max(last.end, sp.end);
      else merged.push(sp);
    }
    return merged;
  }

  /**
   * Deep-redacts a JSON value (a JSON-RPC result or notification): strings,
   * object keys, and numbers whose digits hold a secret (replaced by the
   * REDACTED string). Returns the same object when nothing matched.
   */
  redactJson<T>(value: T): T {
    if (this.empty) return value;
    let serialised: string | undefined;
    try {
      serialised = JSON.stringify(value);
    } catch {
      serialised = undefined; // not plain JSON (cycle, bigint): walk it all
    }
    // Fast path: a value inside a JSON string appears in the serialisation in
    // its JSON-escaped form, which is one of the masked forms.
    if (serialised !== undefined && !this.contains(serialised)) return value;
    return this.walk(value, new WeakSet(), 0) as T;
  }

  private walk(value: unknown, seen: WeakSet<object>, depth: number): unknown {
    if (typeof value === "string") return this.redact(value);
    if (typeof value === "number" || typeof value === "bigint") {
      return this.contains(String(value)) ? REDACTED : value;
    }
    if (value === null || typeof value !== "object") return value;
    // SECURITY: fail closed on a cycle or on nesting no honest result has (a hostile
    // server's 200,000-deep array would otherwise overflow the stack).
    if (seen.has(value) || depth >= MAX_JSON_DEPTH) return REDACTED;
    seen.add(value);
    if (Array.isArray(value)) return value.map((v) => this.walk(v, seen, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[this.redact(k)] = this.walk(v, seen, depth + 1);
    return out;
  }

  private compile(): void {
    const sorted = [...this.forms].sort((a, b) => b.length - a.length);
    const short = sorted.filter((f) => f.length <= LONG_FORM_LENGTH);
    this.long = sorted.filter((f) => f.length > LONG_FORM_LENGTH);
    this.pattern = null;
    if (short.length === 0) return;
    try {
      const re = new RegExp(short.map(escapeRegExp).join("|"), "g");
      re.test(""); // V8 compiles on first use: fail here, not in the middle of masking
      this.pattern = re;
    } catch {
      // SECURITY: never lose a form: search them all with indexOf (the error, which quotes the pattern, is dropped).
      this.long = sorted;
    }
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}
