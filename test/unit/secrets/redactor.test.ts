import { describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH, REDACTED, SecretRedactor } from "../../../src/secrets/redactor.js";

const TOKEN = "ghp_Zx9/Qw+7 \"t\\k\"&n=1";

function redactor(...values: string[]): SecretRedactor {
  const r = new SecretRedactor();
  values.forEach((v, i) => r.add(`S${i}`, v));
  return r;
}

describe("SecretRedactor.redact", () => {
  const r = redactor(TOKEN);
  const bytes = Buffer.from(TOKEN);
  const forms: Record<string, string> = {
    raw: TOKEN,
    "JSON-escaped": JSON.stringify(TOKEN).slice(1, -1),
    "JSON-escaped twice": JSON.stringify(JSON.stringify(TOKEN).slice(1, -1)).slice(1, -1),
    "URL-encoded": encodeURIComponent(TOKEN),
    "form-encoded": new URLSearchParams({ v: TOKEN }).toString().slice(2),
    base64: bytes.toString("base64"),
    base64url: bytes.toString("base64url"),
    hex: bytes.toString("hex"),
  };
  for (const [name, form] of Object.entries(forms)) {
    it(`masks the ${name} form`, () => {
      const out = r.redact(`before ${form} after`);
      expect(out).toBe(`before ${REDACTED} after`);
    });
  }

  it("masks the token inside a larger base64 blob at every alignment (Basic auth)", () => {
    for (const user of ["u", "us", "usr", "user"]) {
      const blob = Buffer.from(`${user}:${TOKEN}`).toString("base64");
      const out = r.redact(`Authorization: Basic ${blob}`);
      expect(out).toContain(REDACTED);
      // What is left of the blob is at most the groups that mix in the user name and the tail.
      const left = out.replace(`Authorization: Basic `, "").replace(REDACTED, "");
      expect(left.length).toBeLessThanOrEqual(12);
    }
  });

  it("masks every occurrence and never says which secret matched", () => {
    const r2 = redactor("alpha-secret-1", "bravo-secret-2");
    expect(r2.redact("alpha-secret-1 x bravo-secret-2 y alpha-secret-1")).toBe(`${REDACTED} x ${REDACTED} y ${REDACTED}`);
  });

  it("masks overlapping secrets as one span, leaking no tail of either", () => {
    const r2 = redactor("abcdef123", "123456xyz");
    expect(r2.redact("<abcdef123456xyz>")).toBe(`<${REDACTED}>`);
    const r3 = redactor("secret", "secret-longer");
    expect(r3.redact("a secret-longer b")).toBe(`a ${REDACTED} b`);
  });

  it("masks the long lines of a multi-line value (a PEM key) on their own", () => {
    const pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END KEY-----";
    const out = redactor(pem).redact("leaked: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC");
    expect(out).toBe(`leaked: ${REDACTED}`);
  });

  it("masks values of 4 or more characters, ignores shorter ones, and leaves other text alone", () => {
    expect(redactor("pin1").redact("a pin1 b")).toBe(`a ${REDACTED} b`);
    expect(redactor("abc").redact("abc")).toBe("abc");
    expect(redactor("some-secret").redact("nothing to see")).toBe("nothing to see");
    expect(new SecretRedactor().redact("x")).toBe("x");
  });

  it("handles regex metacharacters literally", () => {
    const r2 = redactor("a.b*c(d)[e]$");
    expect(r2.redact("aXbbbc(d)[e]$ a.b*c(d)[e]$")).toBe(`aXbbbc(d)[e]$ ${REDACTED}`);
  });

  it("keeps a secret added later (a lazily started server)", () => {
    const r2 = redactor("first-secret");
    r2.add("LATER", "second-secret");
    expect(r2.redact("first-secret second-secret")).toBe(`${REDACTED} ${REDACTED}`);
    expect(r2.secretNames()).toEqual(["LATER", "S0"]);
  });
});

describe("SecretRedactor.redactJson", () => {
  const r = redactor(TOKEN, "424242424242");

  it("deep-masks strings, keys and numbers in a JSON-RPC result", () => {
    const result = {
      content: [
        { type: "text", text: `your token is ${TOKEN}` },
        { type: "text", text: JSON.stringify({ auth: TOKEN }) },
      ],
      structuredContent: { [TOKEN]: 1, card: 424242424242, nested: [[{ b64: Buffer.from(TOKEN).toString("base64") }]] },
      isError: false,
    };
    const out = r.redactJson(result);
    expect(JSON.stringify(out)).not.toContain("ghp_");
    expect(JSON.stringify(out)).not.toContain("424242424242");
    expect(out.content[0]!.text).toBe(`your token is ${REDACTED}`);
    expect(JSON.parse(out.content[1]!.text)).toEqual({ auth: REDACTED });
    expect(Object.keys(out.structuredContent)).toContain(REDACTED);
    expect(out.structuredContent.card).toBe(REDACTED);
    expect(out.isError).toBe(false);
    expect(result.content[0]!.text).toContain(TOKEN); // the input is not mutated
  });

  it("returns the very same object when nothing matches", () => {
    const clean = { content: [{ type: "text", text: "hello" }] };
    expect(r.redactJson(clean)).toBe(clean);
    expect(r.redactJson(null)).toBe(null);
    expect(r.redactJson(undefined)).toBe(undefined);
  });

  it("scans a large payload without a match quickly enough to sit on every result", () => {
    const big = { content: Array.from({ length: 5000 }, (_, i) => ({ type: "text", text: `line ${i} `.repeat(40) })) };
    const out = r.redactJson(big);
    expect(out).toBe(big);
    const withSecret = { ...big, content: [...big.content, { type: "text", text: TOKEN }] };
    expect(r.redactJson(withSecret).content.at(-1)!.text).toBe(REDACTED);
  });
});

describe("SecretRedactor with untidy values", () => {
  it("masks the trimmed form of a value with surrounding whitespace", () => {
    expect(redactor("  padded-value\n").redact("x padded-value y")).toBe(`x ${REDACTED} y`);
  });

  it("masks a short value that JSON escapes, inside a JSON value (the fast path sees its escaped form)", () => {
    const r = redactor('ab"c');
    expect(r.redactJson({ text: 'x ab"c y' })).toEqual({ text: `x ${REDACTED} y` });
  });

  it("masks nesting deeper than MAX_JSON_DEPTH whole instead of overflowing the stack", () => {
    const r = new SecretRedactor();
    r.add("T", "s3cr3t-value-1234");
    let deep: unknown = ["s3cr3t-value-1234"];
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const out = r.redactJson({ keep: "s3cr3t-value-1234 here", deep }) as { keep: string; deep: unknown };
    expect(out.keep).toBe("[REDACTED] here");
    let v: unknown = out.deep;
    let depth = 1;
    while (Array.isArray(v)) {
      v = v[0];
      depth++;
    }
    expect(v).toBe(REDACTED);
    expect(depth).toBeLessThanOrEqual(MAX_JSON_DEPTH + 1);
  });
});

describe("SecretRedactor with large values", () => {
  // A certificate bundle or kubeconfig: far beyond what one regular expression of every form can hold.
  const big = Array.from({ length: 1500 }, (_, i) => `line-${i}-${"k".repeat(10)}${i * 7919}`).join("\n").slice(0, 40_000);

  it("masks a 40 KB value and its encodings, and never throws (nor says the value in an error)", () => {
    const r = new SecretRedactor();
    r.add("BUNDLE", big);
    expect(r.redact(`before ${big} after`)).toBe(`before ${REDACTED} after`);
    expect(r.redact(`b64: ${Buffer.from(big).toString("base64")}`)).toBe(`b64: ${REDACTED}`);
    expect(r.redact(JSON.stringify({ v: big }))).not.toContain("line-1234-");
    expect(r.contains(`x${big}x`)).toBe(true);
    expect(r.contains("nothing here")).toBe(false);
    expect(r.redactJson({ a: [`..${big}..`] })).toEqual({ a: [`..${REDACTED}..`] });
  });

  it("masks a 1 MiB value beside short ones, each where it occurs", () => {
    const r = new SecretRedactor();
    const huge = "Q".repeat(1024 * 1024 - 8) + "-end-123";
    r.add("HUGE", huge);
    r.add("SHORT", "short-secret-9");
    expect(r.redact(`a short-secret-9 b ${huge} c`)).toBe(`a ${REDACTED} b ${REDACTED} c`);
  });
});

describe("SecretRedactor with encodings other languages write", () => {
  const r = redactor("pä/ss+word=42€-AKIA/x");

  it("masks JSON with escaped slashes (PHP) and \\uXXXX escapes (Python's ensure_ascii), in either case", () => {
    expect(r.redact('{"k":"p\\u00e4\\/ss+word=42\\u20ac-AKIA\\/x"}')).toBe(`{"k":"${REDACTED}"}`);
    expect(r.redact('{"k":"p\\u00E4/ss+word=42\\u20AC-AKIA/x"}')).toBe(`{"k":"${REDACTED}"}`);
    expect(r.redact('{"k":"pä\\/ss+word=42€-AKIA\\/x"}')).toBe(`{"k":"${REDACTED}"}`);
  });

  it("masks lower-case percent-encoding", () => {
    const lower = encodeURIComponent("pä/ss+word=42€-AKIA/x").replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
    expect(r.redact(`q=${lower}&x=1`)).toBe(`q=${REDACTED}&x=1`);
  });

  it("masks MIME-wrapped base64 line by line", () => {
    const value = "wrapped-secret-" + "z".repeat(120);
    const w = redactor(value);
    const wrapped = Buffer.from(value).toString("base64").replace(/(.{76})/g, "$1\r\n");
    const out = w.redact(wrapped);
    for (const line of wrapped.split("\r\n").filter((l) => l.length === 76)) expect(out).not.toContain(line);
  });
});
