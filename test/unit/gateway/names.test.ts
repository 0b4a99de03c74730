import { describe, expect, it } from "vitest";
import { exposeNotification } from "../../../src/gateway/mapping.js";
import { MAX_NAME_LENGTH, exposedName, exposedUri, parseExposedUri } from "../../../src/gateway/names.js";
import { paginate } from "../../../src/gateway/paginate.js";

describe("exposed names", () => {
  it.each([
    ["fs", "read_file", "fs__read_file"],
    ["fs", "read-file", "fs__read-file"],
  ])("%s / %s → %s", (server, name, out) => expect(exposedName(server, name, true)).toBe(out));

  it("keeps names unchanged without a prefix (nucleus run)", () => {
    expect(exposedName("fs", "weird.name/x", false)).toBe("weird.name/x");
  });

  it("sanitises other chars and adds a hash of the original, so two originals never meet", () => {
    const a = exposedName("s", "a.b", true);
    const b = exposedName("s", "a/b", true);
    expect(a).toMatch(/^s__a_b_[0-9a-f]{8}$/);
    expect(b).toMatch(/^s__a_b_[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
  });

  it("shortens long names deterministically to at most 64 chars", () => {
    const long = "x".repeat(100);
    const n = exposedName("server", long, true);
    expect(n.length).toBe(MAX_NAME_LENGTH);
    expect(n).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(exposedName("server", long, true)).toBe(n);
    expect(exposedName("server", long + "y", true)).not.toBe(n);
  });
});

describe("exposed URIs", () => {
  it.each(["test://static/resource/1", "file:///tmp/a b.txt", "test://static/resource/{id}", "https://x/y?q=1#f"])("round-trips %s", (uri) => {
    const out = exposedUri("srv", uri, true);
    expect(out).toBe(`nucleus://srv/${uri}`);
    expect(parseExposedUri(out)).toEqual({ server: "srv", uri });
  });

  it.each(["nucleus://", "nucleus://srv", "nucleus://srv/", "file:///etc/passwd", "nucleus:///x"])("refuses %s", (uri) => {
    expect(parseExposedUri(uri)).toBeNull();
  });
});

describe("pagination", () => {
  it("pages with an opaque cursor and refuses a forged one", () => {
    const items = Array.from({ length: 1203 }, (_, i) => i);
    const p1 = paginate(items, undefined, "tools");
    expect(p1.tools).toHaveLength(500);
    const p3 = paginate(items, paginate(items, p1.nextCursor, "tools").nextCursor, "tools");
    expect(p3.tools).toHaveLength(203);
    expect(p3.nextCursor).toBeUndefined();
    expect(() => paginate(items, "bm90LWEtY3Vyc29y", "tools")).toThrow(/invalid cursor/);
  });
});

describe("notifications as the client sees them", () => {
  it("names the server in log messages and exposes updated URIs", () => {
    expect(exposeNotification("fs", { method: "notifications/message", params: { level: "info", data: "x", logger: "io" } }, true)!.params).toMatchObject({ logger: "fs/io" });
    expect(exposeNotification("fs", { method: "notifications/message", params: { level: "info", data: "x" } }, true)!.params).toMatchObject({ logger: "fs" });
    expect(exposeNotification("fs", { method: "notifications/resources/updated", params: { uri: "file:///a" } }, true)!.params).toEqual({ uri: "nucleus://fs/file:///a" });
    const other = { method: "notifications/elicitation/complete", params: { elicitationId: "e" } };
    expect(exposeNotification("fs", other, true)).toBe(other);
  });

  it("passes on no notification a server makes up", () => {
    expect(exposeNotification("fs", { method: "notifications/custom/evil", params: {} }, true)).toBeNull();
    expect(exposeNotification("fs", { method: "notifications/roots/list_changed" }, true)).toBeNull();
  });
});
