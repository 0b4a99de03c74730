// The guest's side of egress: brings up loopback, writes /etc/hosts and listens
// on 127.0.0.1:<proxyPort> and each pinned 127.0.x.y:port, turning every
// accepted connection into an egress stream to the host (egress-mux.ts). The
// guest has no NIC: these streams are its only way out, and the host's proxy
// decides everything. No imports outside src/agent/guest.

import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import type { EgressMux } from "./egress-mux.js";
import type { EgressPlan } from "./protocol.js";
import { BUSYBOX } from "./system.js";

/**
 * Brings `lo` up (the kernel then routes all of 127.0.0.0/8 locally); throws when neither applet works.
 * SECURITY: loopback only — the VM has no NIC, so this widens nothing beyond the guest itself.
 */
export function loopbackUp(): void {
  const ip = spawnSync(BUSYBOX, ["ip", "link", "set", "lo", "up"], { stdio: ["ignore", "ignore", "pipe"] });
  if (ip.status === 0) return;
  const ifc = spawnSync(BUSYBOX, ["ifconfig", "lo", "127.0.0.1", "netmask", "255.0.0.0", "up"], { stdio: ["ignore", "ignore", "pipe"] });
  if (ifc.status !== 0) throw new Error(`could not bring up loopback: ${ip.stderr?.toString().trim()} / ${ifc.stderr?.toString().trim()}`);
}

/** Sets the guest up for `plan` and resolves once every listener is bound. */
export async function startEgress(plan: EgressPlan, mux: EgressMux): Promise<Server[]> {
  loopbackUp();
  mkdirSync("/etc", { recursive: true });
  writeFileSync("/etc/hosts", plan.hosts, { mode: 0o644 });
  const targets = [
    { host: "127.0.0.1", port: plan.proxyPort, preamble: Buffer.alloc(0) },
    ...plan.pins.map((p) => ({ host: p.address, port: p.port, preamble: Buffer.from(p.preamble, "latin1") })),
  ];
  const servers: Server[] = [];
  for (const t of targets) {
    const server = createServer({ allowHalfOpen: true }, (sock) => {
      sock.setNoDelay(true);
      mux.open(sock, t.preamble);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: t.host, port: t.port, exclusive: true }, () => {
        server.off("error", reject);
        server.on("error", () => {});
        resolve();
      });
    });
    servers.push(server);
  }
  return servers;
}
