// The public entry of the `nucleus-mcp` package: what a program embedding
// Nucleus needs (load a config, build the services, run a gateway on a
// transport) and the types it speaks. The CLI (src/cli/) is built on these.

export type {
  BackendChoice,
  BackendName,
  GatewaySpec,
  HostRule,
  HttpSpec,
  NetworkPolicy,
  NucleusConfig,
  PathGrant,
  ResourceLimits,
  SecretRef,
  SecretSpec,
  ServerSpec,
} from "./config/spec.js";
export { loadConfig, checkConfig } from "./config/load.js";
export { discoverConfig } from "./config/discover.js";
export { parseHostRule, describeHostRule } from "./policy/hosts.js";
export { toolVisible } from "./policy/tools.js";

export type { Backend, Gap, LaunchContext, ProbeResult, Sandbox, SandboxExit } from "./sandbox/backend.js";
export { BubblewrapBackend } from "./sandbox/bubblewrap/backend.js";
export { QemuBackend, FirecrackerBackend } from "./sandbox/microvm/index.js";
export { UnsandboxedBackend } from "./sandbox/unsandboxed.js";
export { selectBackend } from "./sandbox/select.js";

export { Gateway, type GatewayOptions } from "./gateway/gateway.js";
export { createServices, defaultBackends, type Services } from "./gateway/services.js";
export { preflight, makeLauncher, refusalError } from "./gateway/runtime.js";
export { StreamTransport } from "./gateway/stream-transport.js";
export { startHttpGateway } from "./gateway/http/server.js";

export { AuditLog } from "./audit/audit-log.js";
export { verifyAuditLog } from "./audit/verify.js";
export { SecretRedactor } from "./secrets/redactor.js";

export { NucleusError, ExitCode } from "./errors.js";
export { Logger, type LogLevel, type LogFormat } from "./log.js";
