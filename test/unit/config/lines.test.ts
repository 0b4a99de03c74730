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
    [["servers", "github", "allowed_hosts", 0], 8],
    [["servers", "github", "allowed_hosts", 1], 9],
    [["servers", "github", "allowed_hosts", 5], 7],
    [["servers", "github", "command", 1], 6],
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

  it("counts array elements across lines, skipping strings, nesting and comments", () => {
    const text = `x = [\n  "a,b", # one, two\n  ["n", "m"],\n  { k = "v" },\n  'q\\"',\n  "e\\"f",\n  7,\n]\n`;
    const idx = indexLines(text);
    expect([0, 1, 2, 3, 4, 5].map((n) => lineOf(idx, ["x", n]))).toEqual([2, 3, 4, 5, 6, 7]);
  });

  it("ignores lines inside multi-line strings", () => {
    expect(lineOf(index, ["servers", "fake"])).toBeNull();
  });
});
