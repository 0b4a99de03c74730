// The per-server egress proxy (host side): one unix-socket listener holding one
// server's rules. Speaks HTTP CONNECT, plain-HTTP absolute-URI forwarding,
// SOCKS5 and the agent's pin preamble; resolves names itself and dials only an
// address the policy checked. Not responsible for the rules' parsing or the sandbox.

import { lstat, unlink, chmod } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { networkInterfaces } from "node:os";
import { Logger } from "../log.js";
import { decide, nameToResolve, suggestRule, type EgressDecision } from "../policy/egress.js";
import { BadRequest, httpError, parseProxyHead } from "./http-head.js";
import { PIN_PREFIX, parsePinLine } from "../agent/protocol.js";
import { HandshakeError, SocketReader } from "./reader.js";
import { systemResolver } from "./resolver.js";
import { socks5Handshake, socksReply, SocksReply } from "./socks5.js";
import { dialFirst, joinSockets } from "./tunnel.js";
import { tlsGate, tlsGateTarget } from "./tls-gate.js";
import type { Pump } from "../agent/pump.js";
import {
  DEFAULT_EGRESS_LIMITS,
  type EgressEvent,
  type EgressLimits,
  type EgressPin,
  type EgressProtocol,
  type EgressProxy,
  type EgressProxyOptions,
} from "./types.js";


interface Request {
  protocol: EgressProtocol;
  host: string;
  port: number;
  upstreamHead: Buffer | null;
}

export async function startEgressProxy(opts: EgressProxyOptions): Promise<EgressProxy> {
  const limits: EgressLimits = { ...DEFAULT_EGRESS_LIMITS, ...opts.limits };
  const log = (opts.log ?? new Logger({ level: "silent" })).child({ server: opts.server, component: "egress" });
  const resolver = opts.resolver ?? systemResolver;
  // The host's own addresses are read per decision: interfaces come and go (DHCP, VPN).
  const classifyOpts = () => ({
    ownAddresses: opts.ownAddresses ?? ownInterfaceAddresses(),
    insecureTestPrivateRanges: opts.insecureTestPrivateRanges ?? [],
  });
  const rules = Object.freeze([...opts.rules]);
  const counters = { active: 0, total: 0, allowed: 0, refused: 0, overCapacity: 0 };
  const open = new Set<Socket>();
  const warned = new Set<string>();

  const audit = (e: Omit<EgressEvent, "type" | "server">) => {
    if (e.allowed) counters.allowed++;
    else counters.refused++;
    try {
      opts.audit?.({ type: "egress", server: opts.server, ...e });
    } catch (err) {
      log.error("the egress audit callback failed", { error: String(err) });
    }
  };

  const warnOnce = (key: string, message: string, req: Request) => {
    if (warned.has(key) || warned.size > 1000) return;
    warned.add(key);
    log.warn(message, { protocol: req.protocol });
  };
  const warnRefusal = (d: EgressDecision, req: Request) => {
    const add = suggestRule(d.host, req.port, [], classifyOpts());
    const hint = add
      ? `to allow it, add "${add}" to servers.${opts.server}.allowed_hosts`
      : "no name rule can allow this address; an explicit IP rule would, only if you really mean it";
    warnOnce(`${d.host ?? req.host}:${req.port}`, `egress: ${d.reason}; ${hint}`, req);
  };

  const handle = async (client: Socket, pin: EgressPin | null) => {
    const started = Date.now();
    client.on("error", () => {});
    const reader = new SocketReader(client, limits.maxHeaderBytes);
    let timedOut = false;
    const headTimer = setTimeout(() => {
      timedOut = true;
      client.destroy();
    }, limits.headerTimeoutMs);
    let req: Request = { protocol: "unknown", host: "", port: 0, upstreamHead: null };
    let resolved: string[] = [];
    const record = (e: Pick<EgressEvent, "allowed" | "rule" | "reason"> & Partial<EgressEvent>) =>
      audit({ protocol: req.protocol, host: req.host, port: req.port, address: null, resolved, bytesUp: 0, bytesDown: 0, durationMs: Date.now() - started, ...e });
    const refuse = (reason: string, rule: string | null = null) => record({ allowed: false, rule, reason });
    try {
      // (A pinned listener the agent handed over says which pin; otherwise the client's first bytes do.)
      req = pin ? { protocol: "pin", host: pin.host, port: pin.port, upstreamHead: null } : await readRequest(reader, client, limits.maxHeaderBytes, (p) => (req.protocol = p));
    } catch (err) {
      clearTimeout(headTimer);
      const reason = timedOut
        ? `the request head did not arrive within ${limits.headerTimeoutMs} ms`
        : err instanceof Error ? err.message : String(err);
      if (!timedOut && req.protocol === "http" && !client.destroyed) {
        const tooLarge = err instanceof HandshakeError && err.kind === "too-large";
        endThenDestroy(client, tooLarge ? httpError(431, "Request Header Fields Too Large", `nucleus: ${reason}`) : httpError(400, "Bad Request", `nucleus: ${reason}`));
      } else if (client.writableEnded) setTimeout(() => client.destroy(), 1000).unref(); // a SOCKS error reply is on its way
      else client.destroy();
      refuse(reason);
      return;
    }
    clearTimeout(headTimer);

    let decision: EgressDecision;
    try {
      const name = nameToResolve(rules, req);
      resolved = name ? await withTimeout(resolver(name), limits.connectTimeoutMs, `resolving ${name}`) : [];
      decision = decide(rules, req, resolved, classifyOpts());
    } catch (err) {
      answer(client, req, "failed", `nucleus: ${String((err as Error).message)}`);
      refuse(`resolving failed: ${(err as Error).message}`);
      return;
    }
    if (!decision.allowed) {
      answer(client, req, "refused", `nucleus: egress refused: ${decision.reason}`);
      record({ host: decision.host ?? req.host, allowed: false, rule: decision.rule, reason: decision.reason });
      warnRefusal(decision, req);
      return;
    }
    const host = decision.host ?? req.host;
    let upstream: Socket;
    let address: string;
    let pump: Pump;
    try {
      ({ socket: upstream, address, pump } = await dialFirst(decision.addresses, req.port, limits.connectTimeoutMs));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      answer(client, req, e.code === "ETIMEDOUT" ? "timeout" : "failed", `nucleus: could not connect to ${host} port ${req.port}: ${e.code ?? e.message}`);
      record({ host, allowed: true, rule: decision.rule, reason: `${decision.reason}, but connecting failed: ${e.code ?? e.message}` });
      return;
    }
    if (client.destroyed) {
      upstream.destroy();
      record({ host, address, allowed: true, rule: decision.rule, reason: `${decision.reason}; the client left before the connection was made` });
      return;
    }
    open.add(upstream);
    upstream.once("close", () => open.delete(upstream));
    if (req.protocol === "connect") client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    else if (req.protocol === "socks5") client.write(socksReply(SocksReply.succeeded));
    else if (req.protocol === "http") upstream.write(req.upstreamHead!);
    const received = reader.received;
    const leftover = reader.detach();
    // A forwarded plain-HTTP request head counts as bytes sent up, like any other.
    const forwardedHead = req.protocol === "http" ? req.upstreamHead!.length : 0;
    const gateTarget = tlsGateTarget(req.protocol, host);
    const gate = gateTarget ? tlsGate(gateTarget, limits.headerTimeoutMs) : undefined;
    joinSockets(client, upstream, pump, { leftover, handshakeBytes: received - leftover.length, idleTimeoutMs: limits.idleTimeoutMs, gate }, (r) => {
      if (r.refused !== undefined) {
        record({ host, address, allowed: false, rule: decision.rule, reason: r.refused, bytesUp: r.bytesUp, bytesDown: r.bytesDown });
        warnOnce(`sni:${host}:${req.port}`, `egress: ${r.refused}; the tunnel was closed`, req);
        return;
      }
      record({ host, address, allowed: true, rule: decision.rule, reason: `${decision.reason}; ${r.reason}`, bytesUp: r.bytesUp + forwardedHead, bytesDown: r.bytesDown });
    });
  };

  const accept = (client: Socket, pin: EgressPin | null) => {
    counters.total++;
    // SECURITY: a cap per server, so a hostile server cannot exhaust the gateway's sockets.
    if (counters.active >= limits.maxConnections) {
      counters.overCapacity++;
      client.on("error", () => {});
      client.destroy();
      audit({ protocol: "unknown", host: "", port: 0, address: null, resolved: [], allowed: false, rule: null, reason: `over the limit of ${limits.maxConnections} concurrent connections`, bytesUp: 0, bytesDown: 0, durationMs: 0 });
      return;
    }
    counters.active++;
    open.add(client);
    client.once("close", () => {
      counters.active--;
      open.delete(client);
    });
    handle(client, pin).catch((err) => {
      log.error("egress connection failed unexpectedly", { error: String(err) });
      client.destroy();
    });
  };
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: false, highWaterMark: 256 * 1024 }, (client) => accept(client, null));
  const adopted = new Set<Server>();

  await removeStaleSocket(opts.socketPath);
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new Error(`the egress proxy of server "${opts.server}" could not listen on ${opts.socketPath}: ${err.code ?? err.message}. Hint: the directory must exist, be writable, and the path be shorter than 108 bytes.`, { cause: err })),
    );
    server.listen({ path: opts.socketPath }, () => {
      server.removeAllListeners("error");
      resolve();
    });
  });
  // SECURITY: owner only. The sandbox runs as the same uid (or root); the directory
  // holding the socket should itself be 0700 so nothing connects before this chmod.
  try {
    await chmod(opts.socketPath, 0o600);
  } catch (err) {
    // Never leave a listener that could not be made private.
    await new Promise<void>((r) => server.close(() => r()));
    throw err;
  }
  server.on("error", (err) => log.error("egress listener error", { error: String(err) }));

  let closing: Promise<void> | null = null;
  return {
    socketPath: opts.socketPath,
    stats: () => ({ ...counters }),
    adopt: (listener, pin) => {
      // SECURITY: the listener lives in the sandbox's network namespace; closing the proxy
      // (when the sandbox exits) closes it too, so no namespace outlives its sandbox here.
      if (closing) {
        listener.close();
        return;
      }
      adopted.add(listener);
      // As the proxy's own listener: half-open tunnels, larger reads (a received server has defaults).
      Object.assign(listener as unknown as { allowHalfOpen: boolean; highWaterMark: number }, { allowHalfOpen: true, highWaterMark: 256 * 1024 });
      listener.on("error", (err) => log.error("adopted egress listener error", { error: String(err) }));
      listener.on("connection", (client: Socket) => accept(client, pin && { host: pin.host, port: pin.port }));
    },
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        for (const l of adopted) l.close();
        adopted.clear();
        server.close(() => resolve());
        for (const s of open) s.destroy();
      }).then(() => unlink(opts.socketPath).catch(() => undefined))),
  };
}

async function readRequest(reader: SocketReader, client: Socket, maxHead: number, setProtocol: (p: EgressProtocol) => void): Promise<Request> {
  const first = await reader.peek(1);
  if (first[0] === 0x05) {
    setProtocol("socks5");
    const { host, port } = await socks5Handshake(reader, client);
    return { protocol: "socks5", host, port, upstreamHead: null };
  }
  const line = await reader.until("\n", Math.min(maxHead, 8192), maxHead);
  if (line.subarray(0, PIN_PREFIX.length).toString("latin1") === PIN_PREFIX) {
    setProtocol("pin");
    const { host, port } = parsePinLine(line);
    return { protocol: "pin", host, port, upstreamHead: null };
  }
  setProtocol("http");
  const lines = [line];
  let size = line.length;
  for (;;) {
    const next = await reader.until("\n", maxHead - size, maxHead);
    size += next.length;
    lines.push(next);
    if (isBlank(next)) break;
  }
  try {
    const parsed = parseProxyHead(Buffer.concat(lines));
    setProtocol(parsed.method === "CONNECT" ? "connect" : "http");
    return { protocol: parsed.method === "CONNECT" ? "connect" : "http", host: parsed.host, port: parsed.port, upstreamHead: parsed.upstreamHead };
  } catch (err) {
    if (err instanceof BadRequest) throw new HandshakeError(err.message, "malformed");
    throw err;
  }
}

function isBlank(line: Buffer): boolean {
  return line.length === 2 && line[0] === 0x0d && line[1] === 0x0a;
}

/** Tell the client no, in its own protocol (a pinned raw stream just closes). */
function answer(client: Socket, req: Request, why: "refused" | "failed" | "timeout", body: string): void {
  if (client.destroyed) return;
  if (req.protocol === "socks5") {
    const code = why === "refused" ? SocksReply.notAllowed : why === "timeout" ? SocksReply.ttlExpired : SocksReply.hostUnreachable;
    endThenDestroy(client, socksReply(code));
  } else if (req.protocol === "connect" || req.protocol === "http") {
    endThenDestroy(client, why === "refused" ? httpError(403, "Forbidden", body) : httpError(why === "timeout" ? 504 : 502, why === "timeout" ? "Gateway Timeout" : "Bad Gateway", body));
  } else client.destroy();
}

/** Answer and close; a client that keeps its side open is cut off after a second (it holds a slot). */
function endThenDestroy(client: Socket, data: Buffer): void {
  client.end(data, () => setTimeout(() => client.destroy(), 1000).unref());
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}

function ownInterfaceAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i): i is NonNullable<typeof i> => !!i)
    .map((i) => i.address.split("%")[0]!);
}

async function removeStaleSocket(path: string): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (!st) return;
  if (!st.isSocket()) throw new Error(`cannot listen on ${path}: a file that is not a socket is in the way. Hint: choose another socket path.`);
  await unlink(path);
}
