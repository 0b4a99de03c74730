// Shapes shared by the egress proxy's modules: audit events, limits, options.
// Not responsible for behaviour.

import type { HostRule } from "../config/spec.js";
import type { Logger } from "../log.js";
import type { EgressResolver } from "./resolver.js";

export type EgressProtocol = "connect" | "http" | "socks5" | "pin" | "unknown";

/** One decision, for the audit log. Emitted when a connection is refused, or when an allowed one ends. */
export interface EgressEvent {
  readonly type: "egress";
  readonly server: string;
  readonly protocol: EgressProtocol;
  /** Host as requested (normalised when valid); "" when the request never named one. */
  readonly host: string;
  readonly port: number;
  /** The address dialled, or null when none was. */
  readonly address: string | null;
  /** What the proxy's resolver returned for a name (empty for IP literals and names no rule matches). */
  readonly resolved: readonly string[];
  readonly allowed: boolean;
  /** The rule that admitted it (or matched the name but not the address). */
  readonly rule: string | null;
  readonly reason: string;
  /** Bytes from the sandbox to the destination / back. */
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly durationMs: number;
}

export interface EgressLimits {
  /** Dialling one address. */
  readonly connectTimeoutMs: number;
  /** No byte either way for this long closes a tunnel. */
  readonly idleTimeoutMs: number;
  /** The whole request head (HTTP headers, SOCKS handshake, pin line) must arrive within this. */
  readonly headerTimeoutMs: number;
  readonly maxHeaderBytes: number;
  /** Concurrent connections of this server; more are closed at once. */
  readonly maxConnections: number;
}

export const DEFAULT_EGRESS_LIMITS: EgressLimits = {
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  headerTimeoutMs: 10_000,
  maxHeaderBytes: 16 * 1024,
  maxConnections: 256,
};

export interface EgressProxyOptions {
  /** Server name, for audit and logs. */
  readonly server: string;
  /** This server's rules only. */
  readonly rules: readonly HostRule[];
  /** Unix socket to listen on (created with mode 0600; its directory must exist). */
  readonly socketPath: string;
  readonly resolver?: EgressResolver;
  readonly audit?: (event: EgressEvent) => void;
  readonly log?: Logger;
  readonly limits?: Partial<EgressLimits>;
  /** The host's own addresses; default: every address of os.networkInterfaces(). */
  readonly ownAddresses?: readonly string[];
  /**
   * TEST ONLY, dangerous: addresses in these CIDRs count as private (see
   * policy/addresses.ts). Lets tests use 127.0.0.x stand-ins for a private network.
   * Never set from configuration.
   */
  readonly insecureTestPrivateRanges?: readonly string[];
}

export interface EgressStats {
  readonly active: number;
  readonly total: number;
  readonly allowed: number;
  readonly refused: number;
  readonly overCapacity: number;
}

/** A pinned `host:port` (a name rule with an exact port) that a listener in the sandbox stands for. */
export interface EgressPin {
  readonly host: string;
  readonly port: number;
}

export interface EgressProxy {
  readonly socketPath: string;
  stats(): EgressStats;
  /**
   * Accepts connections on a listener the sandbox's agent made inside the sandbox's
   * network namespace and handed over (so only this proxy relays): the proxy port
   * (`pin` null: HTTP CONNECT, plain HTTP, SOCKS5) or one pinned `host:port`. Closed
   * with the proxy.
   */
  adopt(listener: import("node:net").Server, pin: EgressPin | null): void;
  /** Stops listening and closes every open connection. Idempotent. */
  close(): Promise<void>;
}
