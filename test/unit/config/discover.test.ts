import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { discoverConfig, userConfigPath } from "../../../src/config/discover.js";
import { NucleusError } from "../../../src/errors.js";

let root: string;
beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), "nucleus-discover-")));
  mkdirSync(join(root, "cwd"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("discoverConfig", () => {
  const env = () => ({ HOME: join(root, "home") });

  it("prefers --config, resolved against the working directory", () => {
    writeFileSync(join(root, "cwd", "mine.toml"), "");
    writeFileSync(join(root, "cwd", "nucleus.toml"), "");
    expect(discoverConfig({ flag: "mine.toml", cwd: join(root, "cwd"), env: env() })).toBe(join(root, "cwd", "mine.toml"));
  });

  it("fails when --config names a missing file, even if ./nucleus.toml exists", () => {
    writeFileSync(join(root, "cwd", "nucleus.toml"), "");
    expect(() => discoverConfig({ flag: "missing.toml", cwd: join(root, "cwd"), env: env() })).toThrow(/missing\.toml \(from --config\) does not exist/);
  });

  it("uses ./nucleus.toml, then the user config", () => {
    const user = join(root, "home", ".config", "nucleus", "nucleus.toml");
    mkdirSync(join(root, "home", ".config", "nucleus"), { recursive: true });
    writeFileSync(user, "");
    expect(discoverConfig({ cwd: join(root, "cwd"), env: env() })).toBe(user);
    writeFileSync(join(root, "cwd", "nucleus.toml"), "");
    expect(discoverConfig({ cwd: join(root, "cwd"), env: env() })).toBe(join(root, "cwd", "nucleus.toml"));
  });

  it("respects XDG_CONFIG_HOME (absolute only)", () => {
    expect(userConfigPath({ HOME: "/h", XDG_CONFIG_HOME: "/xdg" })).toBe("/xdg/nucleus/nucleus.toml");
    expect(userConfigPath({ HOME: "/h", XDG_CONFIG_HOME: "relative" })).toBe("/h/.config/nucleus/nucleus.toml");
    expect(userConfigPath({ HOME: "/h" })).toBe("/h/.config/nucleus/nucleus.toml");
  });

  it("says where it looked when nothing is found", () => {
    let err: unknown;
    try {
      discoverConfig({ cwd: join(root, "cwd"), env: { HOME: join(root, "home"), XDG_CONFIG_HOME: join(root, "xdg") } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NucleusError);
    const e = err as NucleusError;
    expect(e.code).toBe("CONFIG_NOT_FOUND");
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain(join(root, "cwd", "nucleus.toml"));
    expect(e.message).toContain(join(root, "xdg", "nucleus", "nucleus.toml"));
    expect(e.hint).toMatch(/-c FILE/);
  });
});
