// The MCP gateway: one downstream session (the client) and one upstream
// session per server. It aggregates catalogs under exposed names and forwards
// everything else faithfully: progress, cancellation, logging, list_changed,
// subscriptions, completions and server→client requests. Not responsible for
// how a server is sandboxed (the Launcher) or for transports.

import { WireError, wire } from "./wire-error.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  ResultSchema,
  RootsListChangedNotificationSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type Notification,
  type Request,
  type Result,
} from "@modelcontextprotocol/sdk/types.js";
import { digestOf, type AuditEvent } from "../audit/events.js";
import { exposeNotification, exposeResultUris, lifecycleAudit } from "./mapping.js";
import type { ServerSpec } from "../config/spec.js";
import type { Logger } from "../log.js";
import { Catalog } from "./catalog.js";
import { CatalogSync } from "./catalog-sync.js";
import { exposedUri, parseExposedUri, SEPARATOR } from "./names.js";
import { ElicitationOwners, serverRequestForClient } from "./server-requests.js";
import { paginate } from "./paginate.js";
import { Upstream, type Launcher, type LifecycleEvent } from "./upstream.js";
import { installFastPath } from "./fast-path.js";
import { mirrorServer } from "./mirror-init.js";
import { auditToolCall, callTool, type ExtraLike, type ToolCallHost } from "./tool-calls.js";

export interface GatewayOptions {
  readonly servers: readonly ServerSpec[];
  readonly launch: Launcher;
  readonly log: Logger;
  /** false for `nucleus run`: names and URIs are passed through unchanged. */
  readonly prefix: boolean;
  readonly maxMessageBytes: number;
  readonly version: string;
  readonly audit?: (event: AuditEvent) => void;
  readonly auditArguments?: boolean;
  /** Applied to every result and notification from `server` before the client sees it (secret redaction). */
  readonly outgoing?: <T>(server: string, value: T) => T;
  readonly backoff?: { initialMs: number; maxMs: number; resetAfterMs: number };
}

/** The longest a list request waits for one starting server. */
const LIST_WAIT_MS = 20_000;
/** The longest `nucleus run` holds the client's initialize for its server (clients time out at about 60 s). */
const RUN_INIT_WAIT_MS = 45_000;

export class Gateway {
  readonly server: Server;
  private readonly upstreams = new Map<string, Upstream>();
  private readonly catalog: Catalog;
  private readonly sync: CatalogSync;
  /** What the tools/call handler needs (tool-calls.ts). */
  private readonly toolCalls: ToolCallHost;
  private specs: Map<string, ServerSpec>;
  private closed = false;
  private initialized = false;
  private readonly elicitations = new ElicitationOwners();

  constructor(private readonly opts: GatewayOptions) {
    this.specs = new Map(opts.servers.map((s) => [s.name, s]));
    this.catalog = new Catalog(
      opts.servers.map((s) => s.name),
      opts.prefix,
      (name) => this.specs.get(name)!.tools,
      // SECURITY: a name made of allowed characters may spell a secret only once the server's own name was
      // cleaned up (ghp.X → ghp_X): such an item is not offered.
      (server, exposed) => this.out(server, exposed) !== exposed,
    );
    this.toolCalls = {
      ensureTools: (name) => this.sync.ensure("tools", this.upstreamsFor(name)),
      tools: () => this.catalog.tools(),
      forward: (server, request, extra) => this.forward(server, request, extra),
      audit: opts.audit,
      auditArguments: () => this.opts.auditArguments ?? false,
    };
    this.sync = new CatalogSync(this.catalog, {
      upstreams: () => [...this.upstreams.values()],
      upstream: (name) => (this.closed ? undefined : this.upstreams.get(name)),
      listWaitMs: (name) => Math.min(this.specs.get(name)!.timeouts.startupMs, LIST_WAIT_MS),
      out: (server, value) => this.out(server, value),
      log: opts.log,
      announce: (kind) => void this.server.notification({ method: `notifications/${kind}/list_changed` }).catch(() => undefined),
      beforeStart: () => this.syncCapabilities(),
    });
    this.server = new Server(
      { name: "nucleus", version: opts.version },
      {
        capabilities: {
          tools: { listChanged: true },
          prompts: { listChanged: true },
          resources: { subscribe: true, listChanged: true },
          logging: {},
          completions: {},
        },
      },
    );
    for (const spec of opts.servers) this.upstreams.set(spec.name, this.makeUpstream(spec, opts.launch));
    this.registerHandlers();
    this.server.oninitialized = () => {
      this.initialized = true;
      this.syncCapabilities();
      // Start every non-lazy server now, in parallel; failures are logged by the upstream.
      for (const up of this.upstreams.values()) if (!up.lazy) up.ready().catch(() => undefined);
    };
  }

  private makeUpstream(spec: ServerSpec, launch: Launcher): Upstream {
    return new Upstream({
      spec,
      launch,
      log: this.opts.log.child({ server: spec.name }),
      maxMessageBytes: this.opts.maxMessageBytes,
      clientInfo: { name: "nucleus", version: this.opts.version },
      backoff: this.opts.backoff,
      hooks: {
        forwardRequest: (server, request, o) => this.forwardRequest(server, request, o),
        forwardNotification: (server, n) => this.forwardNotification(server, n),
        catalogChanged: (server, kinds) => this.sync.changed(server, kinds),
        lifecycle: (e) => this.lifecycle(e),
        elicitationsIssued: (server, ids) => this.elicitations.issued(server, ids),
      },
    });
  }

  /**
   * A new set of servers (config reload): removed and changed servers are
   * stopped, added and changed ones start (lazy ones on first use), and the
   * client hears list_changed. Servers whose spec is unchanged keep running.
   */
  async reconfigure(servers: readonly ServerSpec[], launch: Launcher): Promise<{ added: string[]; removed: string[]; changed: string[] }> {
    const next = new Map(servers.map((s) => [s.name, s]));
    const { added, removed, changed } = diffServers([...this.specs.values()], servers);
    const going = [...removed, ...changed].map((n) => this.upstreams.get(n)!);
    for (const up of going) {
      this.upstreams.delete(up.name);
      this.catalog.clear(up.name);
    }
    await Promise.all(going.map((up) => up.stop()));
    this.specs = next;
    this.catalog.setOrder(servers.map((s) => s.name));
    const caps = this.server.getClientCapabilities() ?? {};
    for (const name of [...added, ...changed]) {
      const up = this.makeUpstream(next.get(name)!, launch);
      up.setClientCapabilities(caps);
      this.upstreams.set(name, up);
      if (this.initialized && !up.lazy) up.ready().catch(() => undefined);
    }
    if (removed.length + added.length + changed.length > 0) {
      this.sync.announceListed();
    }
    return { added, removed, changed };
  }

  async connect(transport: Transport): Promise<void> {
    await this.server.connect(transport);
    installFastPath(transport, {
      resolveTool: (name) => {
        // Only the tool's own server needs to be settled: no other server's items can take its name (names
        // start with their server's, which holds no "__" and does not end with "_").
        const origin = this.catalog.tools().lookup.get(name);
        const up = origin && this.upstreams.get(origin.server);
        return origin && up && this.sync.settled("tools", [up]) ? origin : null;
      },
      upstream: (server) => this.upstreams.get(server),
      out: (server, value) => this.out(server, value),
      exposeUris: (server, result) => exposeResultUris(server, "tools/call", result, this.opts.prefix),
      audit: (origin, args, outcome, started, reason) => auditToolCall(this.toolCalls, origin, args, outcome, started, reason),
    });
    // `nucleus run` (one server, names unchanged) answers initialize as that server would.
    const only = this.opts.servers.length === 1 && !this.opts.prefix ? this.upstreams.get(this.opts.servers[0]!.name) : undefined;
    if (only && !only.lazy) {
      mirrorServer(transport, this.server, only, Math.min(this.specs.get(only.name)!.timeouts.startupMs, RUN_INIT_WAIT_MS), (text) => this.out(only.name, text));
    }
  }


  /** Stop every server and close the client session. Leaves no process behind. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.upstreams.values()].map((u) => u.stop()));
    await this.server.close().catch(() => undefined);
  }

  upstream(name: string): Upstream | undefined {
    return this.upstreams.get(name);
  }

  private syncCapabilities(): void {
    const caps = this.server.getClientCapabilities() ?? {};
    for (const up of this.upstreams.values()) up.setClientCapabilities(caps);
  }

  private lifecycle(e: LifecycleEvent): void {
    if (this.opts.audit) for (const ev of lifecycleAudit(e, this.specs.get(e.server))) this.opts.audit(ev);
  }

  // ---- handlers --------------------------------------------------------------

  private registerHandlers(): void {
    const s = this.server;
    s.setRequestHandler(ListToolsRequestSchema, async (req) => {
      this.sync.listed.add("tools");
      await this.sync.ensure("tools");
      const { list, collisions } = this.catalog.tools();
      this.sync.reportCollisions(collisions);
      return paginate(list, req.params?.cursor, "tools");
    });
    s.setRequestHandler(ListPromptsRequestSchema, async (req) => {
      this.sync.listed.add("prompts");
      await this.sync.ensure("prompts");
      const { list, collisions } = this.catalog.prompts();
      this.sync.reportCollisions(collisions);
      return paginate(list, req.params?.cursor, "prompts");
    });
    s.setRequestHandler(ListResourcesRequestSchema, async (req) => {
      this.sync.listed.add("resources");
      await this.sync.ensure("resources");
      return paginate(this.catalog.resources(), req.params?.cursor, "resources");
    });
    s.setRequestHandler(ListResourceTemplatesRequestSchema, async (req) => {
      this.sync.listed.add("resources");
      await this.sync.ensure("templates");
      return paginate(this.catalog.templates(), req.params?.cursor, "resourceTemplates");
    });
    s.setRequestHandler(CallToolRequestSchema, (req, extra) => callTool(this.toolCalls, req, extra) as Promise<never>);
    s.setRequestHandler(GetPromptRequestSchema, async (req, extra) => {
      await this.sync.ensure("prompts", this.upstreamsFor(req.params.name));
      const origin = this.catalog.prompts().lookup.get(req.params.name);
      if (!origin) throw wire.invalidParams(`unknown prompt "${req.params.name}"`);
      return this.forward(origin.server, { method: req.method, params: { ...req.params, name: origin.original } }, extra);
    });
    s.setRequestHandler(ReadResourceRequestSchema, async (req, extra) => {
      const { server, uri } = this.routeUri(req.params.uri);
      const result = await this.forward(server, { method: req.method, params: { ...req.params, uri } }, extra);
      const contents = (result as { contents?: Array<{ uri?: string }> }).contents;
      if (Array.isArray(contents)) {
        for (const c of contents) if (typeof c.uri === "string") c.uri = exposedUri(server, c.uri, this.opts.prefix);
      }
      return result;
    });
    for (const schema of [SubscribeRequestSchema, UnsubscribeRequestSchema]) {
      s.setRequestHandler(schema, async (req, extra) => {
        const { server, uri } = this.routeUri(req.params.uri);
        const up = this.upstreams.get(server)!;
        await up.ready();
        if (!up.serverCapabilities()?.resources?.subscribe) {
          throw wire.methodNotFound(`server "${server}" does not support resource subscriptions`);
        }
        return this.forward(server, { method: req.method, params: { ...req.params, uri } }, extra);
      });
    }
    s.setRequestHandler(CompleteRequestSchema, async (req, extra) => {
      const ref = req.params.ref;
      if (ref.type === "ref/prompt") {
        await this.sync.ensure("prompts", this.upstreamsFor(ref.name));
        const origin = this.catalog.prompts().lookup.get(ref.name);
        if (!origin) throw wire.invalidParams(`unknown prompt "${ref.name}"`);
        return this.forward(origin.server, { method: req.method, params: { ...req.params, ref: { ...ref, name: origin.original } } }, extra);
      }
      const { server, uri } = this.routeUri(ref.uri);
      return this.forward(server, { method: req.method, params: { ...req.params, ref: { ...ref, uri } } }, extra);
    });
    s.setRequestHandler(SetLevelRequestSchema, async (req) => {
      // Answered at once: a server that never answers its setLevel must not hold the client's.
      for (const u of this.upstreams.values()) u.setLogLevel(req.params.level).catch(() => undefined);
      return {};
    });
    s.setNotificationHandler(RootsListChangedNotificationSchema, async (n) => {
      await Promise.all([...this.upstreams.values()].map((u) => u.notify(n)));
    });
  }

  /**
   * The one server an exposed tool or prompt name can come from (its prefix), so that a request for it waits
   * on that server's listing only — never on another server's (which a hostile server could make slow); none
   * when it names no server (no server can hold it); every server for `nucleus run` (it has one).
   */
  private upstreamsFor(name: string): Upstream[] | undefined {
    if (!this.opts.prefix) return undefined;
    const at = name.indexOf(SEPARATOR);
    const up = at > 0 ? this.upstreams.get(name.slice(0, at)) : undefined;
    return up ? [up] : [];
  }

  private routeUri(uri: string): { server: string; uri: string } {
    if (!this.opts.prefix) {
      const only = [...this.specs.values()][0];
      if (!only) throw wire.invalidParams("no server is configured");
      return { server: only.name, uri };
    }
    const parsed = parseExposedUri(uri);
    if (!parsed || !this.upstreams.has(parsed.server)) {
      throw wire.invalidParams(`unknown resource URI "${uri}" (resources are named nucleus://SERVER/URI)`);
    }
    return parsed;
  }

  /** Forward a client request to one server, mapping progress and cancellation. */
  private async forward(server: string, request: Request, extra: ExtraLike): Promise<Result> {
    const up = this.upstreams.get(server);
    if (!up) throw wire.invalidParams(`unknown server "${server}"`);
    this.syncCapabilities();
    const token = (request.params as { _meta?: { progressToken?: string | number } } | undefined)?._meta?.progressToken;
    // Progress is sent in order and before the result, as the server sent it.
    let sent: Promise<void> = Promise.resolve();
    const onprogress =
      token === undefined
        ? undefined
        : (p: { progress: number; total?: number; message?: string }) => {
            const params = this.out(server, { ...p, progressToken: token });
            sent = sent.then(() => extra.sendNotification({ method: "notifications/progress", params })).catch(() => undefined);
          };
    let result: Result;
    try {
      result = await up.request(request, { signal: extra.signal, onprogress });
    } catch (err) {
      // SECURITY: a server's error text and data are redacted like its results.
      if (err instanceof WireError) throw new WireError(err.code, this.out(server, err.message), this.out(server, err.data));
      throw err;
    }
    if (token !== undefined) {
      await sent;
      // Let the client process the last progress before the result ends the request
      // (the SDK drops progress that it handles after the response).
      await new Promise((r) => setImmediate(r));
    }
    return exposeResultUris(server, request.method, this.out(server, result), this.opts.prefix);
  }

  private out<T>(server: string, value: T): T {
    return this.opts.outgoing ? this.opts.outgoing(server, value) : value;
  }

  /** A server→client request: sent to the client, answered back to the server that asked. */
  private async forwardRequest(server: string, request: Request, o: { signal: AbortSignal }): Promise<Result> {
    const asked = serverRequestForClient(server, request, this.server.getClientCapabilities() ?? {}, this.elicitations);
    // A human may be answering (sampling approval, elicitation): allow a long time.
    return this.server.request(this.out(server, asked), ResultSchema, { signal: o.signal, timeout: 30 * 60_000 });
  }

  private forwardNotification(server: string, n: Notification): void {
    const exposed = exposeNotification(server, n, this.opts.prefix);
    // SECURITY: a URL elicitation is completed only by the server that asked for it.
    const id = (n.params as { elicitationId?: unknown } | undefined)?.elicitationId;
    const foreign = n.method === "notifications/elicitation/complete" && !(typeof id === "string" && this.elicitations.owns(server, id));
    if (!exposed || foreign) {
      this.opts.log.debug(`notification ${n.method.slice(0, 100)} from server "${server}" not forwarded: ${foreign ? "it completes an elicitation the server did not ask for" : "not one a server may send the client"}`);
      return;
    }
    void this.server.notification(this.out(server, exposed)).catch((err: Error) => {
      this.opts.log.debug(`notification ${n.method} from server "${server}" not forwarded: ${err.message}`);
    });
  }
}

export interface ServerDiff {
  readonly added: string[];
  readonly removed: string[];
  /** Servers whose policy or command changed (their spec's digest differs). */
  readonly changed: string[];
}

/** Which servers a reload adds, removes and changes. */
export function diffServers(before: readonly ServerSpec[], after: readonly ServerSpec[]): ServerDiff {
  const old = new Map(before.map((s) => [s.name, s]));
  const next = new Map(after.map((s) => [s.name, s]));
  return {
    added: [...next.keys()].filter((n) => !old.has(n)),
    removed: [...old.keys()].filter((n) => !next.has(n)),
    changed: [...next.keys()].filter((n) => old.has(n) && digestOf(old.get(n)) !== digestOf(next.get(n))),
  };
}
