// Entry point of the in-sandbox agent: `node main.js -- <server argv...>`.
// Starts the egress relays (proxy port, pinned names), then runs the server
// with stdio inherited and proxy variables set, and exits as the server does.
// Writes nothing to stdout: that is the server's MCP stream. No dependencies.

import { spawn } from "node:child_process";
import { AGENT_CONFIG_ENV, parseAgentConfig, proxyEnv, type AgentConfig } from "./config.js";
import { formatPinLine } from "./protocol.js";
import { startRelay } from "./relay.js";

const say = (msg: string) => process.stderr.write(`nucleus-agent: ${msg}\n`);

async function runAgent(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const sep = argv.indexOf("--");
  const serverArgv = sep >= 0 ? argv.slice(sep + 1) : [];
  if (serverArgv.length === 0) throw new Error("usage: main.js -- <server command...>");
  const cfg: AgentConfig = parseAgentConfig(env[AGENT_CONFIG_ENV]);
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && k !== AGENT_CONFIG_ENV) childEnv[k] = v;
  Object.assign(childEnv, proxyEnv(cfg));

  // The proxy port is essential; a pin that cannot listen only costs that shortcut.
  await startRelay({ host: cfg.proxy.host, port: cfg.proxy.port, socketPath: cfg.socket, preamble: null });
  for (const pin of cfg.pins) {
    try {
      await startRelay({ host: pin.address, port: pin.port, socketPath: cfg.socket, preamble: formatPinLine(pin.host, pin.port) });
    } catch (err) {
      say(`cannot pin ${pin.host}:${pin.port} on ${pin.address}: ${(err as Error).message}; clients that honour proxy variables still reach it`);
    }
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
