// Where the HTTP bearer token comes from: any configured secret source (env,
// file with its permission check, command, keyring), or a fresh random token
// that the caller prints once. Not responsible for checking requests.

import type { SecretSpec } from "../../config/spec.js";
import { loadSecret } from "../../secrets/load.js";
import { generateToken } from "./options.js";

export interface HttpToken {
  readonly token: string;
  /** True when no source was configured and a random token was made for this run. */
  readonly generated: boolean;
}

/** Loads the token from `source` (a `[secrets.NAME]` entry), or generates one when there is none. */
export async function resolveHttpToken(source: SecretSpec | null, env: NodeJS.ProcessEnv): Promise<HttpToken> {
  if (!source) return { token: generateToken(), generated: true };
  return { token: await loadSecret(source, { env }), generated: false };
}

/**
 * The lines the CLI writes to stderr once at start. The token appears only when
 * it was generated (the user cannot know it otherwise); a configured token is
 * never printed.
 */
export function httpStartNotice(url: string, t: HttpToken): string {
  const lines = [`nucleus: serving MCP over Streamable HTTP at ${url}`];
  if (t.generated) {
    lines.push(
      `nucleus: bearer token for this run (shown once; configure [gateway.http] token to keep one across restarts):`,
      `  Authorization: Bearer ${t.token}`,
    );
  } else {
    lines.push("nucleus: clients must send the configured bearer token (Authorization: Bearer …)");
  }
  return lines.join("\n") + "\n";
}
