// The Streamable HTTP downstream: a node:http server on one MCP endpoint that
// checks every request (Host, Origin, bearer token, body size) and hands it to
// the session it belongs to, each session with its own gateway. Not
// responsible for what a gateway does, nor for where the token comes from.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { isInitializeRequest, isJSONRPCRequest, JSONRPCMessageSchema } from "@modelcontextprotocol/sdk/types.js";
import { NucleusError } from "../../errors.js";
import { readBody, sendRefusal } from "./body.js";
import { checkHost, checkOrigin, corsHeaders, makeBearerCheck, preflightHeaders, SERVER_ERROR, type Refusal } from "./guard.js";
import { isLoopbackHost } from "../../policy/loopback.js";
import { HTTP_DEFAULTS, validateHttpOptions, type HttpGatewayOptions, type SessionGateway } from "./options.js";
import { RefusalLog } from "./refusal-log.js";
import { SessionTable, type Session } from "./sessions.js";

export interface HttpGateway {
  /** The MCP endpoint, e.g. http://127.0.0.1:8787/mcp (with the port actually bound). */
  readonly url: string;
  readonly port: number;
  /** Number of sessions alive (including one still initializing). */
  sessions(): number;
  /** The gateways of the sessions alive and not closing (e.g. to apply a reloaded config to them). */
  gateways(): SessionGateway[];
  /** Stops listening, closes every session (stopping its servers) and drops every connection. */
  close(): Promise<void>;
}

const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const SESSION_NOT_FOUND = -32001; // what the SDK's transport answers for an unknown session
/** Connections open at once (SSE streams included): far above what max_sessions clients use. */
export const MAX_CONNECTIONS = 256;
/** Time for a client to send its request headers. */
const HEADERS_TIMEOUT_MS = 10_000;
/** Time for a client to send a whole request (a response stream may then stay open). */
const REQUEST_TIMEOUT_MS = 60_000;

export async function startHttpGateway(opts: HttpGatewayOptions): Promise<HttpGateway> {
  validateHttpOptions(opts);
  const log = opts.log.child({ downstream: "http" });
  const endpoint = opts.path ?? "/mcp";
  const loopbackOnly = isLoopbackHost(opts.host);
  const bearer = makeBearerCheck(opts.token);
  const maxRequests = opts.maxRequestsPerSession ?? HTTP_DEFAULTS.maxRequestsPerSession;
  const table = new SessionTable({ createSession: opts.createSession, maxSessions: opts.maxSessions, idleTimeoutMs: opts.idleTimeoutMs, log });
  let port = 0;
  let shuttingDown = false;

  // SECURITY: a client guessing tokens must not flood the log: one warning per window, with a count.
  const refusals = new RefusalLog(log);
  const refuse = (req: IncomingMessage, res: ServerResponse, r: Refusal, closeConnection = false) => {
    if (r.status === 401 || r.status === 403) refusals.refused(r.status, r.message, req.socket.remoteAddress);
    else log.debug(`refused an HTTP request: ${r.message}`, { status: r.status, method: req.method });
    sendRefusal(res, r, { closeConnection });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // SECURITY: every check runs before any MCP handling, on every request (GET streams and DELETE included).
    const origin = req.headers.origin;
    const placed = checkHost(req.headers.host, port, loopbackOnly) ?? checkOrigin(origin, opts.allowedOrigins);
    if (placed) return refuse(req, res, placed, true);
    // A browser page of a listed origin asks first (CORS preflight, never with the token): it learns which
    // methods and headers it may use, nothing else. The request itself still needs the token.
    if (req.method === "OPTIONS" && origin !== undefined && (req.url ?? "").split("?")[0] === endpoint) {
      res.writeHead(204, preflightHeaders(origin)).end();
      return;
    }
    for (const [k, v] of Object.entries(corsHeaders(origin))) res.setHeader(k, v);
    const denied = bearer(req.headers.authorization);
    if (denied) return refuse(req, res, denied, true);
    if ((req.url ?? "").split("?")[0] !== endpoint) {
      return refuse(req, res, { status: 404, code: SERVER_ERROR, message: `Not Found: the MCP endpoint is ${endpoint}` });
    }
    const method = req.method ?? "";
    if (method !== "GET" && method !== "POST" && method !== "DELETE") {
      return refuse(req, res, { status: 405, code: SERVER_ERROR, message: "Method not allowed.", headers: { Allow: "GET, POST, DELETE" } });
    }
    const sid = req.headers["mcp-session-id"];
    // (Node joins repeated headers of this kind with ", "; a session id never holds a comma.)
    if (Array.isArray(sid) || sid?.includes(",")) return refuse(req, res, { status: 400, code: SERVER_ERROR, message: "Bad Request: more than one Mcp-Session-Id header" });

    let parsed: unknown;
    let initialize = false;
    /** Ids of the client requests this POST carries (their answers go on its response stream). */
    let requestIds: Array<string | number> = [];
    if (method === "POST") {
      const body = await readBody(req, opts.maxBodyBytes);
      if (body.kind === "aborted") return;
      if (body.kind === "too-large") {
        const message = `Payload Too Large: a request body may have at most ${opts.maxBodyBytes} bytes`;
        return refuse(req, res, { status: 413, code: SERVER_ERROR, message }, true);
      }
      try {
        parsed = JSON.parse(body.text);
      } catch {
        return refuse(req, res, { status: 400, code: PARSE_ERROR, message: "Parse error: the body is not valid JSON" });
      }
      const messages = Array.isArray(parsed) ? parsed : [parsed];
      if (messages.length === 0 || !messages.every((m) => JSONRPCMessageSchema.safeParse(m).success)) {
        return refuse(req, res, { status: 400, code: INVALID_REQUEST, message: "Invalid Request: the body is not a JSON-RPC 2.0 message" });
      }
      initialize = messages.some(isInitializeRequest);
      requestIds = messages.filter(isJSONRPCRequest).map((m) => m.id);
    }

    let session: Session | null | undefined;
    if (shuttingDown) return refuse(req, res, { status: 503, code: SERVER_ERROR, message: "Service Unavailable: the gateway is shutting down" }, true);
    if (sid === undefined) {
      if (!initialize) {
        const message = "Bad Request: no Mcp-Session-Id header; start a session with an initialize request";
        return refuse(req, res, { status: 400, code: SERVER_ERROR, message });
      }
      session = await table.create();
      if (!session) {
        const message = `Service Unavailable: the gateway already serves ${opts.maxSessions} sessions, its limit; end one (DELETE) or raise [gateway.http] max_sessions`;
        return refuse(req, res, { status: 503, code: SERVER_ERROR, message, headers: { "Retry-After": "5" } });
      }
    } else {
      session = table.get(sid);
      if (!session || session.closing) {
        return refuse(req, res, { status: 404, code: SESSION_NOT_FOUND, message: "Session not found: it ended or timed out; initialize a new one" });
      }
    }
    // SECURITY: one client cannot hold an unbounded number of calls (each may buffer a body and hold a server).
    if (session.open >= maxRequests) {
      const message = `Too Many Requests: this session already has ${maxRequests} requests open; wait for answers first`;
      return refuse(req, res, { status: 429, code: SERVER_ERROR, message, headers: { "Retry-After": "1" } });
    }
    table.begin(session);
    const current = session;
    res.once("close", () => {
      table.end(current);
      if (requestIds.length > 0) current.relay.streamClosed(requestIds);
    });
    await session.transport.handleRequest(req, res, parsed);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      // Never crash on one request; the client gets a generic error (no paths, no details).
      log.error(`HTTP request failed: ${err.message}`);
      sendRefusal(res, { status: 500, code: -32603, message: "Internal error" }, { closeConnection: true });
    });
  });
  // SECURITY: bounded connections and prompt headers: idle or slow unauthenticated connections cannot use up
  // the gateway's file descriptors (which its servers need too).
  server.maxConnections = Math.max(MAX_CONNECTIONS, 4 * opts.maxSessions);
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.on("clientError", (_err, socket) => {
    // Malformed HTTP (bad request line, oversized headers): answer 400 and drop the connection.
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new NucleusError("USAGE", `cannot listen on ${opts.host}:${opts.port} for HTTP: ${err.code ?? err.message}`, {
          hint: err.code === "EADDRINUSE" ? "another program uses this port; choose another [gateway.http] port (0 picks a free one)" : "check [gateway.http] host and port",
          cause: err,
        }),
      );
    };
    server.once("error", onError);
    server.listen(opts.port, opts.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const address = server.address();
  port = typeof address === "object" && address ? address.port : opts.port;
  server.on("error", (err) => log.error(`HTTP server error: ${err.message}`));
  const hostPart = opts.host.includes(":") && !opts.host.startsWith("[") ? `[${opts.host}]` : opts.host;
  const url = `http://${hostPart}:${port}${endpoint}`;
  log.info(`serving MCP over Streamable HTTP at ${url}`);

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    sessions: () => table.size,
    gateways: () => table.gateways(),
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        const stopped = new Promise<void>((r) => server.close(() => r()));
        await table.closeAll("the gateway is shutting down");
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}
