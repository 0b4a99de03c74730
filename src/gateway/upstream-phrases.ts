// Small pure helpers of the upstream (upstream.ts): how an exit or a failed
// start is described to the client, and which server→client requests a
// client's capabilities allow. Phrases are built from causes and codes, never
// from guest text, paths or argv.

import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  type ClientCapabilities,
  type McpError,
} from "@modelcontextprotocol/sdk/types.js";
import { NucleusError } from "../errors.js";
import type { SandboxExit } from "../sandbox/backend.js";

export const SERVER_TO_CLIENT_REQUESTS = ["sampling/createMessage", "elicitation/create", "roots/list"] as const;
type ServerToClientRequest = (typeof SERVER_TO_CLIENT_REQUESTS)[number];

/** How a sandbox ended, as a phrase safe for the client (built from the cause, never from guest text). */
export function exitPhrase(exit: SandboxExit): string {
  if (exit.cause === "oom") return "ran out of memory";
  if (exit.signal) return `was killed by ${exit.signal}`;
  if (exit.code !== null) return `exited with code ${exit.code}`;
  return exit.cause === "stopped" ? "was stopped" : "ended";
}

/** Why a start failed, as a phrase safe for the client. */
export function startFailureReason(err: unknown): string {
  const code = err instanceof NucleusError ? err.code : null;
  switch (code) {
    case "POLICY_REFUSED":
      return "a rule of its policy cannot be enforced here";
    case "SECRET_UNAVAILABLE":
      return "a secret it needs could not be read";
    case "PACKAGE_INSTALL_FAILED":
      return "its npm package could not be installed";
    case "CONFIG_INVALID":
      return "its configuration is invalid";
    default:
      return "its sandbox could not be started";
  }
}

/** True when the SDK failed a request because the caller cancelled it. */
export function cancelledByCaller(err: McpError): boolean {
  return err.message.includes("Request was cancelled");
}

export function capabilityFor(method: ServerToClientRequest, caps: ClientCapabilities): boolean {
  if (method === "sampling/createMessage") return Boolean(caps.sampling);
  if (method === "elicitation/create") return Boolean(caps.elicitation);
  return Boolean(caps.roots);
}

export function requestSchemaFor(method: ServerToClientRequest) {
  if (method === "sampling/createMessage") return CreateMessageRequestSchema;
  if (method === "elicitation/create") return ElicitRequestSchema;
  return ListRootsRequestSchema;
}
