// Test helper: a complete ServerSpec with safe defaults, for backend-level tests.
import type { ServerSpec } from "../../src/config/spec.js";

export function makeSpec(overrides: Partial<ServerSpec> & { name: string; argv: string[] }): ServerSpec {
  const { argv, ...rest } = overrides;
  const spec: ServerSpec = {
    profile: null,
    backend: "auto",
    launch: { argv, args: [], package: null, cwd: null, env: {}, codeDirs: [] },
    paths: [],
    network: { mode: "none" },
    secrets: [],
    limits: { memoryMiB: 512, cpus: 1, pids: 256, tmpMiB: 64, explicit: { memory: false, cpus: false, pids: false } },
    tools: { allow: [], deny: [] },
    timeouts: { startupMs: 30_000, requestMs: 60_000, shutdownGraceMs: 2_000 },
    lazy: false,
    insecureUnsandboxed: false,
    redactResults: true,
    ...rest,
  };
  return Object.freeze(spec);
}
