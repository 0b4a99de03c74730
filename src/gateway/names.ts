// Names the client sees: `server__tool` with chars [A-Za-z0-9_-], at most 64,
// shortened deterministically with a hash when too long; and the reversible
// mapping of resource URIs. Pure functions. Not responsible for collisions
// (catalog.ts detects them).

import { createHash } from "node:crypto";

export const MAX_NAME_LENGTH = 64;
export const SEPARATOR = "__";
const URI_PREFIX = "nucleus://";

function shortHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 8);
}

/** Replace every char outside [A-Za-z0-9_-] with "_". */
export function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, "_");
}

/**
 * The exposed name of `name` from `server`. With prefix=false (`nucleus run`) the
 * original name is kept as is (no renaming at all).
 */
export function exposedName(server: string, name: string, prefix: boolean): string {
  if (!prefix) return name;
  const full = `${server}${SEPARATOR}${sanitize(name)}`;
  // A sanitised name is no longer unique to its original: add the hash of the original.
  const changed = sanitize(name) !== name;
  if (full.length <= MAX_NAME_LENGTH && !changed) return full;
  const suffix = `_${shortHash(`${server}\0${name}`)}`;
  return full.slice(0, MAX_NAME_LENGTH - suffix.length) + suffix;
}

/** `nucleus://SERVER/ORIGINAL` — the original URI (or URI template) is kept verbatim after the slash. */
export function exposedUri(server: string, uri: string, prefix: boolean): string {
  return prefix ? `${URI_PREFIX}${server}/${uri}` : uri;
}

/** The inverse of exposedUri; null when the URI names no server (or one of the wrong shape). */
export function parseExposedUri(uri: string): { server: string; uri: string } | null {
  if (!uri.startsWith(URI_PREFIX)) return null;
  const rest = uri.slice(URI_PREFIX.length);
  const slash = rest.indexOf("/");
  if (slash <= 0) return null;
  const original = rest.slice(slash + 1);
  if (original === "") return null;
  return { server: rest.slice(0, slash), uri: original };
}
