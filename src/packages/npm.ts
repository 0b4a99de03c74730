// Installs a server's npm package once per name@version into the cache
// (<cache>/npm/<name>@<version>) and points its ServerSpec at the package's bin.
// Not responsible for sandboxing the server or for the Node runtime itself.

import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync } from "node:fs";
import { nucleusCacheDir } from "../cache-dir.js";
import { dirname, isAbsolute, join, relative, sep } from "node:path";
import { NucleusError } from "../errors.js";
import type { Logger } from "../log.js";
import type { NpmPackage, ServerSpec } from "../config/spec.js";
import { deepFreeze } from "../config/load.js";

export interface NpmOptions {
  /** Default: defaultCacheDir(). */
  readonly cacheDir?: string;
  readonly log: Logger;
  /** Give up on `npm install` after this long (default 5 minutes). */
  readonly timeoutMs?: number;
  /** Aborts the install (the npm process is killed), e.g. when the gateway shuts down. */
  readonly signal?: AbortSignal;
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return nucleusCacheDir(env);
}

/** The install directory of a package (it exists only once installation completed). */
export function packageDir(pkg: NpmPackage, cacheDir: string): string {
  return join(cacheDir, "npm", `${pkg.name}@${pkg.version}`);
}

/** Installs `pkg` unless already installed; returns the install dir and the absolute path of its bin script. */
export async function ensureNpmPackage(pkg: NpmPackage, opts: NpmOptions): Promise<{ root: string; bin: string }> {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const root = packageDir(pkg, cacheDir);
  if (!existsSync(join(root, "node_modules", pkg.name, "package.json"))) {
    const parent = dirname(root);
    mkdirSync(parent, { recursive: true, mode: 0o700 });
    sweepStaleInstalls(parent, 2 * (opts.timeoutMs ?? 300_000), opts.log);
    const tmp = mkdtempSync(join(parent, ".install-"));
    try {
      opts.log.info("installing npm package", { package: `${pkg.name}@${pkg.version}` });
      await npmInstall(pkg, tmp, opts.timeoutMs ?? 300_000, opts.signal);
      findBin(pkg, tmp); // refuse a package without a bin before publishing it to the cache
      try {
        // Atomic publish: readers only ever see a complete install.
        renameSync(tmp, root);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
        // Another process installed it at the same time: use theirs.
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { root: realpathSync(root), bin: findBin(pkg, realpathSync(root)) };
}

/**
 * A new frozen spec for a `package` server: argv = [node, bin, ...args] and the
 * install dir as its code dir. A spec without a package is returned unchanged.
 */
export async function resolvePackageSpec(spec: ServerSpec, opts: NpmOptions): Promise<ServerSpec> {
  const pkg = spec.launch.package;
  if (pkg === null) return spec;
  const { root, bin } = await ensureNpmPackage(pkg, opts);
  const node = realpathSync(process.execPath);
  const codeDirs = [...new Set([root, ...spec.launch.codeDirs])];
  return deepFreeze({
    ...spec,
    launch: { ...spec.launch, argv: [node, bin, ...spec.launch.args], codeDirs },
  });
}

function findBin(pkg: NpmPackage, root: string): string {
  const pkgDir = join(root, "node_modules", pkg.name);
  let manifest: { bin?: string | Record<string, string> };
  try {
    manifest = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as typeof manifest;
  } catch (err) {
    throw installFailed(pkg, `its package.json could not be read (${(err as Error).message})`, []);
  }
  let rel: string | undefined;
  if (typeof manifest.bin === "string") rel = manifest.bin;
  else if (manifest.bin && typeof manifest.bin === "object") {
    const unscoped = pkg.name.replace(/^@[^/]+\//, "");
    rel = manifest.bin[unscoped] ?? Object.values(manifest.bin)[0];
  }
  if (!rel) {
    throw new NucleusError("PACKAGE_INSTALL_FAILED", `npm package ${pkg.name}@${pkg.version} has no "bin" entry to run`, {
      hint: `run it with command = ["node", "/path/to/its/entry.js"] instead of package`,
    });
  }
  const realPkgDir = realpathSync(pkgDir);
  let bin: string;
  try {
    bin = realpathSync(join(realPkgDir, rel));
  } catch {
    throw installFailed(pkg, `its bin "${rel}" does not exist after installation`, []);
  }
  // SECURITY: a bin path like "../../x" must not point outside the package.
  const inside = relative(realPkgDir, bin);
  if (inside.startsWith("..") || isAbsolute(inside) || inside.split(sep)[0] === "..") {
    throw installFailed(pkg, `its bin "${rel}" points outside the package`, []);
  }
  return bin;
}

/** Arguments of `npm` for one install (no shell; the package text was validated by the schema). */
export function npmInstallArgs(pkg: NpmPackage, prefix: string): string[] {
  return [
    "install",
    "--prefix",
    prefix,
    "--no-save",
    // SECURITY: a package's install scripts (and its dependencies') would run on the host, outside any sandbox.
    "--ignore-scripts",
    "--no-audit",
    "--no-fund",
    "--no-update-notifier",
    // SECURITY: only registry packages. npm 10 ran a git dependency's `prepare` script on the host despite
    // --ignore-scripts; git, URL (also a request to any address, loopback included), file and directory
    // dependencies are refused outright (npm >= 11 knows these switches: the bundled one is used).
    "--allow-git=none",
    "--allow-remote=none",
    "--allow-file=none",
    "--allow-directory=none",
    // Fail within a minute or two with npm's own error instead of retrying for many minutes.
    "--fetch-retries=1",
    "--fetch-timeout=60000",
    `${pkg.name}@${pkg.version}`,
  ];
}

/**
 * Removes temporary install directories left by a gateway that died mid-install (a live install is younger
 * than twice the install timeout: it is killed at the timeout).
 */
export function sweepStaleInstalls(parent: string, olderThanMs: number, log: Logger, now = Date.now()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return removed;
  }
  for (const n of names) {
    if (!n.startsWith(".install-")) continue;
    const dir = join(parent, n);
    try {
      const st = lstatSync(dir);
      if (!st.isDirectory() || now - st.mtimeMs < olderThanMs) continue;
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      /* gone meanwhile */
    }
  }
  if (removed.length > 0) log.debug("removed npm install directories left by an earlier gateway", { dirs: removed.join(",") });
  return removed;
}

/** The npm this package depends on (a known version with the switches above), as [node, npm-cli.js]. */
export function bundledNpm(): string[] {
  let cli: string;
  try {
    // (npm's "exports" name its package.json, not its bin.)
    cli = join(dirname(createRequire(import.meta.url).resolve("npm/package.json")), "bin", "npm-cli.js");
    if (!existsSync(cli)) throw new Error("missing");
  } catch {
    throw new NucleusError("PACKAGE_INSTALL_FAILED", "cannot install npm packages: the npm that nucleus depends on is not installed", {
      hint: "run `npm ci` (or scripts/setup.sh) in the nucleus package, or run the server with command = [...] instead",
    });
  }
  return [process.execPath, cli];
}

/** Variables npm gets from the gateway's environment: what it needs to run and reach the registry, no secret. */
const NPM_ENV = /^(PATH|HOME|USER|LOGNAME|LANG|LC_[A-Z]+|TZ|TMPDIR|(HTTPS?|NO)_PROXY|(https?|no)_proxy|npm_config_[A-Za-z0-9_]+|NODE_EXTRA_CA_CERTS|SSL_CERT_(FILE|DIR))$/;

/**
 * SECURITY: npm runs on the host, outside any sandbox: it gets only the variables above, never the gateway's
 * whole environment (which holds every `from = "env"` secret of every server).
 */
export function npmEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && NPM_ENV.test(k)) out[k] = v;
  out.npm_config_loglevel = "warn";
  return out;
}

function npmInstall(pkg: NpmPackage, prefix: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  let npm: string[];
  try {
    npm = bundledNpm();
  } catch (err) {
    return Promise.reject(err);
  }
  const argv = npmInstallArgs(pkg, prefix);
  return new Promise((resolvePromise, reject) => {
    // Its own process group: a timeout or an abort kills npm and whatever it started (git, a resolver).
    const child = spawn(npm[0]!, [...npm.slice(1), ...argv], { cwd: prefix, stdio: ["ignore", "ignore", "pipe"], env: npmEnv(), detached: true });
    const killAll = () => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    };
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-16_384); // bounded: only the tail is reported
    });
    const onAbort = () => {
      stderr += "\n(the install was cancelled)";
      killAll();
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => {
      stderr += `\n(npm install did not finish within ${timeoutMs} ms and was stopped)`;
      killAll();
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(installFailed(pkg, err.message, []));
    });
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (code === 0) resolvePromise();
      else reject(installFailed(pkg, `npm install exited with ${code ?? sig}`, stderr.trim().split("\n").slice(-8)));
    });
  });
}

function installFailed(pkg: NpmPackage, why: string, stderrTail: string[]): NucleusError {
  const tail = stderrTail.length ? `\n${stderrTail.map((l) => `    ${l}`).join("\n")}` : "";
  return new NucleusError("PACKAGE_INSTALL_FAILED", `installing npm package ${pkg.name}@${pkg.version} failed: ${why}${tail}`, {
    hint: `check that ${pkg.name}@${pkg.version} exists (npm view ${pkg.name}@${pkg.version}) and that the npm registry is reachable`,
  });
}
