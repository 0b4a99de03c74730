// Test helper: an in-process Gateway with an SDK client connected over an
// in-memory pair; upstream servers run through a given backend (default: the
// explicit unsandboxed one, so gateway tests do not depend on a sandbox).
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { ClientCapabilities } from "@modelcontextprotocol/sdk/types.js";
import { afterEach } from "vitest";
import type { ServerSpec } from "../../src/config/spec.js";
import { Gateway } from "../../src/gateway/gateway.js";
import type { AuditEvent } from "../../src/audit/events.js";
import { Logger } from "../../src/log.js";
import type { Backend } from "../../src/sandbox/backend.js";
import { UnsandboxedBackend } from "../../src/sandbox/unsandboxed.js";

const require = createRequire(import.meta.url);
export const EVERYTHING = require.resolve("@modelcontextprotocol/server-everything/dist/index.js");
export const FILESYSTEM = require.resolve("@modelcontextprotocol/server-filesystem/dist/index.js");
export const MEMORY = require.resolve("@modelcontextprotocol/server-memory/dist/index.js");
export const TINY = fileURLToPath(new URL("../fixtures/servers/tiny-server.mjs", import.meta.url));

export interface TestGateway {
  gateway: Gateway;
  client: Client;
  audit: AuditEvent[];
  logs: string[];
  close(): Promise<void>;
}

/** A Gateway as the tests use it: servers launched by `backend` without secrets, audit records collected. */
export function newTestGateway(servers: ServerSpec[], backend: Backend, log: Logger, audit: AuditEvent[], prefix = true): Gateway {
  return new Gateway({
    servers,
    prefix,
    log,
    maxMessageBytes: 4 * 1024 * 1024,
    version: "test",
    audit: (r) => void audit.push(r),
    backoff: { initialMs: 100, maxMs: 1000, resetAfterMs: 60_000 },
    launch: (spec) => backend.launch(spec, { secrets: new Map(), log, egressSocket: null }),
  });
}

export async function startTestGateway(
  servers: ServerSpec[],
  opts: { prefix?: boolean; capabilities?: ClientCapabilities; backend?: Backend; setup?: (client: Client) => void } = {},
): Promise<TestGateway> {
  const backend = opts.backend ?? new UnsandboxedBackend();
  const logs: string[] = [];
  const audit: AuditEvent[] = [];
  const log = new Logger({ level: "debug", sink: { write: (l) => void logs.push(l) } });
  const gateway = newTestGateway(servers, backend, log, audit, opts.prefix ?? true);
  const [a, b] = InMemoryTransport.createLinkedPair();
  await gateway.connect(a);
  const client = new Client({ name: "test-client", version: "1.0.0" }, { capabilities: opts.capabilities ?? {} });
  opts.setup?.(client);
  await client.connect(b);
  return {
    gateway,
    client,
    audit,
    logs,
    async close() {
      await client.close().catch(() => undefined);
      await gateway.close();
    },
  };
}

/**
 * For a test file: returns `gw(...)`, which starts a test gateway that is closed
 * after each test (so a failing assertion leaves no server behind).
 */
export function useGateways(): typeof startTestGateway {
  let open: TestGateway[] = [];
  afterEach(async () => {
    await Promise.all(open.map((g) => g.close()));
    open = [];
  });
  return async (...args) => {
    const g = await startTestGateway(...args);
    open.push(g);
    return g;
  };
}
