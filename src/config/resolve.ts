// Validated TOML sections → frozen ServerSpec: profile layers merged with the
// server's own keys, paths realpath'd, hosts parsed, command resolved on PATH,
// secrets referenced by name. Reports every problem; never reads a secret value.
// Not responsible for TOML parsing or the gateway/secrets sections (load.ts, sections.ts).

import { accessSync, constants, statSync } from "node:fs";
import { whichSync } from "../sandbox/which.js";
import { NucleusError } from "../errors.js";
import { parseHostRule } from "../policy/hosts.js";
import { toolPatternProblem } from "../policy/tools.js";
import type { PathSegment, Problems } from "./config-error.js";
import { defaultCodeDirs, tooBroad } from "./code-dirs.js";
import { existingRealPath, expandPath, RELATIVE_HINT } from "./paths.js";
import { checkCeiling, mergeLayers, resolveProfile, type Layer, type ResolvedProfile } from "./profiles.js";
import { ENV_NAME_RE, SERVER_NAME_RE, type PolicyRaw, type ServerRaw } from "./schema.js";
import type { GatewaySpec, HostRule, PathGrant, SecretRef, ServerSpec } from "./spec.js";

export const DEFAULTS = Object.freeze({
  memoryMiB: 512,
  cpus: 1,
  pids: 256,
  tmpMiB: 64,
  startupMs: 30_000,
  requestMs: 60_000,
  shutdownGraceMs: 5_000,
});

export interface ResolveContext {
  readonly configDir: string;
  readonly problems: Problems;
  readonly warnings: Problems;
  readonly gateway: GatewaySpec;
  /** Names of every [secrets.NAME] table, valid or not. */
  readonly secretNames: ReadonlySet<string>;
  readonly userLayers: ReadonlyMap<string, Layer>;
  readonly userExtends: ReadonlyMap<string, string | undefined>;
  readonly pathEnv: string;
}

/** Checks the paths, hosts and tool patterns of one profile or server section. */
export function normalizeLayer(source: PathSegment[], policy: Partial<PolicyRaw>, ctx: Pick<ResolveContext, "configDir" | "problems">): Layer {
  const { allowed_hosts, ...rest } = policy;
  const out: Omit<PolicyRaw, "allowed_hosts"> = { ...rest };
  for (const key of ["allowed_paths", "writable_paths"] as const) {
    const list = policy[key];
    if (!list) continue;
    out[key] = list.flatMap((raw, i) => existingRealPath(raw, ctx.configDir, [...source, key, i], ctx.problems, { kind: "any", grant: true }) ?? []);
  }
  let hosts: HostRule[] | undefined;
  if (allowed_hosts) {
    hosts = [];
    allowed_hosts.forEach((raw, i) => {
      const res = parseHostRule(raw);
      if (res.ok) hosts!.push(res.rule);
      else ctx.problems.add([...source, "allowed_hosts", i], res.error);
    });
  }
  for (const list of ["allow", "deny"] as const) {
    policy.tools?.[list]?.forEach((pattern, i) => {
      const why = toolPatternProblem(pattern);
      if (why) ctx.problems.add([...source, "tools", list, i], why);
    });
  }
  if (policy.network === "none" && (allowed_hosts?.length ?? 0) > 0) {
    ctx.problems.add([...source, "network"], `"none" contradicts allowed_hosts in the same section; remove one of them`);
  }
  return { source, policy: out, hosts };
}

/** `present`: the keys the section had as written, valid or not. */
export function resolveServer(name: string, raw: Partial<ServerRaw>, present: ReadonlySet<string>, ctx: ResolveContext): ServerSpec | null {
  const at = (...rest: PathSegment[]): PathSegment[] => ["servers", name, ...rest];
  const before = ctx.problems.length;
  if (!SERVER_NAME_RE.test(name) || name.includes("__") || name.endsWith("_")) {
    ctx.problems.add(at(), `server name "${name}" must be 1-32 letters, digits, "_" or "-", without "__" and not ending in "_" (it prefixes tool names as NAME__tool)`);
  }

  let profile: ResolvedProfile | null = null;
  if (raw.vm_profile !== undefined) {
    profile = resolveProfile(raw.vm_profile, ctx.userLayers, ctx.userExtends, ctx.problems, at("vm_profile"));
  }
  const own = normalizeLayer(at(), raw, ctx);
  if (profile) checkCeiling(own, profile, ctx.problems);
  const merged = mergeLayers([...(profile?.layers ?? []), own]);

  // What runs.
  if (raw.command !== undefined && raw.package !== undefined) {
    ctx.problems.add(at("package"), "give either command or package, not both");
  } else if (!present.has("command") && !present.has("package")) {
    ctx.problems.add(at(), 'needs either command = ["program", …] or package = "npm:NAME@VERSION"');
  }
  const args = (raw.args ?? []).map((a) => expandArg(a, ctx.configDir));
  let argv: string[] = [];
  if (raw.command !== undefined && raw.package === undefined) {
    const program = resolveProgram(raw.command[0]!, ctx, at("command", 0));
    if (program) argv = [program, ...raw.command.slice(1).map((a) => expandArg(a, ctx.configDir)), ...args];
  }
  let codeDirs: string[] = [];
  if (raw.code_dir) {
    codeDirs = raw.code_dir.flatMap((d, i) => {
      const real = existingRealPath(d, ctx.configDir, at("code_dir", i), ctx.problems, { kind: "directory", grant: true });
      const why = real ? tooBroad(real) : null;
      if (why) ctx.problems.add(at("code_dir", i), `"${d}" is ${why}; name the directory of the server's code only`);
      return real && !why ? [real] : [];
    });
  } else if (argv.length > 0) {
    try {
      codeDirs = defaultCodeDirs(argv, name);
    } catch (err) {
      if (!(err instanceof NucleusError)) throw err;
      ctx.problems.add(at("command"), `${err.message}; ${err.hint ?? ""}`.replace(/; $/, ""));
    }
  }
  let cwd: string | null = null;
  if (raw.cwd !== undefined) cwd = existingRealPath(raw.cwd, ctx.configDir, at("cwd"), ctx.problems, { kind: "directory", grant: false });

  const secrets = resolveSecretRefs(raw, ctx, at);
  const env = { ...(raw.env ?? {}) };
  for (const s of secrets) {
    if (s.as === "env" && Object.hasOwn(env, s.target)) ctx.problems.add(at("env", s.target), `"${s.target}" is also the target of secret "${s.name}"; a secret must not be shadowed`);
  }

  // Backend and the unsandboxed opt-in.
  const backend = merged.backend ?? ctx.gateway.backend;
  const insecure = raw.insecure_unsandboxed ?? false;
  if (backend === "unsandboxed" && !insecure) {
    ctx.problems.add(merged.backend ? at("backend") : at(), `backend "unsandboxed" runs the server with no isolation at all; set servers.${name}.insecure_unsandboxed = true to accept that, or choose a sandboxing backend`);
  }
  if (insecure) {
    ctx.warnings.add(at("insecure_unsandboxed"), `server "${name}" may run without a sandbox: it can read and write every file of the user that runs nucleus — the config, every secret file, the audit log, /proc/<gateway pid>/environ and so every other server's secrets — and reach every host`);
  }

  // Network.
  const hosts = merged.allowed_hosts;
  const mode = merged.network ?? (hosts.length > 0 ? "allowlist" : "none");
  // (A contradiction within one section, or with a built-in profile, is reported where it is written.)
  if (mode === "none" && hosts.length > 0 && merged.networkSource && merged.networkSource[0] !== "builtin" && merged.networkSource !== own.source) {
    ctx.problems.add([...merged.networkSource, "network"], `"none" contradicts allowed_hosts of servers.${name}; remove one of them`);
  }
  if (mode === "allowlist" && hosts.length === 0) {
    ctx.warnings.add(at(), `server "${name}" has network = "allowlist" but no allowed_hosts: it can reach no host`);
  }

  // Paths: a writable path is also allowed; filesystem-readwrite makes all allowed paths writable unless writable_paths narrows.
  const writableSet = new Set(merged.writable_paths ?? (profile?.allWritable ? merged.allowed_paths ?? [] : []));
  const paths: PathGrant[] = [...new Set([...(merged.allowed_paths ?? []), ...writableSet])].map((p) => ({ path: p, writable: writableSet.has(p) }));

  if (ctx.problems.length > before) return null;
  return {
    name,
    profile: raw.vm_profile ?? null,
    backend,
    launch: { argv, args, package: raw.package ?? null, cwd, env, codeDirs },
    paths,
    network: mode === "none" ? { mode: "none" } : { mode: "allowlist", hosts },
    secrets,
    limits: {
      memoryMiB: merged.memory_mib ?? DEFAULTS.memoryMiB,
      cpus: merged.cpus ?? DEFAULTS.cpus,
      pids: merged.pids ?? DEFAULTS.pids,
      tmpMiB: merged.tmp_mib ?? DEFAULTS.tmpMiB,
      explicit: { memory: merged.set.has("memory_mib"), cpus: merged.set.has("cpus"), pids: merged.set.has("pids") },
    },
    tools: { allow: merged.tools.allow, deny: merged.tools.deny },
    timeouts: {
      startupMs: merged.timeouts.startup_ms ?? DEFAULTS.startupMs,
      requestMs: merged.timeouts.request_ms ?? DEFAULTS.requestMs,
      shutdownGraceMs: merged.timeouts.shutdown_grace_ms ?? DEFAULTS.shutdownGraceMs,
    },
    lazy: merged.lazy ?? false,
    insecureUnsandboxed: insecure,
    redactResults: merged.redact_results ?? true,
  };
}

/** `./x`, `../x` and `~/x` in command and args resolve against the config directory / home; other values pass verbatim. */
function expandArg(arg: string, configDir: string): string {
  if (arg.startsWith("./") || arg.startsWith("../") || arg.startsWith("~/")) return expandPath(arg, configDir) ?? arg;
  return arg;
}

/** Resolves a program: a path (absolute, ./, ../, ~/) or a name looked up on PATH. */
export function resolveProgram(program: string, ctx: Pick<ResolveContext, "configDir" | "problems" | "pathEnv">, at: PathSegment[]): string | null {
  if (!program.includes("/")) {
    const found = whichSync(program, ctx.pathEnv);
    if (!found) ctx.problems.add(at, `"${program}" was not found on PATH; install it or give its absolute path`);
    return found;
  }
  const abs = expandPath(program, ctx.configDir);
  if (abs === null) {
    ctx.problems.add(at, `"${program}" is a relative path; ${RELATIVE_HINT}`);
    return null;
  }
  try {
    accessSync(abs, constants.X_OK);
    if (!statSync(abs).isFile()) throw new Error("not a file");
    return abs;
  } catch {
    ctx.problems.add(at, `"${program}" does not exist or is not an executable file`);
    return null;
  }
}

function resolveSecretRefs(raw: Partial<ServerRaw>, ctx: ResolveContext, at: (...r: PathSegment[]) => PathSegment[]): SecretRef[] {
  const out: SecretRef[] = [];
  const targets = new Map<string, string>();
  (raw.secrets ?? []).forEach((entry, i) => {
    const ref = typeof entry === "string" ? { name: entry, as: "env" as const, target: entry } : { name: entry.name, as: entry.as ?? "env", target: entry.target ?? entry.name };
    if (!ctx.secretNames.has(ref.name)) {
      const known = [...ctx.secretNames].sort();
      ctx.problems.add(at("secrets", i), `unknown secret "${ref.name}"; define [secrets.${ref.name}]${known.length ? ` (defined: ${known.join(", ")})` : ""}`);
      return;
    }
    if (ref.as === "env" && !ENV_NAME_RE.test(ref.target)) {
      ctx.problems.add(at("secrets", i), `target "${ref.target}" is not a valid environment variable name`);
      return;
    }
    if (ref.as === "file" && (!/^[A-Za-z0-9._-]{1,128}$/.test(ref.target) || ref.target === "." || ref.target === "..")) {
      ctx.problems.add(at("secrets", i), `target "${ref.target}" must be a plain file name (letters, digits, ".", "_", "-")`);
      return;
    }
    const key = `${ref.as}:${ref.target}`;
    if (targets.has(key)) {
      ctx.problems.add(at("secrets", i), `secrets "${targets.get(key)}" and "${ref.name}" both deliver to ${ref.as} "${ref.target}"`);
      return;
    }
    targets.set(key, ref.name);
    out.push(ref);
  });
  return out;
}
