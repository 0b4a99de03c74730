// The textual forms of one secret value that the redactor masks: the value
// itself and the encodings a server or library commonly applies to it.
// Not responsible for matching (redactor.ts). Limits are in docs/secrets.md.

/** Derived forms shorter than this are not masked: they would hit ordinary text (and base64 data) too often. */
export const MIN_DERIVED_LENGTH = 8;
/** Lines of a multi-line value (a PEM key) at least this long are masked on their own too. */
export const MIN_LINE_LENGTH = 16;

/** Every form of `value` to mask, longest first, without duplicates. */
export function secretForms(value: string): string[] {
  const forms = new Set<string>([value]);
  const derived: string[] = [];
  // A server that trims what it received (a value with a stray space or newline) prints the trimmed form.
  if (value.trim() !== value && value.trim().length >= 4) forms.add(value.trim());
  const once = jsonEscape(value);
  derived.push(once, jsonEscape(once));
  derived.push(encodeURIComponent(value), safeEncodeUri(value), new URLSearchParams({ v: value }).toString().slice(2));
  const bytes = Buffer.from(value, "utf8");
  derived.push(bytes.toString("hex"), bytes.toString("hex").toUpperCase());
  derived.push(...base64Forms(bytes));
  if (/[\r\n]/.test(value)) {
    for (const line of value.split(/\r?\n/)) {
      const t = line.trim();
      if (t.length >= MIN_LINE_LENGTH) derived.push(t);
    }
  }
  for (const d of derived) if (d.length >= MIN_DERIVED_LENGTH) forms.add(d);
  return [...forms].sort((a, b) => b.length - a.length);
}

function jsonEscape(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

function safeEncodeUri(s: string): string {
  try {
    return encodeURI(s);
  } catch {
    return s; // lone surrogate: not encodable, the raw form covers it
  }
}

/**
 * Base64 and base64url of the value, standalone (with and without padding),
 * and the part that stays the same wherever the value sits inside a larger
 * encoded blob (`Basic base64("user:TOKEN")`): for each of the three byte
 * alignments, the characters that depend on the value's bytes alone.
 */
function base64Forms(bytes: Buffer): string[] {
  const out: string[] = [];
  const std = bytes.toString("base64");
  out.push(std, std.replace(/=+$/, ""), bytes.toString("base64url"));
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
