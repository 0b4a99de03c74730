// Host side, pure: how a sandbox backend wraps a server with the agent — the
// argv prefix, the agent's environment and the sandbox's /etc/hosts that pins
// each exact allowed name to its own loopback address. Structural types only,
// so src/agent/ stays free of imports from the rest of the code.

import { AGENT_CONFIG_ENV, type AgentConfig, type PinnedTarget } from "./config.js";

/** The part of a ServerSpec this needs (ServerSpec is assignable to it). */
export interface AgentPlanSpec {
  readonly name: string;
  readonly network:
    | { readonly mode: "none" }
    | { readonly mode: "allowlist"; readonly hosts: readonly { readonly kind: string; readonly host: string; readonly ports: readonly number[] }[] };
}

/**
 * Where a sandbox sees the agent's pieces (the backend binds them there):
 * dist/agent read-only at agentDir, the project's package.json (ESM marker) at
 * packageJson, this server's proxy socket at socket, the plan's hostsFile at hosts.
 */
export const SANDBOX_AGENT_PATHS = {
  agentDir: "/run/nucleus/agent",
  agentEntry: "/run/nucleus/agent/main.js",
  packageJson: "/run/nucleus/package.json",
  socket: "/run/nucleus/egress.sock",
  hosts: "/etc/hosts",
} as const;

export interface AgentPlanOptions {
  /** Absolute path of dist/agent/main.js as seen inside the sandbox; default SANDBOX_AGENT_PATHS.agentEntry. */
  readonly agentEntry?: string;
  /** The proxy's unix socket as bound inside the sandbox; default SANDBOX_AGENT_PATHS.socket. */
  readonly socketPathInSandbox?: string;
  /** Node inside the sandbox; default: this process's node (bound read-only by the backend). */
  readonly nodePath?: string;
  /** Loopback port for HTTP/SOCKS proxy clients; default 3128. */
  readonly proxyPort?: number;
}

export interface AgentPlan {
  /** Put in front of the server's argv: [node, agentEntry, "--"]. */
  readonly argvPrefix: string[];
  /** Add to the sandbox's environment (the agent removes it before the server starts). */
  readonly env: Record<string, string>;
  /** Contents for the sandbox's /etc/hosts. */
  readonly hostsFile: string;
  readonly pins: readonly PinnedTarget[];
}

export const DEFAULT_AGENT_PROXY_PORT = 3128;

export function buildAgentPlan(spec: AgentPlanSpec, opts: AgentPlanOptions = {}): AgentPlan {
  if (spec.network.mode !== "allowlist") {
    throw new Error(`server "${spec.name}" has network = "none": it gets no egress agent, socket or proxy`);
  }
  // Every exact name gets one loopback address; each of its ports is pinned there.
  const addressOf = new Map<string, string>();
  const pins: PinnedTarget[] = [];
  for (const rule of spec.network.hosts) {
    if (rule.kind !== "name") continue;
    let address = addressOf.get(rule.host);
    if (!address) {
      const i = addressOf.size;
      if (i >= 254 * 254) break;
      address = `127.0.${1 + Math.floor(i / 254)}.${1 + (i % 254)}`;
      addressOf.set(rule.host, address);
    }
    for (const port of rule.ports) {
      if (!pins.some((p) => p.host === rule.host && p.port === port)) pins.push({ host: rule.host, port, address });
    }
  }
  const config: AgentConfig = {
    version: 1,
    socket: opts.socketPathInSandbox ?? SANDBOX_AGENT_PATHS.socket,
    proxy: { host: "127.0.0.1", port: opts.proxyPort ?? DEFAULT_AGENT_PROXY_PORT },
    pins,
  };
  const hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"];
  for (const [name, address] of addressOf) hosts.push(`${address}\t${name}`);
  return {
    argvPrefix: [opts.nodePath ?? process.execPath, opts.agentEntry ?? SANDBOX_AGENT_PATHS.agentEntry, "--"],
    env: { [AGENT_CONFIG_ENV]: JSON.stringify(config) },
    hostsFile: `${hosts.join("\n")}\n`,
    pins,
  };
}
