// Pure checks of the HTTP downstream: loopback detection, Host, Origin, bearer token.
import { describe, expect, it } from "vitest";
import { checkHost, checkOrigin, makeBearerCheck } from "../../../src/gateway/http/guard.js";
import { generateToken } from "../../../src/gateway/http/options.js";
import { isLoopbackHost } from "../../../src/policy/loopback.js";

describe("isLoopbackHost", () => {
  it.each(["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"])("%s is loopback", (h) =>
    expect(isLoopbackHost(h)).toBe(true));
  it.each(["0.0.0.0", "::", "10.0.0.1", "192.168.1.1", "example.com", "localhost.evil.example", "127.0.0.1.nip.io", "::ffff:10.0.0.1", ""])(
    "%s is not loopback",
    (h) => expect(isLoopbackHost(h)).toBe(false),
  );
});

describe("checkHost", () => {
  it("accepts loopback names with the bound port or none", () => {
    for (const h of ["127.0.0.1:8080", "localhost:8080", "[::1]:8080", "localhost"]) expect(checkHost(h, 8080, true), h).toBeNull();
  });
  it("refuses other names, other ports and a missing header with 403", () => {
    for (const h of [undefined, "", "evil.example:8080", "127.0.0.1:8081", "[::1]:1", "127.0.0.1:8080:1", "user@127.0.0.1:8080"]) {
      expect(checkHost(h, 8080, true)?.status, String(h)).toBe(403);
    }
  });
  it("does not check Host when not bound to loopback", () => expect(checkHost("anything", 1, false)).toBeNull());
});

describe("checkOrigin", () => {
  it("allows no Origin (native clients) and listed origins, case-insensitively", () => {
    expect(checkOrigin(undefined, [])).toBeNull();
    expect(checkOrigin("http://app.example:3000", ["HTTP://app.example:3000"])).toBeNull();
  });
  it("refuses others, including a prefix match and null", () => {
    for (const o of ["http://app.example:3001", "http://app.example:3000.evil.example", "null", "https://app.example:3000"]) {
      expect(checkOrigin(o, ["http://app.example:3000"])?.status, o).toBe(403);
    }
  });
});

describe("bearer check", () => {
  const token = generateToken();
  const check = makeBearerCheck(token);
  it("generates distinct 43-char base64url tokens", () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(generateToken()).not.toBe(token);
  });
  it("accepts the exact token with any case of the scheme", () => {
    expect(check(`Bearer ${token}`)).toBeNull();
    expect(check(`bearer ${token}`)).toBeNull();
  });
  it("refuses missing, wrong, partial and extra tokens with 401 and a challenge", () => {
    for (const a of [undefined, "", "Bearer", `Bearer ${token.slice(1)}`, `Bearer ${token} extra`, `Basic ${token}`, `Bearer  ${token}x`]) {
      const r = check(a);
      expect(r?.status, String(a)).toBe(401);
      expect(r?.headers?.["WWW-Authenticate"]).toMatch(/^Bearer realm="nucleus"/);
      expect(r?.message).not.toContain(token);
    }
  });
});
