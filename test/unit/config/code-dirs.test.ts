import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defaultCodeDirs, tooBroad } from "../../../src/config/code-dirs.js";
import { NucleusError } from "../../../src/errors.js";

let root: string;
const savedHome = process.env.HOME;
beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), "nucleus-codedirs-")));
});
afterEach(() => {
  process.env.HOME = savedHome;
  rmSync(root, { recursive: true, force: true });
});

function file(rel: string, text = ""): string {
  const p = join(root, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
}

describe("defaultCodeDirs", () => {
  it("gives the package root of a node entry script", () => {
    file("proj/package.json", "{}");
    const entry = file("proj/dist/index.js");
    expect(defaultCodeDirs(["/usr/bin/node", entry])).toEqual([join(root, "proj")]);
  });

  it("skips node options, including those that take a value", () => {
    file("proj/package.json", "{}");
    const entry = file("proj/dist/index.js");
    expect(defaultCodeDirs(["node", "--enable-source-maps", "-r", "/x/preload.js", entry, "--port", "1"])).toEqual([join(root, "proj")]);
  });

  it("adds the node_modules folder a package installed inside node_modules resolves its dependencies from", () => {
    file("app/node_modules/@scope/pkg/package.json", "{}");
    const entry = file("app/node_modules/@scope/pkg/dist/index.js");
    expect(defaultCodeDirs(["/usr/bin/node", entry])).toEqual([join(root, "app/node_modules/@scope/pkg"), join(root, "app/node_modules")]);
  });

  it("follows a bin symlink with a node shebang to its package", () => {
    file("app/node_modules/tool/package.json", "{}");
    const entry = file("app/node_modules/tool/cli", "#!/usr/bin/env node\nconsole.log(1)\n");
    chmodSync(entry, 0o755);
    mkdirSync(join(root, "app/node_modules/.bin"), { recursive: true });
    symlinkSync("../tool/cli", join(root, "app/node_modules/.bin/tool"));
    expect(defaultCodeDirs([join(root, "app/node_modules/.bin/tool")])).toEqual([join(root, "app/node_modules/tool"), join(root, "app/node_modules")]);
  });

  it("returns nothing for a binary or node -e", () => {
    expect(defaultCodeDirs(["/bin/sh", "-c", "true"])).toEqual([]);
    expect(defaultCodeDirs(["/usr/bin/node", "-e", "0"])).toEqual([]);
    expect(defaultCodeDirs(["/usr/bin/node"])).toEqual([]);
  });

  it("refuses a home directory and tells the user to set code_dir", () => {
    const home = join(root, "home-of-user");
    process.env.HOME = home;
    const entry = file("home-of-user/server.js");
    file("home-of-user/package.json", "{}");
    let err: unknown;
    try {
      defaultCodeDirs(["/usr/bin/node", entry], "mine");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NucleusError);
    expect((err as NucleusError).message).toMatch(/would be .*home-of-user, which is your home directory/);
    expect((err as NucleusError).hint).toMatch(/servers\.mine\.code_dir/);
  });

  it("never exposes /, /home, /root, /usr or a home directory", () => {
    for (const dir of ["/", "/home", "/root", "/usr", "/home/alice"]) expect(tooBroad(dir)).not.toBeNull();
    process.env.HOME = join(root, "h");
    expect(tooBroad(join(root, "h"))).toBe("your home directory");
    expect(tooBroad(join(root, "h", "project"))).toBeNull();
  });

  it("fails on a missing entry script", () => {
    expect(() => defaultCodeDirs(["node", join(root, "missing.js")])).toThrow(/does not exist/);
  });
});
