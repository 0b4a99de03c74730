// The host's end of a microVM's egress streams: each stream the guest agent
// opens becomes one connection to this server's own egress proxy socket, with
// the open frame's bytes (a pin preamble) sent first. Not responsible for
// policy: the proxy on that socket decides, resolves and audits everything.

import { connect, type NetConnectOpts } from "node:net";
import { EgressMux } from "../../agent/guest/egress-mux.js";

export interface HostEgressOptions {
  /** Writes one frame to the guest; false when the channel is congested. */
  readonly write: (frame: Buffer) => boolean;
  /** This server's egress proxy socket; null (network = "none") refuses every stream. */
  readonly proxySocket: string | null;
  readonly onViolation: (message: string, fatal: boolean) => void;
}

export function hostEgressMux(o: HostEgressOptions): EgressMux {
  return new EgressMux({
    write: o.write,
    onViolation: o.onViolation,
    accept: (preamble) => {
      // SECURITY: a guest reaches its own server's proxy socket and nothing else; the
      // preamble is just the first bytes the proxy reads (it parses and checks them).
      if (!o.proxySocket) return null;
      const opts: NetConnectOpts & { highWaterMark: number } = { path: o.proxySocket, allowHalfOpen: true, highWaterMark: 64 * 1024 };
      const sock = connect(opts);
      if (preamble.length > 0) sock.write(preamble);
      return sock;
    },
  });
}
