// Masks every loaded secret value (and its common encodings) in text and in
// JSON values, for logs, audit records, relayed stderr and tool results.
// Not responsible for loading secrets (load.ts) or deciding where to apply it.

import { secretForms } from "./encodings.js";
import { MIN_SECRET_LENGTH } from "./load.js";

/** The mask. It never says which secret matched: that would tell a reader more than "a secret was here". */
export const REDACTED = "[REDACTED]";

/** Deeper than this, a JSON value being redacted is masked whole. */
export const MAX_JSON_DEPTH = 256;

export class SecretRedactor {
  private readonly forms = new Set<string>();
  private readonly names = new Set<string>();
  private pattern: RegExp | null = null;

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

  /** Replaces every occurrence of any form with REDACTED; overlapping occurrences are masked as one span. */
  redact(text: string): string {
    const re = this.pattern;
    if (re === null || text.length === 0) return text;
    re.lastIndex = 0;
    let m = re.exec(text);
    if (m === null) return text;
    let out = "";
    let copied = 0;
    let spanStart = m.index;
    let spanEnd = m.index + m[0].length;
    for (;;) {
      // Restart one past the match start: a second form may begin inside this one and end after it.
      re.lastIndex = m.index + 1;
      m = re.exec(text);
      if (m !== null && m.index <= spanEnd) {
        spanEnd = Math.max(spanEnd, m.index + m[0].length);
        continue;
      }
      out += text.slice(copied, spanStart) + REDACTED;
      copied = spanEnd;
      if (m === null) break;
      spanStart = m.index;
      spanEnd = m.index + m[0].length;
    }
    return out + text.slice(copied);
  }

  /** True when `text` contains any form of any registered secret. */
  contains(text: string): boolean {
    const re = this.pattern;
    if (re === null) return false;
    re.lastIndex = 0;
    return re.test(text);
  }

  /**
   * Deep-redacts a JSON value (a JSON-RPC result or notification): strings,
   * object keys, and numbers whose digits hold a secret (replaced by the
   * REDACTED string). Returns the same object when nothing matched.
   */
  redactJson<T>(value: T): T {
    if (this.pattern === null) return value;
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
    this.pattern = new RegExp(sorted.map(escapeRegExp).join("|"), "g");
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}
