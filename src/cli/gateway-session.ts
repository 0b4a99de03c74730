// Shared by `serve` and `run`: load the config, refuse what cannot be
// enforced (exit 3), start the gateway on stdio, and shut everything down on
// stdin EOF, SIGINT or SIGTERM without leaving a process behind.

import { policyRefused } from "../audit/events.js";
import { loadConfig } from "../config/load.js";
import { discoverConfig } from "../config/discover.js";
import type { ServerSpec } from "../config/spec.js";
import { NucleusError } from "../errors.js";
import { Gateway } from "../gateway/gateway.js";
import { makeLauncher, preflight, refusalError } from "../gateway/runtime.js";
import { createServices } from "../gateway/services.js";
import { StreamTransport } from "../gateway/stream-transport.js";
import type { CliContext } from "./command.js";
import { version } from "./main.js";

export interface SessionOptions {
  /** `run NAME`: one server, names passed through unchanged. */
  readonly only?: string;
}

export async function runGatewaySession(ctx: CliContext, opts: SessionOptions): Promise<number> {
  const path = discoverConfig({ flag: ctx.configPath, env: ctx.env });
  const config = await loadConfig(path);
  let servers: readonly ServerSpec[] = config.servers;
  if (opts.only !== undefined) {
    const one = config.servers.find((s) => s.name === opts.only);
    if (!one) {
      const known = config.servers.map((s) => s.name).join(", ") || "(none)";
      throw new NucleusError("USAGE", `no server named "${opts.only}" in ${path}`, { hint: `known servers: ${known}` });
    }
    servers = [one];
  }
  if (servers.length === 0) throw new NucleusError("CONFIG_INVALID", `${path} defines no [servers.*]`, { hint: "see examples/nucleus.toml" });
  const log = ctx.log;
  for (const s of servers) {
    if (s.insecureUnsandboxed) log.warn(`server "${s.name}" runs WITHOUT a sandbox (insecure_unsandboxed = true): it can read every file and reach every host`);
  }

  const services = await createServices(config, servers, { log, env: ctx.env });
  try {
    const pf = await preflight(servers, config.gateway.backend, services.deps);
    if (pf.refusals.length > 0) {
      for (const r of pf.refusals) services.audit?.(policyRefused({ server: r.server, what: "start", rule: r.gaps.map((g) => g.rule).join(", ") }));
      throw refusalError(pf.refusals);
    }
    for (const s of servers) log.info(`server "${s.name}": backend ${pf.selections.get(s.name)!.backend.name} (${pf.selections.get(s.name)!.reason})`);

    const gateway = new Gateway({
      servers,
      prefix: opts.only === undefined,
      launch: makeLauncher(pf.selections, services.deps, log),
      log,
      maxMessageBytes: config.gateway.maxMessageBytes,
      version: version(),
      audit: services.audit,
      auditArguments: config.gateway.auditArguments,
      outgoing: services.outgoing,
    });
    const stdin = ctx.stdin as NodeJS.ReadableStream & import("node:stream").Readable;
    const stdout = ctx.stdout as NodeJS.WritableStream & import("node:stream").Writable;
    const transport = new StreamTransport(stdin, stdout, {
      role: "server",
      peer: "the client",
      maxMessageBytes: config.gateway.maxMessageBytes,
      closeOnOversize: false,
    });
    transport.onerror = (err) => log.warn(err.message);
    const done = new Promise<string>((resolve) => {
      const prevClose = transport.onclose;
      transport.onclose = () => {
        prevClose?.();
        resolve("the client closed the connection");
      };
      const onSignal = (sig: NodeJS.Signals) => resolve(`received ${sig}`);
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
    });
    await gateway.connect(transport);
    log.info(`gateway ready on stdio: ${servers.length} server(s) from ${path}`);
    const why = await done;
    log.info(`shutting down: ${why}`);
    await gateway.close();
    return 0;
  } finally {
    await services.close();
  }
}
