// The wire format between the in-sandbox agent and the host's egress proxy:
// proxy traffic (HTTP, SOCKS5) passes through unchanged; a pinned raw TCP
// connection starts with one line `NUCLEUS-PIN <host> <port>\n`. No imports:
// this file runs inside the sandbox too.

export const PIN_PREFIX = "NUCLEUS-PIN ";

/** The preamble the agent sends before the bytes of a pinned connection. */
export function formatPinLine(host: string, port: number): Buffer {
  return Buffer.from(`${PIN_PREFIX}${host} ${port}\n`, "latin1");
}

/** Parse a pin line (with its "\n"); throws a sentence when malformed. */
export function parsePinLine(line: Buffer): { host: string; port: number } {
  const m = /^NUCLEUS-PIN ([^\s]{1,255}) ([0-9]{1,5})\r?\n$/.exec(line.toString("latin1"));
  if (!m) throw new Error("malformed NUCLEUS-PIN line: expected `NUCLEUS-PIN <host> <port>`");
  return { host: m[1]!, port: Number(m[2]) };
}
