// Shared by `serve` and `run`: load the config, refuse what cannot be
// enforced (exit 3), start the gateway on stdio (or on Streamable HTTP with
// `serve --http`), and shut everything down on stdin EOF, SIGINT or SIGTERM
// without leaving a process behind.

import type { Readable, Writable } from "node:stream";
import { configReload, digestOf, policyRefused, type AuditEvent } from "../audit/events.js";
import { discoverConfig } from "../config/discover.js";
import { loadConfig } from "../config/load.js";
import type { NucleusConfig, ServerSpec } from "../config/spec.js";
import { NucleusError, errorMessage } from "../errors.js";
import { diffServers, Gateway } from "../gateway/gateway.js";
import { HTTP_DEFAULTS } from "../gateway/http/options.js";
import { startHttpGateway, type HttpGateway } from "../gateway/http/server.js";
import { httpStartNotice, resolveHttpToken } from "../gateway/http/token.js";
import { makeLauncher, preflight, refusalError, type Preflight } from "../gateway/runtime.js";
import { createServices, type Services } from "../gateway/services.js";
import { fdsClosedAtStart } from "../sandbox/host-fds.js";
import { StreamTransport } from "../gateway/stream-transport.js";
import type { CliContext } from "./command.js";
import { version } from "./main.js";

export interface SessionOptions {
  /** `run NAME`: one server, names passed through unchanged. */
  readonly only?: string;
  /** `serve --http`: Streamable HTTP instead of stdio. */
  readonly http?: boolean;
}

export async function runGatewaySession(ctx: CliContext, opts: SessionOptions): Promise<number> {
  // (Closed by the process entry, before anything was started: no server inherits what the gateway was handed.)
  const closed = fdsClosedAtStart();
  if (closed.length > 0) ctx.log.info("closed file descriptors inherited without close-on-exec, so that no server inherits them", { fds: closed.join(",") });
  const path = discoverConfig({ flag: ctx.configPath, env: ctx.env });
  const config = await loadConfig(path);
  const servers = pickServers(config, path, opts.only);
  const log = ctx.log;
  for (const s of servers) {
    if (s.insecureUnsandboxed) log.warn(`server "${s.name}" runs WITHOUT a sandbox (insecure_unsandboxed = true): it can read and write every file of the user that runs nucleus (the config, secret files, the audit log, /proc/${process.pid}/environ — so every other server's secrets) and reach every host`);
  }

  const services = await createServices(config, servers, { log, env: ctx.env });
  let reloads: { dispose(): void } | null = null;
  try {
    const pf = await preflight(servers, config.gateway.backend, services.deps);
    if (pf.refusals.length > 0) {
      for (const r of pf.refusals) services.audit?.(policyRefused({ server: r.server, what: "start", rule: r.gaps.map((g) => g.rule).join(", ") }));
      throw refusalError(pf.refusals);
    }
    logSelections(servers, pf, log);
    // What new gateways are made from; a reload (SIGHUP) replaces it.
    let state = { config, servers, pf };
    // The gateways serving now: the stdio one, or one per open HTTP session.
    let serving: () => Gateway[] = () => [];
    const newGateway = (tag?: string) => makeGateway(state.config, state.servers, state.pf, services, ctx, opts, tag);
    reloads = onSighup(async () => {
      const next = await reloadConfig(path, opts.only, services, log);
      if (!next) return;
      const prev = state;
      state = next; // new HTTP sessions start with it from now on
      const diff = diffServers(prev.servers, next.servers);
      // SECURITY: a reload reaches every open session too (a removed server or a narrowed grant must not live
      // on in a connected client's session): removed and changed servers are stopped, changed ones restarted.
      const open = serving();
      await Promise.all(open.map((g) => g.reconfigure(next.servers, makeLauncher(next.pf.selections, services.deps, log))));
      services.audit?.(configReload({ source: path, changed: [...diff.added, ...diff.removed, ...diff.changed] }));
      const where = opts.http ? ` (applied to ${open.length} open HTTP session(s) and every new one)` : "";
      log.info(`config reloaded: added [${diff.added.join(", ")}], removed [${diff.removed.join(", ")}], changed [${diff.changed.join(", ")}]${where}`);
      if (opts.http && digestOf(prev.config.gateway.http) !== digestOf(next.config.gateway.http)) {
        log.warn("[gateway.http] changed: its settings (listen, port, token, origins, limits) take effect at the next start; servers and their policies took effect now");
      }
    });
    if (opts.http) return await serveHttp(config, services, newGateway, ctx, (h) => (serving = () => h.gateways().filter((g): g is Gateway => g instanceof Gateway)));
    const live = newGateway();
    serving = () => [live];
    return await serveStdio(config, servers.length, path, live, ctx);
  } finally {
    reloads?.dispose();
    await services.close();
  }
}

function logSelections(servers: readonly ServerSpec[], pf: Preflight, log: CliContext["log"]): void {
  for (const s of servers) log.info(`server "${s.name}": backend ${pf.selections.get(s.name)!.backend.name} (${pf.selections.get(s.name)!.reason})`);
}

/**
 * Reads the config again for a reload. A config with errors is refused and the
 * running one stays; a server whose rules cannot be enforced is left out
 * (logged, audited) while the others go on.
 */
async function reloadConfig(path: string, only: string | undefined, services: Services, log: CliContext["log"]) {
  let config: NucleusConfig;
  let servers: readonly ServerSpec[];
  try {
    config = await loadConfig(path);
    servers = pickServers(config, path, only);
  } catch (err) {
    log.error(`config reload refused, the running config stays: ${errorMessage(err)}`);
    return null;
  }
  const pf = await preflight(servers, config.gateway.backend, services.deps);
  const refused = new Set(pf.refusals.map((r) => r.server));
  for (const r of pf.refusals) {
    services.audit?.(policyRefused({ server: r.server, what: "start", rule: r.gaps.map((g) => g.rule).join(", ") }));
    log.error(refusalError([r]).describe());
  }
  const kept = servers.filter((s) => !refused.has(s.name));
  services.update(config, kept);
  logSelections(kept, pf, log);
  return { config, servers: kept, pf };
}

/** Runs `fn` on each SIGHUP, one at a time. */
function onSighup(fn: () => Promise<void>): { dispose(): void } {
  let chain = Promise.resolve();
  const handler = () => {
    chain = chain.then(fn).catch(() => undefined);
  };
  process.on("SIGHUP", handler);
  return { dispose: () => void process.off("SIGHUP", handler) };
}

function pickServers(config: NucleusConfig, path: string, only: string | undefined): readonly ServerSpec[] {
  if (config.servers.length === 0) throw new NucleusError("CONFIG_INVALID", `${path} defines no [servers.*]`, { hint: "see examples/nucleus.toml" });
  if (only === undefined) return config.servers;
  const one = config.servers.find((s) => s.name === only);
  if (!one) {
    const known = config.servers.map((s) => s.name).join(", ");
    throw new NucleusError("USAGE", `no server named "${only}" in ${path}`, { hint: `known servers: ${known}` });
  }
  return [one];
}

function makeGateway(config: NucleusConfig, servers: readonly ServerSpec[], pf: Preflight, services: Services, ctx: CliContext, opts: SessionOptions, tag?: string): Gateway {
  const audit = services.audit;
  const tagged = audit && tag ? (e: AuditEvent) => audit({ ...e, fields: { ...e.fields, session: tag } }) : audit;
  return new Gateway({
    servers,
    prefix: opts.only === undefined,
    launch: makeLauncher(pf.selections, services.deps, ctx.log),
    log: tag ? ctx.log.child({ session: tag }) : ctx.log,
    maxMessageBytes: config.gateway.maxMessageBytes,
    version: version(),
    audit: tagged,
    auditArguments: config.gateway.auditArguments,
    outgoing: services.outgoing,
  });
}

/** Resolves on SIGINT or SIGTERM with a sentence saying which. */
function untilSignal(): { promise: Promise<string>; dispose(): void } {
  let handler: (sig: NodeJS.Signals) => void = () => {};
  const promise = new Promise<string>((resolve) => {
    handler = (sig) => resolve(`received ${sig}`);
    process.once("SIGINT", handler);
    process.once("SIGTERM", handler);
  });
  return { promise, dispose: () => (process.off("SIGINT", handler), process.off("SIGTERM", handler)) };
}

async function serveStdio(config: NucleusConfig, count: number, path: string, gateway: Gateway, ctx: CliContext): Promise<number> {
  const log = ctx.log;
  const transport = new StreamTransport(ctx.stdin as Readable, ctx.stdout as Writable, {
    role: "server",
    peer: "the client",
    maxMessageBytes: config.gateway.maxMessageBytes,
    closeOnOversize: false,
  });
  transport.onerror = (err) => log.warn(err.message);
  const signal = untilSignal();
  const closed = new Promise<string>((resolve) => {
    transport.onclose = () => resolve("the client closed the connection");
  });
  // (The SDK chains the onclose set before connect.)
  await gateway.connect(transport);
  log.info(`gateway ready on stdio: ${count} server(s) from ${path}`);
  const why = await Promise.race([signal.promise, closed]);
  signal.dispose();
  log.info(`shutting down: ${why}`);
  await gateway.close();
  return 0;
}

async function serveHttp(
  config: NucleusConfig,
  services: Services,
  newGateway: (tag: string) => Gateway,
  ctx: CliContext,
  started: (http: HttpGateway) => void,
): Promise<number> {
  const h = config.gateway.http ?? {
    listen: HTTP_DEFAULTS.host,
    port: HTTP_DEFAULTS.port,
    token: null,
    allowedOrigins: [],
    maxSessions: HTTP_DEFAULTS.maxSessions,
    idleTimeoutMs: HTTP_DEFAULTS.idleTimeoutMs,
    insecureListenAny: false,
  };
  const token = await resolveHttpToken(h.token ? config.secrets[h.token]! : null, ctx.env);
  // SECURITY: the token is a secret like any other: masked in every log line.
  services.redactor.add("gateway.http.token", token.token);
  const http = await startHttpGateway({
    host: h.listen,
    port: h.port,
    token: token.token,
    allowedOrigins: h.allowedOrigins,
    createSession: ({ session }) => newGateway(session),
    log: ctx.log,
    maxBodyBytes: config.gateway.maxMessageBytes,
    maxSessions: h.maxSessions,
    idleTimeoutMs: h.idleTimeoutMs,
    insecureListenAny: h.insecureListenAny,
  });
  started(http);
  ctx.stderr.write(httpStartNotice(http.url, token));
  const signal = untilSignal();
  const why = await signal.promise;
  signal.dispose();
  ctx.log.info(`shutting down: ${why}`);
  await http.close();
  return 0;
}
