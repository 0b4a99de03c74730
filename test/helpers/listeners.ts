// Test helper: the loopback servers a test listens with (egress targets,
// canaries), each closed with its connections at the end.
import type { Server as HttpServer } from "node:http";
import type { AddressInfo, Server } from "node:net";

export class Listeners {
  private readonly all: Array<Server | HttpServer> = [];

  /** Listens on `host:port` (0: a free port) and returns the port; a failed listen is not kept. */
  async listen(s: Server | HttpServer, host: string, port = 0): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, host, () => resolve());
    });
    this.all.push(s);
    return (s.address() as AddressInfo).port;
  }

  async closeAll(): Promise<void> {
    for (const s of this.all.splice(0)) {
      if ("closeAllConnections" in s) s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  }
}
