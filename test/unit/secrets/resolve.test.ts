import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SecretSpec } from "../../../src/config/spec.js";
import { NucleusError } from "../../../src/errors.js";
import { REDACTED, SecretRedactor } from "../../../src/secrets/redactor.js";
import { resolveServerSecrets } from "../../../src/secrets/resolve.js";
import { makeSpec } from "../../helpers/spec.js";

function secret(name: string, over: Partial<SecretSpec> = {}): SecretSpec {
  return { name, from: "env", env: null, path: null, insecurePermissions: false, command: null, timeoutMs: 5000, attributes: null, ...over };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nucleus-resolve-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("resolveServerSecrets", () => {
  it("loads only the server's own secrets, keyed by target, and registers them with the redactor", async () => {
    const file = join(dir, "db");
    await writeFile(file, "postgres://u:pw-file-value@db/x\n", { mode: 0o600 });
    const all = { A_TOKEN: secret("A_TOKEN"), B_TOKEN: secret("B_TOKEN"), DB: secret("DB", { from: "file", path: file }) };
    const server = makeSpec({
      name: "a",
      argv: ["/bin/true"],
      secrets: [
        { name: "A_TOKEN", target: "TOKEN", as: "env" },
        { name: "DB", target: "db.url", as: "file" },
      ],
    });
    const redactor = new SecretRedactor();
    const got = await resolveServerSecrets(server, all, { A_TOKEN: "value-of-a-token", B_TOKEN: "value-of-b-token" }, { redactor });
    expect([...got.entries()]).toEqual([
      ["TOKEN", { value: "value-of-a-token", as: "env" }],
      ["db.url", { value: "postgres://u:pw-file-value@db/x", as: "file" }],
    ]);
    expect(redactor.redact("value-of-a-token value-of-b-token")).toBe(`${REDACTED} value-of-b-token`);
  });

  it("names the server, the secret and the source when one cannot be read", async () => {
    const all = { OK: secret("OK"), GONE: secret("GONE", { env: "GONE_VAR" }) };
    const server = makeSpec({ name: "github", argv: ["/bin/true"], secrets: [{ name: "OK", target: "OK", as: "env" }, { name: "GONE", target: "T", as: "env" }] });
    const err = await resolveServerSecrets(server, all, { OK: "present-value" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NucleusError);
    expect((err as NucleusError).code).toBe("SECRET_UNAVAILABLE");
    expect((err as NucleusError).message).toBe(
      `server "github" cannot start: secret "GONE" (from env GONE_VAR) cannot be read: the variable GONE_VAR is not set in the gateway's environment`,
    );
    expect((err as NucleusError).describe()).not.toContain("present-value");
  });

  it("refuses an unknown secret, a duplicate target and an unsafe file name", async () => {
    const all = { S: secret("S") };
    const env = { S: "value-of-s" };
    const bad = [
      [{ name: "NOPE", target: "X", as: "env" }],
      [{ name: "S", target: "X", as: "env" }, { name: "S", target: "X", as: "env" }],
      [{ name: "S", target: "../escape", as: "file" }],
      [{ name: "S", target: "A-B", as: "env" }],
    ] as const;
    const messages = [];
    for (const secrets of bad) {
      const err = await resolveServerSecrets(makeSpec({ name: "s", argv: ["/bin/true"], secrets: [...secrets] }), all, env).catch((e: unknown) => e as NucleusError);
      expect(err).toBeInstanceOf(NucleusError);
      messages.push((err as NucleusError).message);
    }
    expect(messages).toEqual([
      `servers.s.secrets: unknown secret "NOPE"`,
      `servers.s.secrets: two secrets are delivered as "X"`,
      `servers.s.secrets: "../escape" is not a valid file name for secret "S"`,
      `servers.s.secrets: "A-B" is not a valid environment variable name for secret "S"`,
    ]);
  });

  it("returns an empty map for a server without secrets", async () => {
    expect((await resolveServerSecrets(makeSpec({ name: "n", argv: ["/bin/true"] }), {}, {})).size).toBe(0);
  });
});
