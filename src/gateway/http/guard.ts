// Pure checks on an HTTP request before any MCP handling: Host (DNS
// rebinding), Origin (browsers), bearer token (constant time). Each returns a
// refusal to send or null. Not responsible for sessions or bodies.

import { createHash, timingSafeEqual } from "node:crypto";
import { isLoopbackHost } from "../../policy/loopback.js";

export interface Refusal {
  readonly status: number;
  readonly code: number;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** JSON-RPC code for transport-level refusals (the SDK uses the same). */
export const SERVER_ERROR = -32000;

/**
 * SECURITY: when bound to loopback, a Host that is not a loopback name means the
 * request reached us through a name that resolves to 127.0.0.1 (DNS rebinding):
 * a web page's script would otherwise talk to us as "same origin".
 */
export function checkHost(host: string | undefined, boundPort: number, loopbackOnly: boolean): Refusal | null {
  if (!loopbackOnly) return null;
  const bad = (why: string): Refusal => ({ status: 403, code: SERVER_ERROR, message: `Forbidden: ${why}` });
  if (!host) return bad("the Host header is missing");
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  if (!m || !isLoopbackHost(m[1]!)) return bad("the Host header does not name a loopback address");
  if (m[2] !== undefined && Number(m[2]) !== boundPort) return bad("the Host header names another port");
  return null;
}

/** SECURITY: a browser always sends Origin on cross-origin requests; only listed origins may call. */
export function checkOrigin(origin: string | undefined, allowed: readonly string[]): Refusal | null {
  if (origin === undefined) return null; // not a browser (native MCP clients send none)
  const o = origin.toLowerCase();
  if (allowed.some((a) => a.toLowerCase() === o)) return null;
  return { status: 403, code: SERVER_ERROR, message: "Forbidden: this Origin is not allowed (add it to [gateway.http] allowed_origins)" };
}

/** Request headers a browser client of the endpoint sends (answered in a CORS preflight). */
const CORS_REQUEST_HEADERS = "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID";

/**
 * CORS for a listed Origin (checkOrigin passed): the headers every answer carries, so a browser lets the page
 * read it (and the session id). None without an Origin (native clients).
 */
export function corsHeaders(origin: string | undefined): Record<string, string> {
  if (origin === undefined) return {};
  return { "Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": "Mcp-Session-Id, Mcp-Protocol-Version", Vary: "Origin" };
}

/** The answer to a browser's preflight (OPTIONS) from a listed Origin: no token is asked (browsers send none). */
export function preflightHeaders(origin: string): Record<string, string> {
  return {
    ...corsHeaders(origin),
    "Access-Control-Allow-Methods": "GET, POST, DELETE",
    "Access-Control-Allow-Headers": CORS_REQUEST_HEADERS,
    "Access-Control-Max-Age": "600",
  };
}

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** Compares a presented bearer token with the expected one in constant time (both hashed to equal length first). */
export function makeBearerCheck(token: string): (authorization: string | undefined) => Refusal | null {
  const expected = digest(token);
  return (authorization) => {
    const m = authorization === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    // SECURITY: always hash and compare, so timing does not reveal whether a header was present or how close it was.
    const ok = timingSafeEqual(expected, digest(m?.[1] ?? "")) && m !== null;
    if (ok) return null;
    return {
      status: 401,
      code: SERVER_ERROR,
      message: m ? "Unauthorized: the bearer token is not valid" : "Unauthorized: send Authorization: Bearer <token>",
      headers: { "WWW-Authenticate": m ? 'Bearer realm="nucleus", error="invalid_token"' : 'Bearer realm="nucleus"' },
    };
  };
}
