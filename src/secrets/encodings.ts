// The textual forms of one secret value that the redactor masks: the value
// itself and the encodings a server or library commonly applies to it.
// Not responsible for matching (redactor.ts). Limits are in docs/secrets.md.

/** Partial forms (base64 cores) shorter than this are not masked: they would hit ordinary text and base64 data too often. */
export const MIN_PARTIAL_LENGTH = 8;
/** Wrapped base64 lines masked per width (76, 64): values up to about 3.6 KB are covered whole. */
export const MAX_WRAPPED_LINES = 64;
/** Lines of a multi-line value (a PEM key) at least this long are masked on their own too. */
export const MIN_LINE_LENGTH = 16;

/** Every form of `value` to mask, longest first, without duplicates. */
export function secretForms(value: string): string[] {
  const forms = new Set<string>([value]);
  // Whole-value encodings: never shorter than the value, so they are masked whatever their length.
  // (redactJson's fast path relies on the JSON-escaped form being present.)
  const whole: string[] = [];
  // Partial forms: only when long enough.
  const partial: string[] = [];
  // A server that trims what it received (a value with a stray space or newline) prints the trimmed form.
  if (value.trim() !== value && value.trim().length >= 4) forms.add(value.trim());
  const once = jsonEscape(value);
  whole.push(once, jsonEscape(once));
  // JSON as other languages write it: non-ASCII as \uXXXX (Python's ensure_ascii, either case), "/" escaped as
  // well (PHP's default).
  const slashed = once.replace(/\//g, "\\/");
  whole.push(slashed, asciiEscape(once, false), asciiEscape(once, true), asciiEscape(slashed, false), asciiEscape(slashed, true));
  const uriComponent = encodeURIComponent(value);
  whole.push(uriComponent, safeEncodeUri(value), new URLSearchParams({ v: value }).toString().slice(2));
  // Percent-encoding with lower-case hex digits (some encoders write %2f).
  whole.push(uriComponent.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));
  const bytes = Buffer.from(value, "utf8");
  whole.push(bytes.toString("hex"), bytes.toString("hex").toUpperCase());
  const b64 = bytes.toString("base64");
  whole.push(b64, b64.replace(/=+$/, ""), bytes.toString("base64url"));
  partial.push(...base64Cores(bytes));
  // MIME (76 characters a line) and PEM (64) wrapped base64 of the value: each whole line (for the first
  // MAX_WRAPPED_LINES lines: a longer value's later lines are a documented limit, not thousands of forms).
  for (const width of [76, 64]) {
    for (let i = 0; i + width <= b64.length && i < width * MAX_WRAPPED_LINES; i += width) partial.push(b64.slice(i, i + width));
  }
  if (/[\r\n]/.test(value)) {
    for (const line of value.split(/\r?\n/)) {
      const t = line.trim();
      if (t.length >= MIN_LINE_LENGTH) partial.push(t);
    }
  }
  for (const w of whole) forms.add(w);
  for (const p of partial) if (p.length >= MIN_PARTIAL_LENGTH) forms.add(p);
  return [...forms].sort((a, b) => b.length - a.length);
}

function jsonEscape(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

/** `json` (already JSON-escaped) with every non-ASCII UTF-16 unit as \uXXXX. */
function asciiEscape(json: string, upper: boolean): string {
  return json.replace(/[\u0080-\uffff]/g, (c) => {
    const hex = c.charCodeAt(0).toString(16).padStart(4, "0");
    return `\\u${upper ? hex.toUpperCase() : hex}`;
  });
}

function safeEncodeUri(s: string): string {
  try {
    return encodeURI(s);
  } catch {
    return s; // lone surrogate: not encodable, the raw form covers it
  }
}

/**
 * The part of the base64 (and base64url) encoding that stays the same wherever
 * the value sits inside a larger encoded blob (`Basic base64("user:TOKEN")`):
 * for each of the three byte alignments, the characters that depend on the
 * value's bytes alone.
 */
function base64Cores(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let shift = 0; shift < 3; shift++) {
    const padded = Buffer.concat([Buffer.alloc(shift), bytes]);
    const enc = padded.toString("base64");
    const start = shift === 0 ? 0 : 4; // the first group mixes in bytes before the value
    const end = Math.floor(padded.length / 3) * 4; // the last partial group mixes in bytes after it
    if (end - start <= 0) continue;
    const core = enc.slice(start, end);
    out.push(core, core.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  return out;
}
