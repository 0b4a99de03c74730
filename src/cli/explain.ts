// `nucleus explain NAME`: the effective policy of one server after profiles —
// what it runs, what it may see and reach, which secrets it gets (by name only),
// and (explain-host.ts) which backend would run it here and how it enforces it.
// Never reads a secret value; holds no policy of its own.

import { parseArgs } from "node:util";
import { ExitCode, NucleusError } from "../errors.js";
import { discoverConfig } from "../config/discover.js";
import { loadConfig } from "../config/load.js";
import { builtinProfile } from "../config/profiles.js";
import type { NucleusConfig, ServerSpec } from "../config/spec.js";
import { describeEgress, describeEgressRule } from "../policy/egress.js";
import type { CliCommand, CliContext } from "./command.js";
import { hostView, hostViewText, type HostView } from "./explain-host.js";

export const explainCommand: CliCommand = {
  name: "explain",
  summary: "show the effective sandbox policy of one server",
  usage: [
    "Usage: nucleus [-c FILE] explain NAME [--json]",
    "",
    "Prints the policy server NAME runs under once profiles are applied: backend,",
    "command, paths (read-only / writable), network rules and what each admits,",
    "secrets (names and targets only; values are never read), limits, tools, timeouts;",
    "then, probed on this host: the backend `auto` picks and why, the rules it would",
    "refuse, how each limit is enforced, and the egress path (proxy, pinned names).",
    "",
    "Options:",
    "  --json   print the resolved policy as JSON",
  ].join("\n"),

  async run(args: string[], ctx: CliContext): Promise<number> {
    const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { json: { type: "boolean" } } });
    if (positionals.length !== 1) {
      throw new NucleusError("USAGE", "explain needs exactly one server NAME", { hint: "nucleus explain NAME" });
    }
    const config = await loadConfig(discoverConfig({ flag: ctx.configPath, env: ctx.env }));
    const spec = config.servers.find((s) => s.name === positionals[0]);
    if (!spec) {
      const known = config.servers.map((s) => s.name);
      ctx.stderr.write(`nucleus: no server "${positionals[0]}" in ${config.source}; known servers: ${known.length ? known.join(", ") : "(none)"}\n`);
      return ExitCode.usage;
    }
    const host = await hostView(spec, config.gateway.backend);
    ctx.stdout.write(values.json ? JSON.stringify(explainJson(spec, config, host), null, 2) + "\n" : explainText(spec, config, host));
    return ExitCode.ok;
  },
};

function backendLine(spec: ServerSpec, config: NucleusConfig): string {
  if (spec.backend !== "auto") return spec.backend;
  return `auto (the best available on this host at start; gateway default ${config.gateway.backend})`;
}

export function explainJson(spec: ServerSpec, config: NucleusConfig, host?: HostView): unknown {
  return {
    name: spec.name,
    source: config.source,
    profile: spec.profile,
    backend: spec.backend,
    launch: spec.launch,
    paths: spec.paths,
    network:
      spec.network.mode === "none"
        ? { mode: "none" }
        : { mode: "allowlist", hosts: spec.network.hosts.map((h) => ({ ...h, admits: describeEgressRule(h) })) },
    secrets: spec.secrets,
    limits: spec.limits,
    tools: spec.tools,
    timeouts: spec.timeouts,
    lazy: spec.lazy,
    insecureUnsandboxed: spec.insecureUnsandboxed,
    redactResults: spec.redactResults,
    ...(host ? { host } : {}),
  };
}

export function explainText(spec: ServerSpec, config: NucleusConfig, host?: HostView): string {
  const out: string[] = [];
  const l = spec.launch;
  const profile = spec.profile === null ? "(none)" : `${spec.profile}${builtinProfile(spec.profile) ? ` (built-in: ${builtinProfile(spec.profile)!.description})` : " (user profile)"}`;
  out.push(`server ${spec.name}  (from ${config.source})`);
  out.push(`  profile:   ${profile}`);
  out.push(`  backend:   ${backendLine(spec, config)}`);
  if (spec.insecureUnsandboxed) out.push(`  WARNING:   insecure_unsandboxed = true: may run with no isolation at all`);
  if (l.package) out.push(`  package:   ${l.package.spec} (installed on first start; install scripts never run)`);
  out.push(`  argv:      ${l.argv.length ? l.argv.map((a) => JSON.stringify(a)).join(" ") : `(node + the package's bin)${l.args.length ? ` + args ${JSON.stringify(l.args)}` : ""}`}`);
  out.push(`  cwd:       ${l.cwd ?? "(the private home)"}`);
  const envKeys = Object.keys(l.env);
  out.push(`  env:       ${envKeys.length ? envKeys.map((k) => `${k}=${JSON.stringify(l.env[k])}`).join(" ") : "(none besides PATH, HOME, LANG)"}`);
  out.push(`  code dirs: ${l.codeDirs.length ? `${l.codeDirs.join(", ")} (read-only)` : l.package ? "(the package install dir, read-only)" : "(none)"}`);
  out.push("  paths:");
  if (spec.paths.length === 0) out.push("    (none: only a private /tmp and home)");
  for (const p of spec.paths) out.push(`    ${p.writable ? "rw" : "ro"}  ${p.path}`);
  if (spec.network.mode === "none") out.push("  network:   none (no packet leaves the sandbox)");
  else {
    out.push("  network:   allowlist (through the egress proxy; DNS resolved on the host; a missing rule means deny)");
    for (const line of describeEgress(spec.network.hosts)) out.push(`    ${line}`);
  }
  out.push("  secrets:");
  if (spec.secrets.length === 0) out.push("    (none)");
  for (const s of spec.secrets) out.push(`    ${s.name} → ${s.as === "env" ? `environment variable ${s.target}` : `file ${s.target}`}`);
  const lim = spec.limits;
  const tag = (explicit: boolean) => (explicit ? "(explicit)" : "(default)");
  out.push("  limits:");
  out.push(`    memory  ${lim.memoryMiB} MiB ${tag(lim.explicit.memory)}`);
  out.push(`    cpus    ${lim.cpus} ${tag(lim.explicit.cpus)}`);
  out.push(`    pids    ${lim.pids} ${tag(lim.explicit.pids)}`);
  out.push(`    tmp     ${lim.tmpMiB} MiB (private /tmp and home)`);
  out.push(`  tools:     allow ${spec.tools.allow.length ? spec.tools.allow.join(", ") : "(all)"}; deny ${spec.tools.deny.length ? spec.tools.deny.join(", ") : "(none)"}`);
  out.push(`  timeouts:  startup ${spec.timeouts.startupMs} ms, request ${spec.timeouts.requestMs} ms, shutdown grace ${spec.timeouts.shutdownGraceMs} ms`);
  out.push(`  lazy:      ${spec.lazy ? "yes (started on first use)" : "no (started with the gateway)"}`);
  out.push(`  redact:    ${spec.redactResults ? "secret values are masked in results" : "results are passed unredacted"}`);
  if (host) out.push(...hostViewText(host));
  return out.join("\n") + "\n";
}
