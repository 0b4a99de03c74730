// The live MCP sessions of the HTTP downstream: one gateway per session, a cap
// on how many exist, idle timeouts, and closing (which stops that session's
// servers). Not responsible for HTTP checks or for parsing requests.

import { randomUUID } from "node:crypto";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { Logger } from "../../log.js";
import type { SessionGateway } from "./options.js";
import { SessionTransport } from "./session-transport.js";

export interface Session {
  /** Set once the client's initialize was accepted. */
  id: string | undefined;
  readonly gateway: SessionGateway;
  readonly transport: StreamableHTTPServerTransport;
  /** The gateway's side of the transport: told when a request's stream is gone. */
  readonly relay: SessionTransport;
  /** HTTP requests of this session still open (an SSE stream counts). */
  open: number;
  idleTimer: NodeJS.Timeout | undefined;
  closing: Promise<void> | undefined;
}

export class SessionTable {
  private readonly live = new Map<string, Session>();
  /** Every session, including those still initializing: what the cap counts. */
  private readonly all = new Set<Session>();

  constructor(
    private readonly opts: {
      readonly createSession: (info: { readonly session: string }) => SessionGateway;
      readonly maxSessions: number;
      readonly idleTimeoutMs: number;
      readonly log: Logger;
    },
  ) {}

  get size(): number {
    return this.all.size;
  }

  /** The gateways of every session not closing (initializing ones included: they serve what they were made with). */
  gateways(): SessionGateway[] {
    return [...this.all].filter((s) => !s.closing).map((s) => s.gateway);
  }

  get(id: string): Session | undefined {
    return this.live.get(id);
  }

  /** A new session with its own gateway, or null when the cap is reached. */
  async create(): Promise<Session | null> {
    if (this.all.size >= this.opts.maxSessions) return null;
    let session!: Session;
    // SECURITY: session ids are random UUIDs (CSPRNG); the bearer token still guards every request.
    const id = randomUUID();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => id,
      onsessioninitialized: (id) => {
        session.id = id;
        this.live.set(id, session);
        this.opts.log.info("HTTP session opened", { session: short(id), sessions: this.all.size });
      },
      // DELETE: answer only once the session's servers are stopped.
      onsessionclosed: () => this.close(session, "ended by the client (DELETE)"),
    });
    const gateway = this.opts.createSession({ session: short(id) });
    const relay = new SessionTransport(transport);
    session = { id: undefined, gateway, transport, relay, open: 0, idleTimer: undefined, closing: undefined };
    this.all.add(session);
    try {
      await gateway.connect(relay);
    } catch (err) {
      await this.close(session, `could not start: ${(err as Error).message}`);
      throw err;
    }
    // Set after connect: the gateway's server chains its own handler before this one.
    const chained = transport.onclose;
    transport.onclose = () => {
      chained?.();
      void this.close(session, "transport closed");
    };
    transport.onerror = (err) => this.opts.log.debug(`HTTP session transport: ${err.message}`, { session: short(session.id) });
    return session;
  }

  /** Called when an HTTP request of the session starts; it is not idle while one is open. */
  begin(session: Session): void {
    session.open++;
    if (session.idleTimer) clearTimeout(session.idleTimer);
    session.idleTimer = undefined;
  }

  /** Called when an HTTP request of the session has ended (response finished or connection gone). */
  end(session: Session): void {
    session.open = Math.max(0, session.open - 1);
    if (session.open > 0 || session.closing) return;
    if (session.id === undefined) {
      // Initialize was refused (bad Accept header, invalid message): nothing to keep.
      void this.close(session, "not initialized");
      return;
    }
    session.idleTimer = setTimeout(() => void this.close(session, `idle for ${this.opts.idleTimeoutMs} ms`), this.opts.idleTimeoutMs);
    session.idleTimer.unref();
  }

  /** Stops the session's gateway (and so its servers); idempotent. */
  close(session: Session, reason: string): Promise<void> {
    if (session.closing) return session.closing;
    if (session.idleTimer) clearTimeout(session.idleTimer);
    let done!: () => void;
    // Set before any work: closing the gateway closes the transport, which calls back here.
    session.closing = new Promise<void>((r) => (done = r));
    void (async () => {
      try {
        await session.gateway.close();
      } catch (err) {
        this.opts.log.warn(`HTTP session did not close cleanly: ${(err as Error).message}`, { session: short(session.id) });
      }
      await session.transport.close().catch(() => undefined);
      if (session.id !== undefined) this.live.delete(session.id);
      this.all.delete(session);
      if (session.id !== undefined) this.opts.log.info(`HTTP session closed: ${reason}`, { session: short(session.id) });
    })().finally(done);
    return session.closing;
  }

  async closeAll(reason: string): Promise<void> {
    await Promise.all([...this.all].map((s) => this.close(s, reason)));
  }
}

/** Enough of a session id to tell sessions apart in logs, not enough to use it. */
const short = (id: string | undefined) => (id ? id.slice(0, 8) : "(initializing)");
