// Parses a proxy request head (CONNECT authority-form or an absolute http://
// URI) and rebuilds the head sent upstream for plain-HTTP forwarding.
// Not responsible for sockets or policy.

export interface ProxyRequest {
  readonly method: string;
  readonly host: string;
  readonly port: number;
  /** For forwarding: the head to send to the origin (origin-form, Host fixed, Connection: close). */
  readonly upstreamHead: Buffer | null;
}

export class BadRequest extends Error {}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function parseProxyHead(head: Buffer): ProxyRequest {
  const text = head.toString("latin1");
  const lines = text.slice(0, -4).split("\r\n");
  const [method, target, version, extra] = (lines[0] ?? "").split(" ");
  if (!method || !TOKEN.test(method) || !target || !version || extra !== undefined || !/^HTTP\/1\.[01]$/.test(version)) {
    throw new BadRequest("malformed request line");
  }
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    // SECURITY: no obsolete line folding or odd names: they hide headers from some parsers.
    if (colon <= 0 || !TOKEN.test(name)) throw new BadRequest("malformed header line");
    headers.push([name, line.slice(colon + 1).trim()]);
  }
  if (method === "CONNECT") {
    const { host, port } = splitAuthority(target);
    return { method, host, port, upstreamHead: null };
  }
  if (!/^http:\/\//i.test(target)) {
    throw new BadRequest(/^https:\/\//i.test(target) ? "https:// URIs must use CONNECT" : "the target must be an absolute http:// URI (this is a proxy)");
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new BadRequest("malformed URI");
  }
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : 80;
  // SECURITY: the origin sees the Host we dial, not one the client chose; hop-by-hop
  // and proxy credentials are dropped; one request per upstream connection.
  const drop = new Set(["host", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade"]);
  const out = [`${method} ${url.pathname}${url.search} ${version}`, `Host: ${url.host}`];
  for (const [k, v] of headers) if (!drop.has(k.toLowerCase())) out.push(`${k}: ${v}`);
  out.push("Connection: close", "", "");
  return { method, host, port, upstreamHead: Buffer.from(out.join("\r\n"), "latin1") };
}

/** "host:port", "[v6]:port". The port is required. */
export function splitAuthority(authority: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]+)):([0-9]{1,5})$/.exec(authority);
  if (!m) throw new BadRequest("the CONNECT target must be host:port");
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}

export function httpError(status: number, reason: string, body: string): Buffer {
  const b = Buffer.from(`${body}\n`, "utf8");
  return Buffer.concat([
    Buffer.from(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${b.length}\r\nConnection: close\r\n\r\n`, "latin1"),
    b,
  ]);
}
