import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Logger } from "../../../src/log.js";
import { NucleusError } from "../../../src/errors.js";
import type { NpmPackage } from "../../../src/config/spec.js";
import { defaultCacheDir, ensureNpmPackage, npmInstallArgs, packageDir, resolvePackageSpec } from "../../../src/packages/npm.js";
import { UnsandboxedBackend } from "../../../src/sandbox/unsandboxed.js";
import { connectToSandbox } from "../../helpers/mcp.js";
import { makeSpec } from "../../helpers/spec.js";

const log = new Logger({ level: "silent" });

/** The registry tests need the npm registry (through npm's own proxy settings); elsewhere they are skipped, visibly. */
const registryReachable = await new Promise<boolean>((resolve) => {
  execFile("npm", ["ping", "--fetch-timeout=10000", "--fetch-retries=0"], { timeout: 20_000 }, (err) => resolve(err === null));
});
const pkg = (name: string, version: string): NpmPackage => ({ registry: "npm", name, version, spec: `npm:${name}@${version}` });

let cacheDir: string;
beforeAll(() => {
  cacheDir = realpathSync(mkdtempSync(join(tmpdir(), "nucleus-npm-")));
});
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

/** A package that looks installed, written by hand (no registry needed). */
function fakeInstalled(name: string, manifest: object, files: Record<string, string> = {}): NpmPackage {
  const p = pkg(name, "1.0.0");
  const dir = join(packageDir(p, cacheDir), "node_modules", name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, version: "1.0.0", ...manifest }));
  for (const [rel, text] of Object.entries(files)) writeFileSync(join(dir, rel), text);
  return p;
}

describe("npmInstallArgs", () => {
  it("never runs install scripts and saves nothing", () => {
    expect(npmInstallArgs(pkg("@s/p", "1.2.3"), "/cache/npm/.install-x")).toEqual([
      "install", "--prefix", "/cache/npm/.install-x", "--no-save", "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier", "--fetch-retries=1", "--fetch-timeout=60000", "@s/p@1.2.3",
    ]);
  });
});

describe("defaultCacheDir", () => {
  it("uses XDG_CACHE_HOME, else ~/.cache", () => {
    expect(defaultCacheDir({ XDG_CACHE_HOME: "/c", HOME: "/h" })).toBe("/c/nucleus");
    expect(defaultCacheDir({ HOME: "/h" })).toBe("/h/.cache/nucleus");
  });
});

describe("ensureNpmPackage with an installed package", () => {
  it("finds a string bin, the bin named like the package, or the first", async () => {
    const a = fakeInstalled("bin-string", { bin: "cli.js" }, { "cli.js": "" });
    expect((await ensureNpmPackage(a, { cacheDir, log })).bin).toMatch(/bin-string\/cli\.js$/);
    const b = fakeInstalled("bin-named", { bin: { other: "o.js", "bin-named": "main.js" } }, { "o.js": "", "main.js": "" });
    expect((await ensureNpmPackage(b, { cacheDir, log })).bin).toMatch(/bin-named\/main\.js$/);
    const c = fakeInstalled("bin-first", { bin: { one: "1.js", two: "2.js" } }, { "1.js": "", "2.js": "" });
    expect((await ensureNpmPackage(c, { cacheDir, log })).bin).toMatch(/bin-first\/1\.js$/);
  });

  it("refuses a package without a bin, and a bin outside the package", async () => {
    const none = fakeInstalled("no-bin", {});
    await expect(ensureNpmPackage(none, { cacheDir, log })).rejects.toThrow(/has no "bin" entry/);
    const escape = fakeInstalled("bin-escape", { bin: "../../outside.js" });
    writeFileSync(join(packageDir(escape, cacheDir), "outside.js"), "");
    await expect(ensureNpmPackage(escape, { cacheDir, log })).rejects.toThrow(/points outside the package/);
  });
});

describe("ensureNpmPackage from the npm registry", () => {
  const memory = pkg("@modelcontextprotocol/server-memory", "2026.8.31");

  it.skipIf(!registryReachable)("installs once, atomically, and the server runs (needs the npm registry)", { timeout: 300_000 }, async () => {
    const first = await ensureNpmPackage(memory, { cacheDir, log });
    expect(first.root).toBe(join(cacheDir, "npm", "@modelcontextprotocol", "server-memory@2026.8.31"));
    expect(first.bin).toBe(join(first.root, "node_modules", "@modelcontextprotocol", "server-memory", "dist", "index.js"));
    const mtime = statSync(first.root).mtimeMs;
    const second = await ensureNpmPackage(memory, { cacheDir, log });
    expect(second).toEqual(first);
    expect(statSync(first.root).mtimeMs).toBe(mtime);
    // No temporary install directory is left behind.
    expect(
      (await import("node:fs")).readdirSync(join(cacheDir, "npm", "@modelcontextprotocol")).filter((n) => n.startsWith(".install-")),
    ).toEqual([]);

    const spec = makeSpec({ name: "mem", argv: [], insecureUnsandboxed: true });
    const withPkg = { ...spec, launch: { ...spec.launch, package: memory, args: [], env: { MEMORY_FILE_PATH: join(cacheDir, "memory.jsonl") } } };
    const resolved = await resolvePackageSpec(withPkg, { cacheDir, log });
    expect(resolved.launch.argv).toEqual([realpathSync(process.execPath), first.bin]);
    expect(resolved.launch.codeDirs).toEqual([first.root]);
    expect(Object.isFrozen(resolved.launch.argv)).toBe(true);
    const sandbox = await new UnsandboxedBackend().launch(resolved, { secrets: new Map(), log, egressSocket: null });
    try {
      const client = await connectToSandbox(sandbox);
      const tools = await client.listTools();
      expect(tools.tools.map((t) => t.name)).toContain("create_entities");
    } finally {
      await sandbox.stop(2000);
    }
  });

  it.skipIf(!registryReachable)("reports a version that does not exist with npm's stderr and a hint (needs the npm registry)", { timeout: 300_000 }, async () => {
    const missing = pkg("@modelcontextprotocol/server-memory", "0.0.0-does-not-exist");
    const err = await ensureNpmPackage(missing, { cacheDir, log }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NucleusError);
    expect((err as NucleusError).code).toBe("PACKAGE_INSTALL_FAILED");
    expect((err as NucleusError).message).toMatch(/npm install exited with \d+/);
    expect((err as NucleusError).message).toMatch(/ETARGET|No matching version|notarget/i);
    expect((err as NucleusError).hint).toMatch(/npm view @modelcontextprotocol\/server-memory@0\.0\.0-does-not-exist/);
    expect(existsSync(packageDir(missing, cacheDir))).toBe(false);
  });

  it("returns a spec without a package unchanged", async () => {
    const spec = makeSpec({ name: "x", argv: ["/bin/true"] });
    expect(await resolvePackageSpec(spec, { cacheDir, log })).toBe(spec);
  });
});
