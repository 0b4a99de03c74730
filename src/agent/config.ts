// The agent's configuration: what the host tells the in-sandbox agent (where
// the proxy socket is, which loopback port to listen on, which names to pin).
// Travels as JSON in one environment variable, which the agent removes before
// starting the server. Holds no secret. No imports: runs inside the sandbox.

export const AGENT_CONFIG_ENV = "NUCLEUS_AGENT_CONFIG";

export interface PinnedTarget {
  /** The allowed name, exactly as the rule has it. */
  readonly host: string;
  readonly port: number;
  /** Loopback address inside the sandbox that /etc/hosts maps the name to (127.0.1.N). */
  readonly address: string;
}

export interface AgentConfig {
  readonly version: 1;
  /** The egress proxy's unix socket as seen inside the sandbox. */
  readonly socket: string;
  /** Where HTTP/SOCKS proxy clients connect inside the sandbox. */
  readonly proxy: { readonly host: string; readonly port: number };
  readonly pins: readonly PinnedTarget[];
}

export function parseAgentConfig(text: string | undefined): AgentConfig {
  if (!text) throw new Error(`the agent needs its configuration in ${AGENT_CONFIG_ENV}`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${AGENT_CONFIG_ENV} is not valid JSON`);
  }
  const c = v as Partial<AgentConfig>;
  const isPort = (p: unknown) => typeof p === "number" && Number.isInteger(p) && p > 0 && p < 65536;
  const isLoopback = (a: unknown) => typeof a === "string" && /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
  if (c.version !== 1) throw new Error(`${AGENT_CONFIG_ENV}.version must be 1`);
  if (typeof c.socket !== "string" || !c.socket.startsWith("/")) throw new Error(`${AGENT_CONFIG_ENV}.socket must be an absolute path`);
  if (!c.proxy || !isLoopback(c.proxy.host) || !isPort(c.proxy.port)) throw new Error(`${AGENT_CONFIG_ENV}.proxy must be a loopback host and a port`);
  if (!Array.isArray(c.pins)) throw new Error(`${AGENT_CONFIG_ENV}.pins must be a list`);
  for (const p of c.pins) {
    if (!p || typeof p.host !== "string" || !/^[a-z0-9._-]{1,253}$/.test(p.host) || !isPort(p.port) || !isLoopback(p.address)) {
      throw new Error(`${AGENT_CONFIG_ENV}.pins has an invalid entry: ${JSON.stringify(p).slice(0, 200)}`);
    }
  }
  return c as AgentConfig;
}

/** The environment the server gets on top of its own: every common proxy variable. */
export function proxyEnv(cfg: AgentConfig): Record<string, string> {
  const url = `http://${cfg.proxy.host}:${cfg.proxy.port}`;
  const env: Record<string, string> = {};
  for (const name of ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]) {
    env[name] = url;
    env[name.toLowerCase()] = url;
  }
  env.NO_PROXY = "localhost,127.0.0.1";
  env.no_proxy = env.NO_PROXY;
  return env;
}
