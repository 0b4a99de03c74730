// The `unsandboxed` backend: a plain child process with a cleared environment.
// It enforces nothing but the environment, so it runs a server only when that
// server says `insecure_unsandboxed = true`; every rule it cannot keep is a gap.

import type { ServerSpec } from "../config/spec.js";
import type { Backend, Gap, LaunchContext, ProbeResult, Sandbox } from "./backend.js";
import { spawnSandbox } from "./process.js";
import { baseServerEnv } from "./env.js";

export class UnsandboxedBackend implements Backend {
  readonly name = "unsandboxed" as const;

  async probe(): Promise<ProbeResult> {
    return { available: true, reason: "runs servers as plain child processes (no isolation)", hints: [] };
  }

  async gaps(spec: ServerSpec): Promise<Gap[]> {
    const p = `servers.${spec.name}`;
    if (!spec.insecureUnsandboxed) {
      return [
        {
          rule: `${p}.backend`,
          message: `server "${spec.name}" would run without any sandbox`,
          hint: `choose a sandboxing backend, or set ${p}.insecure_unsandboxed = true if you accept that it can read every file and reach every host`,
        },
      ];
    }
    // With the explicit opt-in, the user has accepted that no path, network or
    // limit rule is enforced. A secret delivered as a file would need a private
    // tmpfs, which a plain process does not have: refuse rather than drop it.
    return spec.secrets
      .map((ref, i) => ({ ref, i }))
      .filter(({ ref }) => ref.as === "file")
      .map(({ ref, i }) => ({
        rule: `${p}.secrets[${i}]`,
        message: `secret "${ref.name}" is to be delivered as a file, which needs a sandbox's private tmpfs`,
        hint: `deliver it as an environment variable (as = "env"), or run server "${spec.name}" in a sandbox`,
      }));
  }

  async launch(spec: ServerSpec, ctx: LaunchContext): Promise<Sandbox> {
    const gaps = await this.gaps(spec);
    if (gaps.length > 0) throw new Error(gaps[0]!.message);
    if (spec.launch.argv.length === 0) throw new Error(`server "${spec.name}" has no resolved command`);
    const env: Record<string, string> = { ...baseServerEnv(), ...spec.launch.env };
    for (const [target, s] of ctx.secrets) if (s.as === "env") env[target] = s.value;
    return spawnSandbox({
      serverName: spec.name,
      backend: this.name,
      argv: spec.launch.argv,
      env,
      cwd: spec.launch.cwd ?? undefined,
      defaultGraceMs: spec.timeouts.shutdownGraceMs,
    });
  }
}
