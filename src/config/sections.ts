// The [gateway] and [secrets.NAME] sections → GatewaySpec and SecretSpec.
// Describes where a secret comes from; never reads it (src/secrets/ does).

import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { isLoopbackHost } from "../policy/loopback.js";
import type { PathSegment, Problems } from "./config-error.js";
import { expandPath, RELATIVE_HINT } from "./paths.js";
import { resolveProgram } from "./resolve.js";
import { ENV_NAME_RE, type GatewayRaw, type SecretRaw } from "./schema.js";
import type { GatewaySpec, SecretSpec } from "./spec.js";

export const GATEWAY_DEFAULTS = Object.freeze({
  auditMaxBytes: 10 * 1024 * 1024,
  maxMessageBytes: 16 * 1024 * 1024,
  httpListen: "127.0.0.1",
  httpPort: 8787,
  httpMaxSessions: 8,
  httpIdleTimeoutMs: 15 * 60 * 1000,
  secretTimeoutMs: 10_000,
});

export function resolveGateway(raw: Partial<GatewayRaw>, configDir: string, problems: Problems, warnings: Problems): GatewaySpec {
  let auditLog: string | null = null;
  if (raw.audit_log !== undefined) {
    auditLog = expandPath(raw.audit_log, configDir);
    if (auditLog === null) problems.add(["gateway", "audit_log"], `"${raw.audit_log}" is a relative path; ${RELATIVE_HINT}`);
  }
  let http: GatewaySpec["http"] = null;
  if (raw.http) {
    const listen = raw.http.listen ?? GATEWAY_DEFAULTS.httpListen;
    const insecureListenAny = raw.http.insecure_listen_any ?? false;
    if (listen !== "localhost" && isIP(listen) === 0) {
      problems.add(["gateway", "http", "listen"], `"${listen}" must be an IP address (e.g. "127.0.0.1") or "localhost"`);
    } else if (!isLoopbackHost(listen)) {
      // SECURITY: fail closed — reachable from other machines only by the dangerous switch.
      if (!insecureListenAny) {
        problems.add(["gateway", "http", "listen"], `"${listen}" is not a loopback address; set gateway.http.insecure_listen_any = true to accept clients from other machines (and put TLS in front)`);
      } else {
        warnings.add(["gateway", "http", "listen"], `the HTTP endpoint listens on ${listen}, reachable from other machines; every client needs the bearer token`);
      }
    }
    for (const [i, origin] of (raw.http.allowed_origins ?? []).entries()) {
      if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
        problems.add(["gateway", "http", "allowed_origins", i], `"${origin}" must be an origin like "http://localhost:3000" (scheme://host[:port], no path)`);
      }
    }
    http = {
      listen,
      port: raw.http.port ?? GATEWAY_DEFAULTS.httpPort,
      token: raw.http.token ?? null,
      allowedOrigins: raw.http.allowed_origins ?? [],
      maxSessions: raw.http.max_sessions ?? GATEWAY_DEFAULTS.httpMaxSessions,
      idleTimeoutMs: raw.http.idle_timeout_ms ?? GATEWAY_DEFAULTS.httpIdleTimeoutMs,
      insecureListenAny,
    };
  }
  let runAs: GatewaySpec["runAs"] = null;
  if (raw.run_as !== undefined) {
    const user = lookupUser(raw.run_as);
    if (!user) problems.add(["gateway", "run_as"], `no user "${raw.run_as}" on this host; create one for the sandboxes (e.g. useradd --system --no-create-home ${raw.run_as})`);
    else if (user.uid === 0) problems.add(["gateway", "run_as"], `"${raw.run_as}" is root (uid 0): name an unprivileged user`);
    else runAs = { user: raw.run_as, uid: user.uid, gid: user.gid };
  }
  return {
    backend: raw.backend ?? "auto",
    runAs,
    auditLog,
    auditArguments: raw.audit_arguments ?? false,
    auditMaxBytes: raw.audit_max_bytes ?? GATEWAY_DEFAULTS.auditMaxBytes,
    maxMessageBytes: raw.max_message_bytes ?? GATEWAY_DEFAULTS.maxMessageBytes,
    http,
  };
}

/** uid and gid of a local user, from /etc/passwd (no NSS: a user the sandbox setup can rely on). */
export function lookupUser(name: string, passwd = "/etc/passwd"): { uid: number; gid: number } | null {
  let text: string;
  try {
    text = readFileSync(passwd, "utf8");
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 4 && /^\d+$/.test(f[2]!) && /^\d+$/.test(f[3]!)) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return null;
}

const ONLY_FOR: Record<string, SecretRaw["from"]> = {
  env: "env",
  path: "file",
  insecure_permissions: "file",
  command: "command",
  attributes: "keyring",
};
const REQUIRED: Partial<Record<SecretRaw["from"], keyof SecretRaw>> = { file: "path", command: "command", keyring: "attributes" };

export function resolveSecret(
  name: string,
  raw: Partial<SecretRaw>,
  ctx: { configDir: string; problems: Problems; pathEnv: string; present?: ReadonlySet<string> },
): SecretSpec | null {
  const at = (...rest: PathSegment[]): PathSegment[] => ["secrets", name, ...rest];
  const before = ctx.problems.length;
  if (!ENV_NAME_RE.test(name)) ctx.problems.add(at(), `secret name "${name}" must be letters, digits and "_", not starting with a digit`);
  const from = raw.from;
  if (from === undefined) return null; // reported by the schema
  for (const [key, source] of Object.entries(ONLY_FOR)) {
    if (key in raw && source !== from) ctx.problems.add(at(key), `only valid with from = "${source}" (this secret has from = "${from}")`);
  }
  if ("timeout_ms" in raw && from !== "command" && from !== "keyring") {
    ctx.problems.add(at("timeout_ms"), `only valid with from = "command" or "keyring"`);
  }
  const required = REQUIRED[from];
  // (A key present but invalid is already reported by the schema.)
  if (required && raw[required] === undefined && !ctx.present?.has(required)) ctx.problems.add(at(required), `is required with from = "${from}"`);
  let path: string | null = null;
  if (from === "file" && raw.path !== undefined) {
    path = expandPath(raw.path, ctx.configDir);
    if (path === null) ctx.problems.add(at("path"), `"${raw.path}" is a relative path; ${RELATIVE_HINT}`);
  }
  let command: string[] | null = null;
  if (from === "command" && raw.command) {
    const program = resolveProgram(raw.command[0]!, ctx, at("command", 0));
    command = program ? [program, ...raw.command.slice(1)] : null;
  }
  if (from === "keyring" && raw.attributes && Object.keys(raw.attributes).length === 0) {
    ctx.problems.add(at("attributes"), "needs at least one attribute, e.g. { service = \"github\" }");
  }
  if (ctx.problems.length > before) return null;
  return {
    name,
    from,
    env: from === "env" ? (raw.env ?? name) : null,
    path,
    insecurePermissions: raw.insecure_permissions ?? false,
    command,
    timeoutMs: raw.timeout_ms ?? GATEWAY_DEFAULTS.secretTimeoutMs,
    attributes: from === "keyring" ? (raw.attributes ?? null) : null,
  };
}
