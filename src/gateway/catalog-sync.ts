// Keeps the aggregated catalog (catalog.ts) in step with the servers: lists a
// kind from each server when the client first needs it (starting servers,
// waiting only so long for one still booting), re-lists a server after a
// start, crash or list_changed and tells the client about the kinds it has
// listed, and reports name collisions once. Not responsible for naming
// (catalog.ts) or for the client session (gateway.ts).

import { setTimeout as sleep } from "node:timers/promises";
import { PromptSchema, ResourceSchema, ResourceTemplateSchema, ToolSchema } from "@modelcontextprotocol/sdk/types.js";
import type { Logger } from "../log.js";
import type { Catalog, Collision, ServerCatalog } from "./catalog.js";
import type { CatalogKind, Upstream, UpstreamState } from "./upstream.js";

/** States in which a server offers nothing and a request does not (re)start it. */
const ABSENT: ReadonlySet<UpstreamState> = new Set(["refused", "stopped", "backoff"]);

/** The catalog parts one kind of change covers. */
const parts = (k: CatalogKind): Array<keyof ServerCatalog> => (k === "resources" ? ["resources", "templates"] : [k]);

export interface CatalogSyncDeps {
  upstreams(): Upstream[];
  /** undefined once the gateway is closing. */
  upstream(name: string): Upstream | undefined;
  /** How long a list waits for `server` while it starts. */
  listWaitMs(server: string): number;
  /** Redaction of what comes from `server`. */
  out<T>(server: string, value: T): T;
  readonly log: Logger;
  /** Send `notifications/<kind>/list_changed` to the client. */
  announce(kind: CatalogKind): void;
  /** Called before servers may be started by a list (client capabilities up to date). */
  beforeStart(): void;
}

export class CatalogSync {
  /** Kinds the client has listed: only those are announced as changed. */
  readonly listed = new Set<CatalogKind>();
  private readonly reported = new Set<string>();
  /** Listings in flight after a change, by server and kind; `again` when another change came. */
  private readonly relisting = new Map<string, { again: boolean }>();
  /** First listings in flight, by server and kind: concurrent requests share one. */
  private readonly listing = new Map<string, Promise<void>>();

  constructor(
    private readonly catalog: Catalog,
    private readonly deps: CatalogSyncDeps,
  ) {}

  /**
   * Makes sure `kind` is listed for the given servers (default: all, starting
   * those not yet running — lazy ones included, as a client request needs them).
   */
  async ensure(kind: keyof ServerCatalog, only?: Upstream[]): Promise<void> {
    const ups = only ?? this.deps.upstreams();
    // Fast path (every call passes here): all servers up and listed.
    if (this.settled(kind, ups)) return;
    this.deps.beforeStart();
    await Promise.all(
      ups.map(async (up) => {
        // A server still starting (package install, VM boot) holds a list back only so long; its
        // items follow with list_changed once it is ready.
        const ready = up.ready().then(
          () => true,
          () => false, // unavailable: its items are simply absent (the upstream logged why)
        );
        if (!(await Promise.race([ready, sleep(this.deps.listWaitMs(up.name), false, { ref: false })]))) return;
        if (this.catalog.has(up.name, kind)) return;
        const key = `${up.name}\0${kind}`;
        let first = this.listing.get(key);
        if (!first) {
          first = this.listOnce(up, kind).finally(() => this.listing.delete(key));
          this.listing.set(key, first);
        }
        await first;
      }),
    );
  }

  /**
   * One listing of `kind` from `up` into the catalog. SECURITY: a listing that fails (an error, a timeout, too
   * many items) counts as empty until the server changes (list_changed, restart): otherwise every later request
   * would list that server again and wait for it, which a hostile server could make last its whole request
   * timeout, each time.
   */
  private async listOnce(up: Upstream, kind: keyof ServerCatalog): Promise<void> {
    try {
      // SECURITY: descriptions and names come from the server: redacted like its results.
      this.catalog.set(up.name, kind, this.deps.out(up.name, this.wellFormed(up.name, kind, await up.listAll(kind))) as never);
    } catch (err) {
      this.deps.log.warn(`could not list ${kind} of server "${up.name}": ${(err as Error).message}; none are offered until it announces a change or restarts`);
      if (this.deps.upstream(up.name) === up) this.catalog.set(up.name, kind, [] as never);
    }
  }

  /**
   * SECURITY: only items of the MCP shape enter the catalog: one hostile entry (a tool whose
   * name is a number) would otherwise break naming for every server. The rest are dropped, logged.
   */
  private wellFormed(server: string, kind: keyof ServerCatalog, items: unknown[]): unknown[] {
    const schema = { tools: ToolSchema, prompts: PromptSchema, resources: ResourceSchema, templates: ResourceTemplateSchema }[kind];
    const kept = items.filter((item) => schema.safeParse(item).success);
    if (kept.length < items.length) this.deps.log.warn(`server "${server}" listed ${items.length - kept.length} malformed ${kind} entr${items.length - kept.length === 1 ? "y" : "ies"}; they are not offered`);
    return kept;
  }

  /**
   * The catalog answers without waiting: every one of `ups` is ready with `kind` listed,
   * or offers nothing now and would not be waited for (refused, stopped, restarting: a
   * request would not start it, so its items are simply absent either way).
   */
  settled(kind: keyof ServerCatalog, ups: Upstream[]): boolean {
    return ups.every((up) => (up.status === "ready" ? this.catalog.has(up.name, kind) : ABSENT.has(up.status)));
  }

  /** A server's catalog may have changed (started, restarted, crashed, list_changed). */
  changed(server: string, kinds: readonly CatalogKind[]): void {
    for (const kind of kinds) for (const p of parts(kind)) this.catalog.set(server, p, undefined);
    const up = this.deps.upstream(server);
    if (!up) return;
    for (const kind of kinds) this.relist(up, kind);
  }

  /**
   * Re-lists `kind` of a server now when it is up, then tells the client (only about kinds
   * it has listed). A burst of changes costs one listing in flight and one after it: a
   * server repeating list_changed cannot pile up listings.
   */
  private relist(up: Upstream, kind: CatalogKind): void {
    const key = `${up.name}\0${kind}`;
    const running = this.relisting.get(key);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.relisting.set(key, state);
    void (async () => {
      try {
        do {
          state.again = false;
          // (A listing that was in flight when the change came is stale: clear before listing again.)
          for (const p of parts(kind)) this.catalog.set(up.name, p, undefined);
          if (up.status === "ready") await Promise.all(parts(kind).map((p) => this.ensure(p, [up])));
        } while (state.again && this.deps.upstream(up.name) === up);
      } finally {
        this.relisting.delete(key);
      }
      if (this.listed.has(kind)) this.deps.announce(kind);
    })();
  }

  /** Tell the client every kind it has listed changed (after a reload). */
  announceListed(): void {
    for (const kind of this.listed) this.deps.announce(kind);
  }

  reportCollisions(collisions: Collision[]): void {
    for (const c of collisions) {
      const key = `${c.kind}:${c.exposed}`;
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      const who = c.origins.map((o) => `"${o.original}" of server "${o.server}"`).join(" and ");
      this.deps.log.error(`${c.kind} name collision: ${who} both map to "${c.exposed}"; neither is offered`);
    }
  }
}
