import { describe, expect, it } from "vitest";
import { canonicalJson, configReload, digestOf, egress, isRefusal, policyRefused, serverExit, serverOom, serverRestart, serverStart, toolCall } from "../../../src/audit/events.js";
import { formatRecord, matches } from "../../../src/audit/format.js";
import { decodeRecord, encodeRecord, genesisHash } from "../../../src/audit/record.js";

describe("canonical digests", () => {
  it("ignores key order and undefined members, and keeps array order", () => {
    expect(canonicalJson({ b: 1, a: [2, { d: undefined, c: "x" }] })).toBe('{"a":[2,{"c":"x"}],"b":1}');
    expect(digestOf({ a: 1, b: 2 })).toBe(digestOf({ b: 2, a: 1 }));
    expect(digestOf([1, 2])).not.toBe(digestOf([2, 1]));
    expect(digestOf({ path: "/a" })).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe("event constructors", () => {
  it("record the documented fields", () => {
    expect(serverStart({ server: "fs", backend: "bubblewrap", policyDigest: "sha256:1" })).toEqual({ type: "server.start", fields: { server: "fs", backend: "bubblewrap", policyDigest: "sha256:1" } });
    expect(serverExit({ server: "fs", cause: "signalled", code: null, signal: "SIGKILL" }).fields).toEqual({ server: "fs", cause: "signalled", code: null, signal: "SIGKILL" });
    expect(serverOom({ server: "fs", memoryMiB: 256 }).type).toBe("server.oom");
    expect(serverRestart({ server: "fs", attempt: 2, delayMs: 400 }).fields).toEqual({ server: "fs", attempt: 2, delayMs: 400 });
    expect(configReload({ source: "/c.toml", changed: ["servers.fs"] }).fields).toEqual({ source: "/c.toml", changed: ["servers.fs"] });
  });

  it("keep tool arguments out unless asked, but always digest them", () => {
    const base = { server: "fs", tool: "read", arguments: { path: "/x" }, outcome: "ok" as const, durationMs: 3.6 };
    const without = toolCall({ ...base, includeArguments: false });
    expect(without.fields).toEqual({ server: "fs", tool: "read", argsDigest: digestOf({ path: "/x" }), outcome: "ok", durationMs: 4 });
    expect(toolCall({ ...base, includeArguments: true }).fields.arguments).toEqual({ path: "/x" });
  });

  it("classify refusals", () => {
    const refusedCall = toolCall({ server: "a", tool: "t", arguments: {}, outcome: "refused", durationMs: 0, includeArguments: false, reason: "servers.a.tools.deny" });
    expect(isRefusal(refusedCall.type, refusedCall.fields)).toBe(true);
    const p = policyRefused({ server: "a", what: "x", rule: "r" });
    expect(isRefusal(p.type, p.fields)).toBe(true);
    const deny = egress({ server: "a", decision: "deny", host: "h" });
    const allow = egress({ server: "a", decision: "allow", host: "h" });
    expect(isRefusal(deny.type, deny.fields)).toBe(true);
    expect(isRefusal(allow.type, allow.fields)).toBe(false);
  });
});

describe("record lines", () => {
  it("round-trip, chain from the genesis, and render for people", () => {
    const prev = genesisHash("c1");
    const { bytes, hash } = encodeRecord({ seq: 1, time: "2026-01-01T00:00:00.000Z", type: "tool.call", fields: { server: "fs", what: "two words" }, prev });
    expect(bytes.at(-1)).toBe(0x0a);
    const line = bytes.subarray(0, -1);
    const d = decodeRecord(line);
    expect(d).toEqual({
      ok: true,
      record: { seq: 1, time: "2026-01-01T00:00:00.000Z", type: "tool.call", fields: { server: "fs", what: "two words" }, prev, hash },
      text: line.toString("utf8"),
    });
    if (!d.ok) throw new Error("unreachable");
    expect(formatRecord(d.record)).toBe('2026-01-01T00:00:00.000Z  #1  tool.call  server=fs what="two words"');
    expect(matches(d.record, { type: "tool" })).toBe(true);
    expect(matches(d.record, { type: "tool.cal" })).toBe(false);
    expect(matches(d.record, { server: "gh" })).toBe(false);
    expect(decodeRecord(Buffer.from(line.toString("utf8").replace('"seq":1', '"seq":2')))).toMatchObject({ ok: false });
    expect(decodeRecord(Buffer.from("{}"))).toMatchObject({ ok: false });
  });

  it("hash the bytes as stored: a byte that is not UTF-8 is damage, not U+FFFD (the review's experiment)", () => {
    const { bytes } = encodeRecord({ seq: 1, time: "2026-01-01T00:00:00.000Z", type: "tool.call", fields: { tool: "t\uFFFDx", lone: "\uD800" }, prev: genesisHash("c1") });
    const line = bytes.subarray(0, -1);
    expect(decodeRecord(line)).toMatchObject({ ok: true, record: { fields: { tool: "t\uFFFDx", lone: "\uD800" } } });
    const at = line.indexOf(Buffer.from([0xef, 0xbf, 0xbd]));
    expect(at).toBeGreaterThan(0);
    const changed = Buffer.concat([line.subarray(0, at), Buffer.from([0xff]), line.subarray(at + 3)]);
    expect(decodeRecord(changed)).toEqual({ ok: false, reason: expect.stringMatching(/not valid UTF-8/) });
    // Valid UTF-8 but different bytes: the hash over the stored bytes catches it.
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), line]);
    expect(decodeRecord(bom)).toMatchObject({ ok: false });
  });
});
