// Loopback listeners inside the sandbox that relay each connection to the
// host's egress proxy over its unix socket, optionally after a pin preamble.
// The agent is a convenience, not a boundary: the proxy decides everything.
// No imports beyond Node: runs inside the sandbox.

import { connect, createServer, type NetConnectOpts, type Server, type Socket } from "node:net";
import { createPump } from "./pump.js";

export interface RelayOptions {
  readonly socketPath: string;
  /** Sent to the proxy before the client's bytes (pinned connections). */
  readonly preamble: Buffer | null;
}

/** A loopback listener with no handler yet (the agent may hand it to the host instead). */
export function listenOn(host: string, port: number): Promise<Server> {
  const server = createServer({ allowHalfOpen: true, highWaterMark: 256 * 1024 });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", reject);
      server.on("error", () => {});
      resolve(server);
    });
  });
}

/** Relay every connection `server` accepts to the proxy's unix socket. */
export function relayFrom(server: Server, opts: RelayOptions): void {
  server.on("connection", (client: Socket) => relay(client, opts));
}

function relay(client: Socket, opts: RelayOptions): void {
  const pump = createPump();
  const o: NetConnectOpts & { highWaterMark: number } = { path: opts.socketPath, allowHalfOpen: true, highWaterMark: 256 * 1024, onread: pump.onread };
  const upstream = connect(o);
  const kill = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", kill);
  upstream.on("error", kill);
  client.once("close", () => (upstream.destroyed ? undefined : upstream.end()));
  upstream.once("close", () => (client.destroyed ? undefined : client.end()));
  if (opts.preamble) upstream.write(opts.preamble);
  client.setNoDelay(true);
  client.pipe(upstream);
  upstream.once("end", () => client.end());
  pump.start(upstream, client);
}
