import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Logger } from "../../../src/log.js";
import { NucleusError } from "../../../src/errors.js";
import type { NpmPackage } from "../../../src/config/spec.js";
import { bundledNpm, sweepStaleInstalls, defaultCacheDir, ensureNpmPackage, npmEnv, npmInstallArgs, packageDir, resolvePackageSpec } from "../../../src/packages/npm.js";
import { whichSync } from "../../../src/sandbox/which.js";
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
      "install", "--prefix", "/cache/npm/.install-x", "--no-save", "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier",
      "--allow-git=none", "--allow-remote=none", "--allow-file=none", "--allow-directory=none", "--fetch-retries=1", "--fetch-timeout=60000", "@s/p@1.2.3",
    ]);
  });
});

describe("npm's environment", () => {
  it("holds what npm needs and none of the gateway's other variables (secrets among them)", () => {
    const env = npmEnv({ PATH: "/usr/bin", HOME: "/h", GITHUB_TOKEN: "ghp_x", API_KEY: "k", npm_config_registry: "http://r/", HTTPS_PROXY: "http://p:3128", NODE_OPTIONS: "--require /x" });
    expect(env).toEqual({ PATH: "/usr/bin", HOME: "/h", npm_config_registry: "http://r/", HTTPS_PROXY: "http://p:3128", npm_config_loglevel: "warn" });
  });

  it("is the npm that nucleus depends on, which knows --allow-git", async () => {
    const [node, cli] = bundledNpm();
    const out = await new Promise<string>((resolve, reject) =>
      execFile(node!, [cli!, "--allow-git=none", "config", "get", "allow-git"], { env: npmEnv(), timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout.trim()))),
    );
    expect(out).toBe("none");
  });
});

const hasGit = whichSync("git") !== null;
describe.skipIf(!hasGit)(`a package whose dependency is a git repository${hasGit ? "" : " (skipped: git is missing)"}`, () => {
  // A local registry (loopback) serving one package, "top", whose dependency is a local git repository with a
  // `prepare` script: npm 10 ran that script on the host despite --ignore-scripts. Harmless if it ran: it only
  // writes a canary file into this test's temporary directory.
  let dir: string;
  let registry: Server;
  let url: string;
  beforeAll(async () => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), "nucleus-npm-git-")));
    const git = join(dir, "gitdep");
    mkdirSync(git);
    writeFileSync(join(git, "package.json"), JSON.stringify({ name: "gitdep", version: "1.0.0", scripts: { prepare: `echo ran > ${JSON.stringify(join(dir, "CANARY"))}` } }));
    const g = (...args: string[]) => execFileSync("git", ["-c", "user.email=t@t", "-c", "user.name=t", ...args], { cwd: git, stdio: "ignore" });
    g("init", "-q");
    g("add", ".");
    g("commit", "-q", "-m", "x");
    const top = join(dir, "pkg", "package");
    mkdirSync(top, { recursive: true });
    const manifest = { name: "top", version: "1.0.0", bin: { top: "index.js" }, dependencies: { gitdep: `git+file://${git}` } };
    writeFileSync(join(top, "package.json"), JSON.stringify(manifest));
    writeFileSync(join(top, "index.js"), "");
    execFileSync("tar", ["czf", join(dir, "top-1.0.0.tgz"), "-C", join(dir, "pkg"), "package"]);
    const tgz = readFileSync(join(dir, "top-1.0.0.tgz"));
    const integrity = `sha512-${createHash("sha512").update(tgz).digest("base64")}`;
    registry = createServer((req, res) => {
      if (req.url === "/top") {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ name: "top", "dist-tags": { latest: "1.0.0" }, versions: { "1.0.0": { ...manifest, dist: { tarball: `${url}top-1.0.0.tgz`, integrity } } } }));
      } else if (req.url === "/top-1.0.0.tgz") res.end(tgz);
      else res.writeHead(404).end("{}");
    });
    await new Promise<void>((r) => registry.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(registry.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await new Promise((r) => registry?.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("is refused: no git dependency is fetched, no script of it runs on the host", { timeout: 120_000 }, async () => {
    const saved = { registry: process.env.npm_config_registry, cache: process.env.npm_config_cache };
    process.env.npm_config_registry = url;
    process.env.npm_config_cache = join(dir, "npm-cache");
    try {
      const err = await ensureNpmPackage(pkg("top", "1.0.0"), { cacheDir: join(dir, "store"), log }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(NucleusError);
      expect((err as Error).message).toMatch(/EALLOWGIT|allow-git/i);
    } finally {
      for (const [k, v] of [["npm_config_registry", saved.registry], ["npm_config_cache", saved.cache]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    expect(existsSync(join(dir, "CANARY"))).toBe(false);
    expect(existsSync(packageDir(pkg("top", "1.0.0"), join(dir, "store")))).toBe(false);
  });
});

describe("sweepStaleInstalls", () => {
  it("removes install directories older than the bound, and keeps younger ones and anything else", () => {
    const parent = join(cacheDir, "sweep");
    mkdirSync(join(parent, ".install-old"), { recursive: true });
    writeFileSync(join(parent, ".install-old", "x"), "");
    mkdirSync(join(parent, ".install-young"));
    mkdirSync(join(parent, "pkg@1.0.0"));
    const old = (Date.now() - 3_600_000) / 1000;
    utimesSync(join(parent, ".install-old"), old, old);
    utimesSync(join(parent, "pkg@1.0.0"), old, old);
    expect(sweepStaleInstalls(parent, 600_000, log)).toEqual([join(parent, ".install-old")]);
    expect(readdirSync(parent).sort()).toEqual([".install-young", "pkg@1.0.0"]);
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
