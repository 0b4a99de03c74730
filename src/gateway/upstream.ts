// One upstream MCP server: its sandbox, its SDK client session, and its
// supervision (start, lazy start, crash → fail in-flight calls at once →
// restart with exponential backoff). Not responsible for naming or for the
// downstream session (gateway.ts).

import { setTimeout as sleep } from "node:timers/promises";
import { WireError, wire } from "./wire-error.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  ErrorCode,
  McpError,
  ResultSchema,
  type ClientCapabilities,
  type Implementation,
  type Notification,
  type Request,
  type Result,
} from "@modelcontextprotocol/sdk/types.js";
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { ServerSpec } from "../config/spec.js";
import { NucleusError, errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import type { Sandbox, SandboxExit } from "../sandbox/backend.js";
import { StreamTransport } from "./stream-transport.js";
import { relayStderr } from "./stderr-relay.js";
import { RawCalls, type RawCall } from "./raw-calls.js";
import { cancelledByCaller, capabilityFor, exitPhrase, requestSchemaFor, startFailureReason, SERVER_TO_CLIENT_REQUESTS } from "./upstream-phrases.js";

/** Starts one server's sandbox. `signal` aborts a start in progress (package install, boot) at shutdown. */
export type Launcher = (spec: ServerSpec, signal: AbortSignal) => Promise<Sandbox>;

/** What the upstream asks of the gateway: forward server→client traffic, react to changes. */
export interface UpstreamHooks {
  /** A server→client request (sampling, elicitation, roots/list, ...), to be answered by the client. */
  forwardRequest(server: string, request: Request, options: { signal: AbortSignal }): Promise<Result>;
  /** A server→client notification other than progress/cancelled (handled by the SDK). */
  forwardNotification(server: string, notification: Notification): void;
  /** The server's catalog may have changed (started, restarted, crashed, list_changed). */
  catalogChanged(server: string, kinds: readonly CatalogKind[]): void;
  /** Lifecycle events for the audit log. */
  lifecycle?(event: LifecycleEvent): void;
  /** The server named URL elicitations (-32042 "URL elicitation required"): only it may complete them. */
  elicitationsIssued?(server: string, ids: readonly string[]): void;
}

export type CatalogKind = "tools" | "prompts" | "resources";
export type LifecycleEvent =
  | { type: "server.start"; server: string; backend: string; details: Readonly<Record<string, string>> }
  | { type: "server.exit"; server: string; cause: string; code: number | null; signal: string | null; message: string }
  | { type: "server.restart"; server: string; attempt: number; delayMs: number };

/** Bounds on one listing of one kind from one server (all pages together). */
const MAX_LIST_PAGES = 1000;
const MAX_LIST_ITEMS = 50_000;
const MAX_LIST_BYTES = 32 * 1024 * 1024;

export type UpstreamState = "idle" | "starting" | "ready" | "backoff" | "refused" | "stopped";

export interface UpstreamOptions {
  readonly spec: ServerSpec;
  readonly launch: Launcher;
  readonly hooks: UpstreamHooks;
  readonly log: Logger;
  readonly maxMessageBytes: number;
  readonly clientInfo: Implementation;
  /** Restart backoff: first delay, doubled per consecutive crash, capped. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number; readonly resetAfterMs: number };
}

export class Upstream {
  readonly name: string;
  private readonly spec: ServerSpec;
  private state: UpstreamState = "idle";
  private client: Client | null = null;
  /** Raw requests (the tools/call fast path) on the same connection as `client`. */
  private raw: RawCalls | null = null;
  private sandbox: Sandbox | null = null;
  private starting: Promise<Client> | null = null;
  private capabilities: ClientCapabilities = {};
  private crashes = 0;
  private lastStart = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  /** The same failure as a short phrase for the client: no path, argv, value or guest text. */
  private clientReason: string | null = null;
  /** Clients whose connection closed (to tell a closed connection from a server's own -32000 error). */
  private readonly closedClients = new WeakSet<Client>();
  private logLevel: string | null = null;
  /** Aborted by stop(): cancels a start in progress. */
  private readonly lifetime = new AbortController();

  constructor(private readonly opts: UpstreamOptions) {
    this.spec = opts.spec;
    this.name = opts.spec.name;
  }

  get status(): UpstreamState {
    return this.state;
  }

  /** Read through a method: the state changes across awaits, which narrowing cannot see. */
  private stopped(): boolean {
    return this.state === "stopped";
  }

  get lazy(): boolean {
    return this.spec.lazy;
  }

  /** The server's capabilities once initialized. */
  serverCapabilities() {
    return this.client?.getServerCapabilities();
  }

  instructions(): string | undefined {
    return this.client?.getInstructions();
  }

  /** Set the capabilities the downstream client declared; used for every (re)start. */
  setClientCapabilities(caps: ClientCapabilities): void {
    this.capabilities = caps;
  }

  /** Remember the client's logging level, re-applied after restarts. */
  async setLogLevel(level: string): Promise<void> {
    this.logLevel = level;
    const c = this.client;
    if (c && this.state === "ready" && c.getServerCapabilities()?.logging) {
      await c.request({ method: "logging/setLevel", params: { level } }, ResultSchema);
    }
  }

  /** A ready client, starting the server if needed. Throws a clear error if it cannot be had. */
  async ready(): Promise<Client> {
    if (this.state === "ready" && this.client) return this.client;
    if (this.state === "refused" || this.state === "stopped") throw this.unavailable();
    if (this.state === "backoff") throw this.unavailable();
    if (!this.starting) this.starting = this.start();
    return this.starting;
  }

  private unavailable(): WireError {
    // SECURITY: only the short reason crosses the wire; the details are in the gateway log.
    const why = this.clientReason ? ` (${this.clientReason}; see the gateway log)` : "";
    const what =
      this.state === "backoff" ? "is restarting" : this.state === "refused" ? "was refused by policy" : "is stopped";
    return wire.internal(`server "${this.name}" ${what}${why}`);
  }

  private async start(): Promise<Client> {
    this.state = "starting";
    const log = this.opts.log;
    let sandbox: Sandbox | null = null;
    try {
      sandbox = await this.opts.launch(this.spec, this.lifetime.signal);
    } catch (err) {
      this.starting = null;
      if (this.stopped()) throw this.unavailable();
      const msg = errorMessage(err);
      this.clientReason = startFailureReason(err);
      if (err instanceof NucleusError && err.code === "POLICY_REFUSED") {
        this.state = "refused";
        log.error(`server "${this.name}" refused: ${msg}`);
        throw this.unavailable();
      }
      log.error(`server "${this.name}" could not start: ${msg}`);
      this.scheduleRestart();
      throw this.unavailable();
    }
    if (this.stopped()) {
      // stop() ran while the sandbox was being made: it must not outlive the gateway.
      this.starting = null;
      await sandbox.stop(1000);
      throw this.unavailable();
    }
    this.sandbox = sandbox;
    relayStderr(sandbox.stderr, log);
    this.opts.hooks.lifecycle?.({ type: "server.start", server: this.name, backend: sandbox.backend, details: sandbox.details });
    const client = this.makeClient();
    const transport = new StreamTransport(sandbox.stdout, sandbox.stdin, {
      role: "client",
      peer: `server "${this.name}"`,
      maxMessageBytes: this.opts.maxMessageBytes,
    });
    transport.onerror = (err) => log.warn(err.message);
    const thisSandbox = sandbox;
    void sandbox.exited.then((exit) => this.onExit(thisSandbox, exit));
    const raw = new RawCalls(transport, this.spec.timeouts.requestMs);
    client.onclose = () => {
      this.closedClients.add(client);
      raw.closeAll();
      // The stream ended or was cut (oversized frame): make sure the process goes too.
      // (When the process itself ended, let its exit be seen as what it was.)
      void Promise.race([thisSandbox.exited, sleep(500, undefined, { ref: false }).then(() => null)]).then((exit) => {
        if (!exit && this.sandbox === thisSandbox && this.state !== "stopped") void thisSandbox.stop(1000);
      });
    };
    try {
      await client.connect(transport, { timeout: this.spec.timeouts.startupMs });
    } catch (err) {
      this.starting = null;
      if (this.stopped()) {
        await thisSandbox.stop(1000);
        throw this.unavailable();
      }
      this.clientReason = "it did not answer initialize";
      log.error(`server "${this.name}" did not initialize: ${errorMessage(err)}`);
      await thisSandbox.stop(1000);
      throw this.unavailable();
    }
    raw.install();
    this.client = client;
    this.raw = raw;
    this.state = "ready";
    this.lastStart = Date.now();
    this.starting = null;
    this.clientReason = null;
    if (this.logLevel && client.getServerCapabilities()?.logging) {
      await this.setLogLevel(this.logLevel).catch(() => undefined);
    }
    log.info(`server "${this.name}" ready`, { backend: sandbox.backend, pid: sandbox.details.pid ?? "" });
    this.opts.hooks.catalogChanged(this.name, ["tools", "prompts", "resources"]);
    return client;
  }

  private makeClient(): Client {
    const client = new Client(this.opts.clientInfo, { capabilities: this.capabilities });
    const hooks = this.opts.hooks;
    for (const method of SERVER_TO_CLIENT_REQUESTS) {
      if (!capabilityFor(method, this.capabilities)) continue;
      const schema = requestSchemaFor(method);
      client.setRequestHandler(schema, (request, extra) =>
        hooks.forwardRequest(this.name, request as Request, { signal: extra.signal }),
      );
    }
    client.fallbackNotificationHandler = async (n) => {
      const m = n.method;
      if (m === "notifications/tools/list_changed") hooks.catalogChanged(this.name, ["tools"]);
      else if (m === "notifications/prompts/list_changed") hooks.catalogChanged(this.name, ["prompts"]);
      else if (m === "notifications/resources/list_changed") hooks.catalogChanged(this.name, ["resources"]);
      else hooks.forwardNotification(this.name, n);
    };
    return client;
  }

  private onExit(sandbox: Sandbox, exit: SandboxExit): void {
    if (this.sandbox !== sandbox) return;
    this.sandbox = null;
    const client = this.client;
    this.client = null;
    this.raw = null;
    this.lastExit = exit;
    this.opts.hooks.lifecycle?.({
      type: "server.exit",
      server: this.name,
      cause: exit.cause,
      code: exit.code,
      signal: exit.signal,
      message: exit.message,
    });
    void client?.close().catch(() => undefined);
    if (this.state === "stopped") return;
    this.clientReason = exitPhrase(exit);
    this.opts.log.warn(`${exit.message}; restarting`, { cause: exit.cause });
    // Leave "ready" before the catalog is re-listed: a refresh that still saw "ready" called
    // ready(), which started a second sandbox beside the restart's (and leaked the first).
    this.scheduleRestart();
    this.opts.hooks.catalogChanged(this.name, ["tools", "prompts", "resources"]);
  }

  private lastExit: SandboxExit | null = null;

  private scheduleRestart(): void {
    if (this.state === "stopped" || this.restartTimer) return;
    const b = this.opts.backoff ?? { initialMs: 250, maxMs: 30_000, resetAfterMs: 60_000 };
    if (this.lastStart && Date.now() - this.lastStart > b.resetAfterMs) this.crashes = 0;
    const delayMs = Math.min(b.initialMs * 2 ** this.crashes, b.maxMs);
    this.crashes++;
    this.state = "backoff";
    this.opts.hooks.lifecycle?.({ type: "server.restart", server: this.name, attempt: this.crashes, delayMs });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.state !== "backoff" || this.starting) return;
      this.state = "idle";
      this.starting = this.start();
      this.starting.catch(() => undefined);
    }, delayMs);
    this.restartTimer.unref?.();
  }

  /**
   * Send a request to the server. A crash while it is in flight fails it at once
   * with an error naming the server; a timeout names the server and the limit.
   */
  async request(request: Request, options: { signal?: AbortSignal; onprogress?: RequestOptions["onprogress"] } = {}): Promise<Result> {
    const client = await this.ready();
    try {
      return await client.request(request, ResultSchema, {
        signal: options.signal,
        onprogress: options.onprogress,
        timeout: this.spec.timeouts.requestMs,
        resetTimeoutOnProgress: true,
      });
    } catch (err) {
      throw await this.describeFailure(err, request.method, client);
    }
  }

  /**
   * The same request sent raw (the tools/call fast path): null unless the server
   * is ready, so the caller takes the normal path. Failures are described as
   * request() describes them.
   */
  rawRequest(method: string, params: Record<string, unknown>): RawCall | null {
    const client = this.client;
    const raw = this.raw;
    if (this.state !== "ready" || !client || !raw) return null;
    const call = raw.call(method, params);
    return { promise: call.promise.catch(async (err: unknown) => Promise.reject(await this.describeFailure(err, method, client))), cancel: call.cancel };
  }

  private async describeFailure(err: unknown, method: string, client: Client): Promise<unknown> {
    if (!(err instanceof McpError)) return err;
    // (-32000 / -32001 are also codes a server may use for its own errors: only
    // a connection that really closed, or the SDK's own timeout, count as such.)
    if (err.code === ErrorCode.ConnectionClosed && this.closedClients.has(client) && !cancelledByCaller(err)) {
      // Give the exit a moment to be reaped so the message can say how it ended.
      const sandbox = this.sandbox;
      if (sandbox) await Promise.race([sandbox.exited, sleep(300, undefined, { ref: false })]);
      const how = this.lastExit ? ` (server "${this.name}" ${exitPhrase(this.lastExit)})` : "";
      // (Stopped for good — gateway shutdown, session end, removed by a reload — it is not restarted.)
      const next = this.stopped() ? "it was stopped by the gateway" : "it is being restarted";
      return wire.internal(`server "${this.name}" stopped while handling ${method}${how}; ${next}`);
    }
    const local = (err.data as { timeout?: unknown } | undefined)?.timeout !== undefined;
    if (err.code === ErrorCode.RequestTimeout && local) {
      return wire.timeout(`server "${this.name}" did not answer ${method} within ${this.spec.timeouts.requestMs} ms`);
    }
    // The server's own error, passed on as it sent it: its code, message and data
    // (e.g. -32042 URL elicitation required, with the elicitations in data).
    const elicitations = (err.data as { elicitations?: unknown } | undefined)?.elicitations;
    if (Array.isArray(elicitations)) {
      const ids = elicitations.map((e) => (e as { elicitationId?: unknown } | null)?.elicitationId).filter((id): id is string => typeof id === "string");
      if (ids.length > 0) this.opts.hooks.elicitationsIssued?.(this.name, ids);
    }
    return new WireError(err.code, err.message.replace(/^(MCP error -?\d+: )+/, ""), err.data);
  }

  /** Every item of one list kind, all pages read; [] when the server does not offer that kind. */
  async listAll(kind: "tools" | "prompts" | "resources" | "templates"): Promise<unknown[]> {
    const caps = this.serverCapabilities();
    const supported = kind === "tools" ? caps?.tools : kind === "prompts" ? caps?.prompts : caps?.resources;
    if (!supported) return [];
    const method = { tools: "tools/list", prompts: "prompts/list", resources: "resources/list", templates: "resources/templates/list" }[kind];
    const field = { tools: "tools", prompts: "prompts", resources: "resources", templates: "resourceTemplates" }[kind];
    const items: unknown[] = [];
    let bytes = 0;
    let cursor: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const result = (await this.request({ method, params: cursor ? { cursor } : {} })) as Record<string, unknown>;
      const got = result[field];
      if (Array.isArray(got)) {
        // SECURITY: the catalog keeps what a server lists: bounded, so a hostile server's
        // endless pages cannot grow the gateway's memory without end.
        bytes += JSON.stringify(got).length;
        items.push(...got);
        if (items.length > MAX_LIST_ITEMS || bytes > MAX_LIST_BYTES) {
          throw new Error(`it listed more than ${MAX_LIST_ITEMS} ${kind} or ${MAX_LIST_BYTES / 1024 / 1024} MiB of them; none are offered`);
        }
      }
      cursor = typeof result.nextCursor === "string" ? result.nextCursor : undefined;
      if (!cursor) break;
    }
    return items;
  }

  /** Send a notification to the server if it is running (roots/list_changed, ...). */
  async notify(notification: Notification): Promise<void> {
    if (this.state !== "ready" || !this.client) return;
    await this.client.notification(notification).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.state = "stopped";
    this.lifetime.abort(new Error(`server "${this.name}" is being stopped`));
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const starting = this.starting;
    const sandbox = this.sandbox;
    const client = this.client;
    this.client = null;
    this.raw = null;
    await client?.close().catch(() => undefined);
    // Stopping the sandbox also ends a start that is waiting for initialize.
    if (sandbox) await sandbox.stop(this.spec.timeouts.shutdownGraceMs);
    // A start still launching (package install, VM boot) settles once aborted, stopping what it made.
    if (starting) await starting.catch(() => undefined);
  }
}

