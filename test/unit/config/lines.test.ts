import { describe, expect, it } from "vitest";
import { indexLines, lineOf } from "../../../src/config/lines.js";

const doc = `# comment
[gateway]
backend = "auto"

[servers.github]
command = ["node", "x.js"]
allowed_hosts = [
  "a.example.com",
  "*.com",
]
tools = { allow = ["x"] }
servers.inline.lazy = true
notes = """
[servers.fake]
lazy = false
"""

[ servers . "quoted.name" ]  # trailing comment
memory_mib = 1
[servers.github.timeouts]
startup_ms = 1
`;

describe("lineOf", () => {
  const index = indexLines(doc);
  it.each([
    [["gateway"], 2],
    [["gateway", "backend"], 3],
    [["servers", "github"], 5],
    [["servers", "github", "allowed_hosts", 1], 7],
    [["servers", "github", "tools", "allow", 0], 11],
    [["servers", "github", "unknown_key"], 5],
    [["servers", "github", "servers", "inline", "lazy"], 12],
    [["servers", "quoted.name", "memory_mib"], 19],
    [["servers", "github", "timeouts", "startup_ms"], 21],
    [["servers", "github", "timeouts"], 20],
    [["nowhere"], null],
    [[], null],
  ] as const)("%j → %s", (path, line) => {
    expect(lineOf(index, [...path])).toBe(line);
  });

  it("ignores lines inside multi-line strings", () => {
    expect(lineOf(index, ["servers", "fake"])).toBeNull();
  });
});
