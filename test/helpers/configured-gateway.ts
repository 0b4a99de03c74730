// Test helper: a gateway built from a loaded config exactly as `nucleus serve`
// builds it (createServices → preflight → makeLauncher → Gateway), with an SDK
// client on an in-memory link. Options the CLI cannot set (a test resolver,
// test-only private ranges) can be injected here, in-process only.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { NucleusConfig } from "../../src/config/spec.js";
import type { EgressServiceOptions } from "../../src/gateway/egress-service.js";
import { Gateway } from "../../src/gateway/gateway.js";
import { makeLauncher, preflight, type Preflight } from "../../src/gateway/runtime.js";
import { createServices, type Services } from "../../src/gateway/services.js";
import type { Logger } from "../../src/log.js";

export interface ConfiguredGateway {
  services: Services;
  gateway: Gateway;
  client: Client;
  pf: Preflight;
}

export async function startConfiguredGateway(
  config: NucleusConfig,
  opts: { log: Logger; env?: NodeJS.ProcessEnv; egress?: Omit<EgressServiceOptions, "log" | "audit">; clientName?: string },
): Promise<ConfiguredGateway> {
  const services = await createServices(config, config.servers, { log: opts.log, env: opts.env ?? process.env, ...(opts.egress ? { egress: opts.egress } : {}) });
  const pf = await preflight(config.servers, config.gateway.backend, services.deps);
  if (pf.refusals.length > 0) throw new Error(`refused: ${JSON.stringify(pf.refusals)}`);
  const gateway = new Gateway({
    servers: config.servers,
    prefix: true,
    launch: makeLauncher(pf.selections, services.deps, opts.log),
    log: opts.log,
    maxMessageBytes: config.gateway.maxMessageBytes,
    version: "test",
    audit: services.audit,
    auditArguments: config.gateway.auditArguments,
    outgoing: services.outgoing,
  });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await gateway.connect(a);
  const client = new Client({ name: opts.clientName ?? "configured-test", version: "1" });
  await client.connect(b);
  return { services, gateway, client, pf };
}
