// Loads the secrets one server is granted (its `secrets = [...]`) into the map
// a backend receives as LaunchContext.secrets. Not responsible for delivery
// into the sandbox (backends) or for reading config (src/config/).

import type { SecretSpec, ServerSpec } from "../config/spec.js";
import { NucleusError } from "../errors.js";
import { loadSecret } from "./load.js";
import type { SecretRedactor } from "./redactor.js";

export interface ResolvedSecret {
  readonly value: string;
  readonly as: "env" | "file";
}

export interface ResolveOptions {
  /** Every loaded value is registered here before it is returned, so no value can escape unmasked. */
  readonly redactor?: SecretRedactor;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * Loads the server's secrets, keyed by SecretRef.target. The first failure (in
 * the order of the server's `secrets`) stops this server only: the error names
 * the server, the secret and its source, never a value.
 */
export async function resolveServerSecrets(
  server: ServerSpec,
  all: Readonly<Record<string, SecretSpec>>,
  env: NodeJS.ProcessEnv,
  opts: ResolveOptions = {},
): Promise<Map<string, ResolvedSecret>> {
  const seen = new Set<string>();
  for (const ref of server.secrets) {
    const pattern = ref.as === "env" ? ENV_NAME : FILE_NAME;
    if (!pattern.test(ref.target)) {
      throw new NucleusError("CONFIG_INVALID", `servers.${server.name}.secrets: "${ref.target}" is not a valid ${ref.as === "env" ? "environment variable" : "file"} name for secret "${ref.name}"`, {
        hint: ref.as === "env" ? "Use letters, digits and _ (not starting with a digit)." : "Use a plain file name: letters, digits, _ . - (no /).",
      });
    }
    if (seen.has(ref.target)) {
      throw new NucleusError("CONFIG_INVALID", `servers.${server.name}.secrets: two secrets are delivered as "${ref.target}"`, {
        hint: "Give each secret its own target name.",
      });
    }
    seen.add(ref.target);
    if (!Object.hasOwn(all, ref.name)) {
      throw new NucleusError("CONFIG_INVALID", `servers.${server.name}.secrets: unknown secret "${ref.name}"`, {
        hint: `Define it in a [secrets.${ref.name}] table, or remove it from the server's secrets.`,
      });
    }
  }
  // Load concurrently (command sources may be slow), report the first failure in config order.
  const results = await Promise.allSettled(server.secrets.map((ref) => loadSecret(all[ref.name]!, { env })));
  const out = new Map<string, ResolvedSecret>();
  server.secrets.forEach((ref, i) => {
    const r = results[i]!;
    if (r.status === "fulfilled") {
      opts.redactor?.add(ref.name, r.value);
      out.set(ref.target, { value: r.value, as: ref.as });
    }
  });
  const failedAt = results.findIndex((r) => r.status === "rejected");
  if (failedAt !== -1) {
    const reason = (results[failedAt] as PromiseRejectedResult).reason as unknown;
    const ref = server.secrets[failedAt]!;
    const inner = reason instanceof NucleusError ? reason : null;
    throw new NucleusError(
      "SECRET_UNAVAILABLE",
      `server "${server.name}" cannot start: ${inner ? inner.message : `secret "${ref.name}" could not be loaded`}`,
      { hint: inner?.hint, cause: reason },
    );
  }
  return out;
}
