// The HTTP token sources: generated, env, and a file with its permission check.
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { SecretSpec } from "../../../src/config/spec.js";
import { httpStartNotice, resolveHttpToken } from "../../../src/gateway/http/token.js";

const spec = (over: Partial<SecretSpec>): SecretSpec => ({
  name: "HTTP_TOKEN", from: "env", env: null, path: null, insecurePermissions: false, command: null, timeoutMs: 5000, attributes: null, ...over,
});
let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe("resolveHttpToken", () => {
  it("generates a token when no source is configured, and the notice shows it once", async () => {
    const t = await resolveHttpToken(null, {});
    expect(t.generated).toBe(true);
    expect(t.token.length).toBeGreaterThanOrEqual(43);
    const notice = httpStartNotice("http://127.0.0.1:1/mcp", t);
    expect(notice.split(t.token)).toHaveLength(2);
  });

  it("reads the env source and never prints a configured token", async () => {
    const t = await resolveHttpToken(spec({ env: "MY_TOKEN" }), { MY_TOKEN: "configured-token-123456" });
    expect(t).toEqual({ token: "configured-token-123456", generated: false });
    expect(httpStartNotice("http://127.0.0.1:1/mcp", t)).not.toContain("configured-token-123456");
    await expect(resolveHttpToken(spec({ env: "MISSING" }), {})).rejects.toThrow(/MISSING is not set/);
  });

  it("reads a 0600 file and refuses one other users can read", async () => {
    dir = await mkdtemp(join(tmpdir(), "nucleus-http-token-"));
    const path = join(dir, "token");
    await writeFile(path, "file-token-abcdefghijkl\n");
    await chmod(path, 0o600);
    expect((await resolveHttpToken(spec({ from: "file", path }), {})).token).toBe("file-token-abcdefghijkl");
    await chmod(path, 0o644);
    await expect(resolveHttpToken(spec({ from: "file", path }), {})).rejects.toThrow(/readable or writable by other users/);
  });
});
