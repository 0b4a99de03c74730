// The shape of nucleus.toml as zod schemas: types, ranges and formats of each
// key, strict everywhere (an unknown key is an error). Cross-key rules and
// anything touching the filesystem live in resolve.ts, not here.

import { z } from "zod";
import type { NpmPackage } from "./spec.js";

export const BACKENDS = ["auto", "bubblewrap", "qemu", "firecracker", "unsandboxed"] as const;
export const SECRET_SOURCES = ["env", "file", "command", "keyring"] as const;

export const SERVER_NAME_RE = /^[A-Za-z0-9_-]{1,32}$/;
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NPM_SPEC_RE =
  /^npm:((?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*)@((?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$/;

const MiB = 1024 * 1024;

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const nonEmpty = z.string().min(1);
// SECURITY: a NUL byte cannot be part of a host path or argv entry; the kernel would cut the string there.
const noNul = nonEmpty.refine((s) => !s.includes("\u0000"), "must not contain a NUL character");
const noNulOrEmpty = z.string().refine((s) => !s.includes("\u0000"), "must not contain a NUL character");

export const toolsSchema = z.strictObject({
  // An empty allow list would read as "allow all" (an empty allow list means no
  // filter); say what is meant instead: omit the key, or name at least one tool.
  allow: z.array(nonEmpty).min(1, "an empty allow list would allow every tool; omit tools.allow to allow all, or list the tools to allow").optional(),
  deny: z.array(nonEmpty).optional(),
});

export const timeoutsSchema = z.strictObject({
  startup_ms: int(100, 3_600_000).optional(),
  request_ms: int(100, 86_400_000).optional(),
  shutdown_grace_ms: int(0, 600_000).optional(),
});

/** Keys a profile may set, and that a server may set to narrow or extend its profile. */
export const policyShape = {
  allowed_paths: z.array(noNul).optional(),
  writable_paths: z.array(noNul).optional(),
  network: z.enum(["none", "allowlist"]).optional(),
  allowed_hosts: z.array(z.string()).optional(),
  backend: z.enum(BACKENDS).optional(),
  memory_mib: int(16, 1_048_576).optional(),
  cpus: z.number().gt(0).max(1024).optional(),
  pids: int(1, 4_194_304).optional(),
  tmp_mib: int(1, 1_048_576).optional(),
  tools: toolsSchema.optional(),
  timeouts: timeoutsSchema.optional(),
  lazy: z.boolean().optional(),
  redact_results: z.boolean().optional(),
};
export type PolicyRaw = z.infer<z.ZodObject<typeof policyShape>>;

export const profileSchema = z.strictObject({
  extends: nonEmpty.optional(),
  ...policyShape,
});
export type ProfileRaw = z.infer<typeof profileSchema>;

export const packageSchema = z
  .string()
  .regex(NPM_SPEC_RE, 'must be "npm:NAME@EXACT_VERSION", e.g. "npm:@modelcontextprotocol/server-memory@2026.8.31" (no ranges or tags)')
  .transform((spec): NpmPackage => {
    const m = NPM_SPEC_RE.exec(spec)!;
    return Object.freeze({ registry: "npm", name: m[1]!, version: m[2]!, spec });
  });

export const secretRefSchema = z.union([
  nonEmpty,
  z.strictObject({
    name: nonEmpty,
    as: z.enum(["env", "file"]).optional(),
    target: nonEmpty.optional(),
  }),
], { error: 'must be a secret name or an inline table { name = "NAME", as = "env" | "file", target = "…" }' });

export const serverSchema = z.strictObject({
  package: packageSchema.optional(),
  command: z.array(noNul).min(1).optional(),
  args: z.array(noNulOrEmpty).optional(),
  vm_profile: nonEmpty.optional(),
  secrets: z.array(secretRefSchema).optional(),
  env: z.record(z.string().regex(ENV_NAME_RE, "must be a variable name (letters, digits, _)"), z.string()).optional(),
  cwd: noNul.optional(),
  code_dir: z.array(noNul).min(1).optional(),
  insecure_unsandboxed: z.boolean().optional(),
  ...policyShape,
});
export type ServerRaw = z.infer<typeof serverSchema>;

export const secretSchema = z.strictObject({
  from: z.enum(SECRET_SOURCES),
  env: z.string().regex(ENV_NAME_RE, "must be a variable name (letters, digits, _)").optional(),
  path: noNul.optional(),
  insecure_permissions: z.boolean().optional(),
  command: z.array(noNul).min(1).optional(),
  timeout_ms: int(100, 600_000).optional(),
  attributes: z.record(nonEmpty, z.string()).optional(),
});
export type SecretRaw = z.infer<typeof secretSchema>;

export const gatewaySchema = z.strictObject({
  backend: z.enum(BACKENDS).optional(),
  audit_log: noNul.optional(),
  audit_arguments: z.boolean().optional(),
  audit_max_bytes: int(4096, 1024 * 1024 * MiB).optional(),
  max_message_bytes: int(1024, 1024 * MiB).optional(),
  run_as: noNul.optional(),
  http: z
    .strictObject({
      listen: nonEmpty.optional(),
      port: int(0, 65535).optional(),
      token: nonEmpty.optional(),
      allowed_origins: z.array(nonEmpty).optional(),
      max_sessions: int(1, 1024).optional(),
      idle_timeout_ms: int(1000, 7 * 24 * 3600 * 1000).optional(),
      insecure_listen_any: z.boolean().optional(),
    })
    .optional(),
});
export type GatewayRaw = z.infer<typeof gatewaySchema>;

const table = z.record(z.string(), z.unknown());
export const documentSchema = z.strictObject({
  gateway: table.optional(),
  profiles: z.record(z.string(), table).optional(),
  servers: z.record(z.string(), table).optional(),
  secrets: z.record(z.string(), table).optional(),
});

/** The keys of the table that `schema` describes at `path` (indices and record keys walk into elements). */
export function keysAt(schema: z.ZodType, path: readonly (string | number)[]): string[] {
  let cur: z.ZodType | undefined = schema;
  for (const seg of [...path, null]) {
    // Unwrap optional, transform pipes and unions (the table-shaped branch).
    for (let guard = 0; cur && guard < 8; guard++) {
      if (cur instanceof z.ZodOptional) cur = cur.unwrap() as z.ZodType;
      else if (cur instanceof z.ZodPipe) cur = cur.in as z.ZodType;
      else if (cur instanceof z.ZodUnion) cur = (cur.options as z.ZodType[]).find((o) => o instanceof z.ZodObject);
      else break;
    }
    if (seg === null || !cur) break;
    if (cur instanceof z.ZodObject) cur = (cur.shape as Record<string, z.ZodType>)[String(seg)];
    else if (cur instanceof z.ZodArray) cur = cur.element as z.ZodType;
    else if (cur instanceof z.ZodRecord) cur = cur.valueType as z.ZodType;
    else cur = undefined;
  }
  return cur instanceof z.ZodObject ? Object.keys(cur.shape) : [];
}

/**
 * Parses a table key by key: every problem of `schema` is reported, and the
 * keys that are valid on their own are returned, so later checks can still run
 * on them and all problems come out at once.
 */
export function parseTable<S extends z.ZodObject>(
  schema: S,
  raw: unknown,
  report: (issues: readonly z.core.$ZodIssue[], keys: (path: (string | number)[]) => string[]) => void,
): Partial<z.infer<S>> | null {
  const whole = schema.safeParse(raw);
  if (whole.success) return whole.data as Partial<z.infer<S>>;
  report(whole.error.issues, (path) => keysAt(schema, path));
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return null;
  const out: Record<string, unknown> = {};
  for (const [key, fieldSchema] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
    const value = (raw as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const res = fieldSchema.safeParse(value);
    if (res.success) out[key] = res.data;
  }
  return out as Partial<z.infer<S>>;
}
