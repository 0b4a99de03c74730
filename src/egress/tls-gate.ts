// Holds a tunnel's first client bytes until they can be judged: when they open a
// TLS ClientHello, its server name (SNI) must be the host the tunnel was opened
// to. Bounded (one TLS record) and timed. Not responsible for forwarding or audit.

import { isIP, type Socket } from "node:net";
import { normalizeHost } from "../policy/addresses.js";
import { peekClientHello, peekRetriedClientHello, type ClientHelloPeek } from "./tls-sni.js";
import type { EgressProtocol } from "./types.js";

const EMPTY = Buffer.alloc(0);

export type GateVerdict =
  /**
   * Forward `bytes` (unchanged) and carry on; `clientHello`: they are one ClientHello
   * record, and `rest` holds what the client sent after it, not judged yet.
   */
  | { readonly pass: true; readonly bytes: Buffer; readonly rest: Buffer; readonly serverName: string | null; readonly clientHello: boolean }
  | { readonly pass: false; readonly reason: string };

/**
 * Read from `client` (paused on return) until its first bytes are judged. `initial`:
 * bytes already read past the handshake. A client that sends nothing is not waited
 * for here (the tunnel's idle timeout applies); once a TLS record has begun, the rest
 * of it must arrive within `timeoutMs`.
 */
export function checkTlsServerName(client: Socket, target: GateTarget, initial: Buffer, timeoutMs: number, peek: (data: Uint8Array) => ClientHelloPeek = peekClientHello): Promise<GateVerdict> {
  return new Promise((resolve) => {
    let settled = false;
    const chunks: Buffer[] = initial.length > 0 ? [initial] : [];
    let total = initial.length;
    let needed = 1;
    let timer: NodeJS.Timeout | null = null;
    const finish = (v: GateVerdict) => {
      if (settled) return;
      settled = true;
      client.pause();
      client.off("data", onData);
      client.off("end", onEnd);
      client.off("close", onClose);
      if (timer) clearTimeout(timer);
      resolve(v);
    };
    const judge = () => {
      // Concatenate only when the parser can make progress: a client dribbling one
      // byte at a time costs a few copies, not one per byte.
      if (total < needed) return;
      const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
      chunks.length = 0;
      chunks.push(data);
      const p = peek(data);
      if (p.kind === "need-more") {
        needed = p.needed;
        timer ??= setTimeout(() => finish({ pass: false, reason: `the TLS ClientHello did not arrive within ${timeoutMs} ms` }), timeoutMs);
        return;
      }
      if (p.kind === "not-tls") return finish({ pass: true, bytes: data, rest: EMPTY, serverName: null, clientHello: false });
      if (p.kind === "malformed") return finish({ pass: false, reason: p.reason });
      const verdict = compareServerName(p.serverName, target);
      // SECURITY: only the judged record passes now; what followed it in the same read (a
      // second ClientHello pipelined past a HelloRetryRequest) waits for the server's answer.
      const bytes = data.subarray(0, p.end);
      const rest = data.subarray(p.end);
      finish(verdict === null ? { pass: true, bytes, rest, serverName: p.serverName, clientHello: true } : { pass: false, reason: verdict });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      judge();
    };
    // A client that half-closes before sending anything passes (its FIN goes upstream);
    // one that stops inside a TLS record sent nothing a server could act on.
    const onEnd = () =>
      finish(total === 0 ? { pass: true, bytes: EMPTY, rest: EMPTY, serverName: null, clientHello: false } : { pass: false, reason: "the client closed the connection before its TLS ClientHello was complete" });
    const onClose = () => finish({ pass: false, reason: "the client closed the connection before its first bytes could be checked" });
    client.on("data", onData);
    client.once("end", onEnd);
    client.once("close", onClose);
    judge();
    // Judged already (the handshake's leftover held it all): stay paused for the pipe.
    if (!settled && client.readableFlowing !== true) client.resume();
  });
}

/** The check as a tunnel uses it: the first bytes, then the ClientHello a HelloRetryRequest asks for. */
export interface TlsGate {
  first(client: Socket, leftover: Buffer): Promise<GateVerdict>;
  /** `pending`: what the client sent after its first ClientHello (the first verdict's `rest`). */
  retried(client: Socket, pending: Buffer): Promise<GateVerdict>;
}

export function tlsGate(target: GateTarget, timeoutMs: number): TlsGate {
  return {
    first: (client, leftover) => checkTlsServerName(client, target, leftover, timeoutMs),
    // SECURITY: the retried ClientHello may name another host (RFC 8446 forbids it,
    // not every server enforces it): it is held and judged like the first.
    retried: async (client, pending) => {
      const v = await checkTlsServerName(client, target, pending, timeoutMs, peekRetriedClientHello);
      return v.pass ? v : { pass: false, reason: `${v.reason} (in the ClientHello after a HelloRetryRequest)` };
    },
  };
}

/** The host a tunnel was opened to, and how (for the refusal's wording). */
export interface GateTarget {
  readonly host: string;
  /** "CONNECT", "SOCKS5", "pinned" */
  readonly via: string;
}

/**
 * Which tunnels get the check: those opened to a host by name (CONNECT, SOCKS5
 * with a domain name, a pinned name). IP literals are admitted by address rules,
 * which say nothing about names; forwarded plain HTTP is not a tunnel.
 */
export function tlsGateTarget(protocol: EgressProtocol, host: string): GateTarget | null {
  if (isIP(host) !== 0) return null;
  // SECURITY: a tunnel to an allowed name must not ask the TLS endpoint (a shared CDN
  // address, say) for another name: that is domain fronting past the allowlist.
  if (protocol === "connect") return { host, via: "CONNECT" };
  if (protocol === "socks5") return { host, via: "SOCKS5" };
  if (protocol === "pin") return { host, via: "pinned" };
  return null;
}

/** null when the SNI may go to the target host; otherwise the reason to refuse. */
export function compareServerName(serverName: string | null, { host, via }: GateTarget): string | null {
  // No SNI: nothing claims another name (the TLS server picks its default certificate).
  if (serverName === null) return null;
  const sni = normalizeHost(serverName);
  const target = normalizeHost(host);
  const same = sni !== null && target !== null && sni.kind === "name" && target.kind === "name" && sni.name === target.name;
  return same ? null : `TLS server name ${clip(serverName)} does not match ${via} host ${host}`;
}

function clip(s: string): string {
  return s.length > 100 ? `${s.slice(0, 100)}…` : s;
}
