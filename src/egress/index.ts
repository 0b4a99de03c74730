// Public surface of the egress proxy, for the gateway and the backends.
// Not responsible for anything itself.

export { startEgressProxy } from "./proxy.js";
export { systemResolver, dnsServerResolver, type EgressResolver } from "./resolver.js";
export { createEgressSocketDir, removeEgressSocketDir, egressSocketPath, SANDBOX_EGRESS_SOCKET } from "./socket-path.js";
export { DEFAULT_EGRESS_LIMITS, type EgressEvent, type EgressLimits, type EgressProxy, type EgressProxyOptions, type EgressStats } from "./types.js";
export { startServerEgress, type ServerEgressContext } from "./launch.js";
export { buildAgentPlan, SANDBOX_AGENT_PATHS, type AgentPlan, type AgentPlanOptions } from "../agent/plan.js";
