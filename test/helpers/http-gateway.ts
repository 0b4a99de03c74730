// Test helper: the Streamable HTTP downstream on 127.0.0.1 (port 0), a fresh
// Gateway per session (servers via the explicit unsandboxed backend), and real
// SDK clients over StreamableHTTPClientTransport. Each session's audit records
// are kept so tests can find its server PIDs.
import { request as httpRequest } from "node:http";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { ClientCapabilities } from "@modelcontextprotocol/sdk/types.js";
import type { ServerSpec } from "../../src/config/spec.js";
import type { Gateway } from "../../src/gateway/gateway.js";
import { newTestGateway } from "./gateway.js";
import type { AuditEvent as AuditRecord } from "../../src/audit/events.js";
import type { HttpGatewayOptions } from "../../src/gateway/http/options.js";
import { startHttpGateway, type HttpGateway } from "../../src/gateway/http/server.js";
import { Logger } from "../../src/log.js";
import { UnsandboxedBackend } from "../../src/sandbox/unsandboxed.js";

export const TOKEN = "test-token-0123456789abcdef0123456789";

export interface TestSession {
  /** The tag createSession was given (first 8 chars of the session id). */
  tag: string;
  gateway: Gateway;
  audit: AuditRecord[];
}

export interface TestHttpGateway {
  http: HttpGateway;
  sessions: TestSession[];
  logs: string[];
  close(): Promise<void>;
}

export async function startTestHttpGateway(servers: () => ServerSpec[], overrides: Partial<HttpGatewayOptions> = {}): Promise<TestHttpGateway> {
  const backend = new UnsandboxedBackend();
  const logs: string[] = [];
  const log = new Logger({ level: "debug", sink: { write: (l) => void logs.push(l) } });
  const sessions: TestSession[] = [];
  const http = await startHttpGateway({
    host: "127.0.0.1",
    port: 0,
    token: TOKEN,
    allowedOrigins: ["http://allowed.example:3000"],
    log,
    maxBodyBytes: 256 * 1024,
    maxSessions: 8,
    idleTimeoutMs: 60_000,
    createSession: ({ session }) => {
      const audit: AuditRecord[] = [];
      const gateway = newTestGateway(servers(), backend, log, audit);
      sessions.push({ tag: session, gateway, audit });
      return gateway;
    },
    ...overrides,
  });
  return { http, sessions, logs, close: () => http.close() };
}

export interface HttpClient {
  client: Client;
  transport: StreamableHTTPClientTransport;
}

export async function connectHttp(
  url: string,
  opts: { token?: string; capabilities?: ClientCapabilities; setup?: (c: Client) => void } = {},
): Promise<HttpClient> {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${opts.token ?? TOKEN}` } },
  });
  const client = new Client({ name: "http-test-client", version: "1.0.0" }, { capabilities: opts.capabilities ?? {} });
  opts.setup?.(client);
  await client.connect(transport);
  return { client, transport };
}

/** The PIDs of the servers a session started (from its `server.start` audit records). */
export function pidsOf(s: TestSession): number[] {
  return s.audit.filter((a) => a.type === "server.start").map((a) => Number((a.fields.details as Record<string, string>).pid));
}

export { alive } from "./process.js";

export const INIT = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } },
};

/** A raw HTTP/1.1 request (node:http lets a test set Host and stream a chunked body). */
export function rawRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[] },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, path: u.pathname, method: opts.method ?? "POST", headers: opts.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else req.end(opts.body);
  });
}

/** Standard headers of an authorised JSON POST. */
export function postHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return { "Content-Type": "application/json", Accept: "application/json, text/event-stream", Authorization: `Bearer ${TOKEN}`, ...extra };
}
