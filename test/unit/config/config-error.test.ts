import { describe, expect, it } from "vitest";
import { configInvalidError, formatPath, formatProblem, sortProblems } from "../../../src/config/config-error.js";
import { checkConfig } from "../../../src/config/load.js";

describe("config problems", () => {
  it("formats TOML paths, quoting keys that are not bare", () => {
    expect(formatPath(["servers", "github", "allowed_hosts", 2])).toBe("servers.github.allowed_hosts[2]");
    expect(formatPath(["servers", "a.b", "env", "X Y"])).toBe(`servers."a.b".env."X Y"`);
    expect(formatPath([])).toBe("");
  });

  it("sorts by path with indices in numeric order", () => {
    const p = (path: string) => ({ path, line: null, message: "m" });
    expect(sortProblems([p("b"), p("a[10]"), p("a[2]"), p("a"), p("")]).map((x) => x.path)).toEqual(["", "a", "a[2]", "a[10]", "b"]);
  });

  it("renders lines and the CONFIG_INVALID error", () => {
    expect(formatProblem({ path: "x.y", line: 3, message: "bad" })).toBe("x.y: bad (line 3)");
    expect(formatProblem({ path: "", line: null, message: "bad" })).toBe("bad");
    const err = configInvalidError("/c.toml", [{ path: "a", line: 1, message: "m" }]);
    expect(err.code).toBe("CONFIG_INVALID");
    expect(err.message).toBe("config file /c.toml has 1 problem:\n  - a: m (line 1)");
    expect(err.describe()).toMatch(/Hint: .*nucleus check/);
  });

  it("CONFIG_NOT_FOUND for a missing file", async () => {
    await expect(checkConfig("/nonexistent/nucleus.toml")).rejects.toMatchObject({ code: "CONFIG_NOT_FOUND" });
  });
});
