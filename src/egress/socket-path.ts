// Where per-server egress sockets live on the host, and where the sandbox sees
// them. One private directory (0700) per gateway run; one socket per server.
// Not responsible for listening (proxy.ts) or binding (the backends).

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { SANDBOX_AGENT_PATHS } from "../agent/plan.js";

/** The path every sandbox sees its own server's proxy socket at. */
export const SANDBOX_EGRESS_SOCKET = SANDBOX_AGENT_PATHS.socket;

/** unix(7): sun_path holds 108 bytes including the NUL; keep a margin. */
const MAX_SOCKET_PATH = 100;

/** Create the gateway's private socket directory (mkdtemp: mode 0700). Remove it with removeEgressSocketDir. */
export function createEgressSocketDir(base = tmpdir()): Promise<string> {
  return mkdtemp(join(base, "nucleus-egress-"));
}

export function removeEgressSocketDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/**
 * The host socket path of one server: `<dir>/<index>-<name>.sock`, the name
 * shortened so the path fits a unix socket address. The index keeps two
 * servers whose names shorten alike apart.
 */
export function egressSocketPath(dir: string, serverIndex: number, serverName: string): string {
  const safe = serverName.replace(/[^A-Za-z0-9_-]/g, "_");
  const prefix = join(dir, `${serverIndex}-`);
  const room = MAX_SOCKET_PATH - prefix.length - ".sock".length;
  if (room < 1) throw new Error(`the egress socket directory ${dir} is too long for a unix socket path. Hint: set TMPDIR to a shorter directory.`);
  return `${prefix}${safe.slice(0, room)}.sock`;
}
