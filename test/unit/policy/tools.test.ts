import { describe, expect, it } from "vitest";
import { globMatch, toolPatternProblem, toolVisible } from "../../../src/policy/tools.js";

describe("globMatch", () => {
  it.each([
    ["read_*", "read_file", true],
    ["read_*", "read_", true],
    ["read_*", "xread_file", false],
    ["*_file", "write_file", true],
    ["?ead", "read", true],
    ["?ead", "ead", false],
    ["a*b*c", "aXXbYYc", true],
    ["a*b*c", "aXXbYY", false],
    ["*", "", true],
    ["", "", true],
    ["", "x", false],
    ["read.file", "readXfile", false],
    ["[ab]", "a", false],
    ["[ab]", "[ab]", true],
    ["a+b", "aab", false],
    ["***x", "x", true],
    ["é?", "éü", true],
  ])("%s vs %s → %s", (pattern, text, want) => {
    expect(globMatch(pattern, text)).toBe(want);
  });

  it("is not exponential on adversarial patterns", () => {
    expect(globMatch("*a*a*a*a*a*a*a*a*b", "a".repeat(5000))).toBe(false);
  });
});

describe("toolVisible", () => {
  it("admits everything when allow is empty and nothing is denied", () => {
    expect(toolVisible("anything", { allow: [], deny: [] })).toBe(true);
  });
  it("admits only allowed tools when allow is set", () => {
    const f = { allow: ["read_*", "list_?"], deny: [] };
    expect(toolVisible("read_file", f)).toBe(true);
    expect(toolVisible("list_x", f)).toBe(true);
    expect(toolVisible("write_file", f)).toBe(false);
  });
  it("lets deny win over allow", () => {
    const f = { allow: ["*"], deny: ["delete_*"] };
    expect(toolVisible("delete_all", f)).toBe(false);
    expect(toolVisible("read", f)).toBe(true);
    expect(toolVisible("read_secret", { allow: ["read_*"], deny: ["read_secret"] })).toBe(false);
  });
  it("denies with an empty allow list too", () => {
    expect(toolVisible("delete_x", { allow: [], deny: ["delete_*"] })).toBe(false);
  });
});

describe("toolPatternProblem", () => {
  it("rejects empty and whitespace patterns", () => {
    expect(toolPatternProblem("")).toMatch(/empty/);
    expect(toolPatternProblem("read file")).toMatch(/whitespace/);
    expect(toolPatternProblem("read_*")).toBeNull();
  });
});
