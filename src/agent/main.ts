// Entry point of the in-sandbox agent: `node main.js -- <server argv...>`.
// Starts the egress relays (proxy port, pinned names), then runs the server
// with stdio inherited and proxy variables set, and exits as the server does.
// Writes nothing to stdout: that is the server's MCP stream. No dependencies.

import { spawn } from "node:child_process";
import { AGENT_CONFIG_ENV, parseAgentConfig, proxyEnv, type AgentConfig } from "./config.js";
import { formatPinLine } from "./protocol.js";
import type { Server } from "node:net";
import { CHANNEL_ENV, handOver } from "./handover.js";
import { listenOn, relayFrom } from "./relay.js";

/** How long the agent waits for the gateway to adopt its listeners before relaying itself (longer than the gateway keeps the channel open). */
const HANDOVER_TIMEOUT_MS = 15_000;

const say = (msg: string) => process.stderr.write(`nucleus-agent: ${msg}\n`);

async function runAgent(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const sep = argv.indexOf("--");
  const serverArgv = sep >= 0 ? argv.slice(sep + 1) : [];
  if (serverArgv.length === 0) throw new Error("usage: main.js -- <server command...>");
  const cfg: AgentConfig = parseAgentConfig(env[AGENT_CONFIG_ENV]);
  const childEnv: Record<string, string> = {};
  const hidden = new Set<string>([AGENT_CONFIG_ENV, ...CHANNEL_ENV]);
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !hidden.has(k)) childEnv[k] = v;
  Object.assign(childEnv, proxyEnv(cfg));

  // The proxy port is essential; a pin that cannot listen only costs that shortcut.
  const listeners: Array<{ server: Server; pin: { host: string; port: number } | null; preamble: Buffer | null }> = [];
  listeners.push({ server: await listenOn(cfg.proxy.host, cfg.proxy.port), pin: null, preamble: null });
  for (const pin of cfg.pins) {
    try {
      listeners.push({ server: await listenOn(pin.address, pin.port), pin: { host: pin.host, port: pin.port }, preamble: formatPinLine(pin.host, pin.port) });
    } catch (err) {
      say(`cannot pin ${pin.host}:${pin.port} on ${pin.address}: ${(err as Error).message}; clients that honour proxy variables still reach it`);
    }
  }
  // Before the server starts: the gateway accepts on the listeners itself (one relay), or we relay.
  if (!(await handOver(listeners, HANDOVER_TIMEOUT_MS))) {
    for (const l of listeners) relayFrom(l.server, { socketPath: cfg.socket, preamble: l.preamble });
  }

  const [file, ...args] = serverArgv;
  const child = spawn(file!, args, { stdio: "inherit", env: childEnv });
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    });
  }
  child.once("error", (err) => {
    say(`could not start ${file}: ${err.message}`);
    process.exit(127);
  });
  child.once("exit", (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
      setTimeout(() => process.exit(128 + 15), 100).unref();
    } else process.exit(code ?? 1);
  });
}

runAgent(process.argv.slice(2), process.env).catch((err: Error) => {
  say(err.message);
  process.exit(1);
});
