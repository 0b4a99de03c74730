// Reads nucleus.toml and turns it into a deep-frozen NucleusConfig, or into the
// complete list of problems (every one with its TOML path and line), sorted by path.
// Not responsible for finding the file (discover.ts) or installing packages.

import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse, TomlError } from "smol-toml";
import { NucleusError } from "../errors.js";
import { configInvalidError, formatPath, Problems, sortProblems, type ConfigProblem, type PathSegment } from "./config-error.js";
import { indexLines, lineOf } from "./lines.js";
import { builtinProfile, checkCeiling, resolveProfile, type Layer } from "./profiles.js";
import { checkProtectedPaths } from "./protected-paths.js";
import { normalizeLayer, resolveServer, type ResolveContext } from "./resolve.js";
import { documentSchema, gatewaySchema, parseTable, profileSchema, secretSchema, serverSchema, SERVER_NAME_RE } from "./schema.js";
import { resolveGateway, resolveSecret } from "./sections.js";
import type { NucleusConfig, SecretSpec, ServerSpec } from "./spec.js";

export interface ConfigCheck {
  /** Absolute path of the file. */
  readonly source: string;
  /** Null when there is any problem. */
  readonly config: NucleusConfig | null;
  readonly problems: readonly ConfigProblem[];
  /** Valid but risky settings (insecure_unsandboxed, a non-loopback HTTP listener, …). */
  readonly warnings: readonly ConfigProblem[];
}

export interface LoadOptions {
  /** PATH used to resolve `command[0]`; default: this process's PATH. */
  readonly pathEnv?: string;
}

/** Loads and validates a config file; throws CONFIG_INVALID listing every problem. */
export async function loadConfig(path: string, opts: LoadOptions = {}): Promise<NucleusConfig> {
  const res = await checkConfig(path, opts);
  if (res.config === null) throw configInvalidError(res.source, res.problems);
  return res.config;
}

/** Every problem of a config file (sorted by path; empty when it is valid). */
export async function configProblems(path: string, opts: LoadOptions = {}): Promise<readonly ConfigProblem[]> {
  return (await checkConfig(path, opts)).problems;
}

/** Validates a config file and returns the config or every problem, plus warnings. */
export async function checkConfig(path: string, opts: LoadOptions = {}): Promise<ConfigCheck> {
  const source = resolve(path);
  let text: string;
  try {
    text = readFileSync(source, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new NucleusError("CONFIG_NOT_FOUND", `config file ${source} does not exist`, { hint: "check the -c/--config path" });
    }
    throw new NucleusError("CONFIG_INVALID", `cannot read config file ${source}: ${(err as Error).message}`, { cause: err });
  }
  return checkConfigText(text, source, opts);
}

/** Validates config text as if read from `source` (relative paths resolve against its directory). */
export function checkConfigText(text: string, source: string, opts: LoadOptions = {}): ConfigCheck {
  const problems = new Problems();
  const warnings = new Problems();
  const index = indexLines(text);
  const finish = (config: NucleusConfig | null): ConfigCheck => {
    const done = (list: Problems) =>
      sortProblems(
        dedupe(list.items.map((p) => ({ path: formatPath(p.path), line: p.line ?? lineOf(index, p.path), message: p.message }))),
      );
    const all = done(problems);
    return { source, config: all.length === 0 ? config : null, problems: all, warnings: done(warnings) };
  };

  let doc: Record<string, unknown>;
  try {
    doc = parse(text, { unsafeKeyBehaviour: "throw" }) as Record<string, unknown>;
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    problems.add(headerAt(index, err.line), tomlMessage(err), err.line);
    return finish(null);
  }

  const report = (base: PathSegment[]) => (issues: Parameters<Problems["addZodIssues"]>[1], keys: (p: PathSegment[]) => string[]) =>
    problems.addZodIssues(base, issues, keys);
  const top = parseTable(documentSchema, doc, report([])) ?? {};
  const configDir = dirname(source);
  const pathEnv = opts.pathEnv ?? process.env.PATH ?? "";

  const gatewayRaw = parseTable(gatewaySchema, top.gateway ?? {}, report(["gateway"])) ?? {};
  const gateway = resolveGateway(gatewayRaw, configDir, problems, warnings);

  const secrets: Record<string, SecretSpec> = {};
  for (const [name, raw] of Object.entries(top.secrets ?? {})) {
    const partial = parseTable(secretSchema, raw, report(["secrets", name]));
    const present = new Set(typeof raw === "object" && raw !== null ? Object.keys(raw) : []);
    const spec = partial && resolveSecret(name, partial, { configDir, problems, pathEnv, present });
    if (spec) secrets[name] = spec;
  }

  if (gateway.http?.token && !Object.hasOwn(top.secrets ?? {}, gateway.http.token)) {
    problems.add(["gateway", "http", "token"], `unknown secret "${gateway.http.token}"; define [secrets.${gateway.http.token}] holding the bearer token`);
  }

  const userLayers = new Map<string, Layer>();
  const userExtends = new Map<string, string | undefined>();
  for (const [name, raw] of Object.entries(top.profiles ?? {})) {
    const at: PathSegment[] = ["profiles", name];
    if (builtinProfile(name)) problems.add(at, `"${name}" is a built-in profile; give your profile another name (it may say extends = "${name}")`);
    else if (!SERVER_NAME_RE.test(name)) problems.add(at, `profile name "${name}" must be 1-32 letters, digits, "_" or "-"`);
    const partial = parseTable(profileSchema, raw, report(at)) ?? {};
    const { extends: base, ...policy } = partial;
    userExtends.set(name, base);
    userLayers.set(name, normalizeLayer(at, policy, { configDir, problems }));
  }
  for (const [name, layer] of userLayers) {
    const base = userExtends.get(name);
    if (base === undefined) continue;
    const resolved = resolveProfile(base, userLayers, userExtends, problems, ["profiles", name, "extends"]);
    if (resolved) checkCeiling(layer, resolved, problems);
  }

  const ctx: ResolveContext = { configDir, problems, warnings, gateway, secretNames: new Set(Object.keys(top.secrets ?? {})), userLayers, userExtends, pathEnv };
  const servers: ServerSpec[] = [];
  const presentKeys = new Map<string, ReadonlySet<string>>();
  for (const [name, raw] of Object.entries(top.servers ?? {})) {
    const partial = parseTable(serverSchema, raw, report(["servers", name]));
    if (!partial) continue;
    const present = new Set(typeof raw === "object" && raw !== null ? Object.keys(raw) : []);
    presentKeys.set(name, present);
    const spec = resolveServer(name, partial, present, ctx);
    if (spec) servers.push(spec);
  }
  const httpToken = gateway.http?.token;
  for (const spec of servers) {
    // SECURITY: a server holding the gateway's own bearer token could call every other server's tools through it.
    if (httpToken && spec.secrets.some((r) => r.name === httpToken)) {
      problems.add(["servers", spec.name, "secrets"], `"${httpToken}" is the HTTP endpoint's bearer token ([gateway.http] token); a server holding it could call every server's tools through the gateway; give the gateway a secret of its own`);
    }
  }
  // SECURITY: no server may reach another's secret file, the audit log, or (writable) what runs on the host.
  checkProtectedPaths({ config: { source, gateway, secrets, servers }, present: presentKeys }, problems);
  if (Object.keys(top.servers ?? {}).length === 0 && problems.length === 0) {
    warnings.add([], "no [servers.NAME] sections: the gateway would serve nothing");
  }
  return finish(deepFreeze({ source, gateway, servers, secrets }));
}

function tomlMessage(err: TomlError): string {
  const first = (err.message.split("\n")[0] ?? err.message).replace(/^Invalid TOML document: /, "");
  const msg = `TOML syntax: ${first}`;
  return /redefine/.test(first) ? `${msg} (a table or key is defined twice, e.g. two [servers.NAME] sections with the same NAME)` : msg;
}

/** The table header on `line` or the nearest one above it, as a path. */
function headerAt(index: ReturnType<typeof indexLines>, line: number): PathSegment[] {
  let best: PathSegment[] = [];
  for (const e of index.entries) if (e.line <= line) best = [...e.keys];
  return best;
}

function dedupe(list: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return list.filter((p) => {
    const key = `${p.path}\u0000${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function deepFreeze<T>(value: T, seen = new WeakSet<object>()): T {
  if (typeof value === "object" && value !== null && !seen.has(value)) {
    seen.add(value);
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v, seen);
  }
  return value;
}
