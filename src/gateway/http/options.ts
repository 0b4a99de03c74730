// Options of the Streamable HTTP downstream, their validation (fail closed:
// a non-loopback bind needs the explicitly dangerous switch, a weak token is
// refused) and the bearer token generator. Not responsible for serving.

import { randomBytes } from "node:crypto";
import { GATEWAY_DEFAULTS } from "../../config/sections.js";
import { isLoopbackHost } from "../../policy/loopback.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { NucleusError, refused } from "../../errors.js";
import type { Logger } from "../../log.js";

/** What one MCP session needs of a gateway; `Gateway` satisfies it. */
export interface SessionGateway {
  connect(transport: Transport): Promise<void>;
  close(): Promise<void>;
}

export interface HttpGatewayOptions {
  /** Address to bind; loopback (127.0.0.1, ::1, localhost) unless insecureListenAny. */
  readonly host: string;
  /** TCP port; 0 picks a free one (the returned url says which). */
  readonly port: number;
  /** Required as `Authorization: Bearer <token>` on every request. */
  readonly token: string;
  /** Browser origins allowed to call (exact `scheme://host[:port]`); any other Origin gets 403. */
  readonly allowedOrigins: readonly string[];
  /**
   * A fresh gateway (its own upstream servers) for each MCP session. `session` is
   * a short tag of the session id (8 hex digits) for logs and audit records; it
   * is not enough to use the session.
   */
  readonly createSession: (info: { readonly session: string }) => SessionGateway;
  readonly log: Logger;
  /** Largest accepted POST body; larger gets 413. */
  readonly maxBodyBytes: number;
  /** Most sessions alive at once; one more gets 503. */
  readonly maxSessions: number;
  /** A session with no open request for this long is closed (its servers stopped). */
  readonly idleTimeoutMs: number;
  /** HTTP requests one session may have open at once (its GET stream included); one more gets 429. Default 64. */
  readonly maxRequestsPerSession?: number;
  /** The MCP endpoint path; default "/mcp". */
  readonly path?: string;
  /** SECURITY: allows binding a non-loopback address (reachable from the network). */
  readonly insecureListenAny?: boolean;
}

/** Defaults for `[gateway.http]`, from the config's own (one source); maxBodyBytes is [gateway] max_message_bytes. */
export const HTTP_DEFAULTS = {
  host: GATEWAY_DEFAULTS.httpListen,
  port: GATEWAY_DEFAULTS.httpPort,
  path: "/mcp",
  allowedOrigins: [] as readonly string[],
  maxBodyBytes: GATEWAY_DEFAULTS.maxMessageBytes,
  maxSessions: GATEWAY_DEFAULTS.httpMaxSessions,
  maxRequestsPerSession: 64,
  idleTimeoutMs: GATEWAY_DEFAULTS.httpIdleTimeoutMs,
} as const;

export const MIN_TOKEN_LENGTH = 16;
/** Off loopback anyone on the network may guess: a longer token with some variety (a generated one has 43). */
export const MIN_NETWORK_TOKEN_LENGTH = 32;
const MIN_NETWORK_TOKEN_DISTINCT = 12;
const TOKEN_CHARS = /^[\x21-\x7e]+$/; // visible ASCII: what an HTTP header can carry unchanged

/** A random bearer token (256 bits, base64url). The caller prints it once, to stderr. */
export function generateToken(): string {
  return randomBytes(32).toString("base64url");
}


/** Throws a sentence with a hint for any option that would weaken the endpoint. */
export function validateHttpOptions(o: HttpGatewayOptions): void {
  const usage = (message: string, hint: string) => new NucleusError("USAGE", message, { hint });
  if (!isLoopbackHost(o.host) && !o.insecureListenAny) {
    // SECURITY: off loopback anyone on the network can try the token; only an explicit switch allows it.
    throw refused(
      `refusing to listen on "${o.host}": it is not a loopback address, so the gateway would be reachable from the network`,
      `listen on 127.0.0.1 (the default), or set [gateway.http] insecure_listen_any = true if you accept that risk`,
    );
  }
  if (o.token.length < MIN_TOKEN_LENGTH || !TOKEN_CHARS.test(o.token)) {
    throw usage(
      `the HTTP bearer token must be at least ${MIN_TOKEN_LENGTH} visible ASCII characters without spaces`,
      `leave the token unset to have a random one generated, or write a longer one to the token file`,
    );
  }
  if (!isLoopbackHost(o.host) && (o.token.length < MIN_NETWORK_TOKEN_LENGTH || new Set(o.token).size < MIN_NETWORK_TOKEN_DISTINCT)) {
    // SECURITY: off loopback there is no local-only barrier: a short or repetitive token is guessable.
    throw usage(
      `the HTTP bearer token must be at least ${MIN_NETWORK_TOKEN_LENGTH} characters, with at least ${MIN_NETWORK_TOKEN_DISTINCT} different ones, when the gateway listens on a non-loopback address`,
      `leave the token unset to have a random one generated, or write one made by \`openssl rand -base64 32\` to the token file`,
    );
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw usage(`HTTP port ${o.port} is not a TCP port`, `use 0..65535`);
  const limits = [["maxBodyBytes", o.maxBodyBytes], ["maxSessions", o.maxSessions], ["idleTimeoutMs", o.idleTimeoutMs], ["maxRequestsPerSession", o.maxRequestsPerSession ?? 1]] as const;
  for (const [name, v] of limits) {
    if (!Number.isInteger(v) || v <= 0) throw usage(`HTTP option ${name} must be a positive integer, got ${v}`, `fix [gateway.http]`);
  }
  for (const origin of o.allowedOrigins) {
    if (origin === "*" || !/^[a-z][a-z0-9+.-]*:\/\/[^/\s]+$/i.test(origin)) {
      throw usage(`allowed origin "${origin}" is not of the form scheme://host[:port]`, `list each allowed origin exactly; "*" is not accepted`);
    }
  }
  const path = o.path ?? "/mcp";
  if (!path.startsWith("/") || /[?#\s]/.test(path)) throw usage(`HTTP path "${path}" must start with "/" and carry no query`, `use "/mcp"`);
}
