// Turns a loaded config into running pieces: chooses each server's backend,
// refuses (fail closed) every server whose rules its backend cannot enforce,
// and builds the Launcher the gateway uses (package install, secrets, egress
// proxy, backend launch). Not responsible for MCP traffic (gateway.ts).

import type { BackendChoice, ServerSpec } from "../config/spec.js";
import { NucleusError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Backend, Gap, LaunchContext, Sandbox } from "../sandbox/backend.js";
import type { Launcher } from "./upstream.js";

export interface Selection {
  readonly backend: Backend;
  /** A sentence: why this backend (for the start log and `explain`). */
  readonly reason: string;
}

export interface EgressHandle {
  readonly socketPath: string;
  /** See LaunchContext.egressAdopt. */
  readonly adopt?: LaunchContext["egressAdopt"];
  close(): Promise<void>;
}

export interface RuntimeDeps {
  readonly select: (spec: ServerSpec, gatewayChoice: BackendChoice) => Promise<Selection>;
  /** Secret values for one server (LaunchContext.secrets); throws SECRET_UNAVAILABLE naming the secret, never a value. */
  readonly resolveSecrets: (spec: ServerSpec) => Promise<LaunchContext["secrets"]>;
  /** Fills in launch.argv for `package` servers (installing the package once); identity for others. */
  readonly resolvePackage: (spec: ServerSpec, signal?: AbortSignal) => Promise<ServerSpec>;
  /** Starts this server's egress proxy when its network is an allowlist. */
  readonly startEgress?: (spec: ServerSpec) => Promise<EgressHandle>;
}

export interface Preflight {
  readonly selections: ReadonlyMap<string, Selection>;
  readonly refusals: ReadonlyArray<{ server: string; gaps: readonly Gap[] }>;
}

/** Choose a backend for every server and collect every rule that cannot be enforced. */
export async function preflight(servers: readonly ServerSpec[], gatewayChoice: BackendChoice, deps: RuntimeDeps): Promise<Preflight> {
  const selections = new Map<string, Selection>();
  const refusals: Array<{ server: string; gaps: Gap[] }> = [];
  for (const spec of servers) {
    let selection: Selection;
    try {
      selection = await deps.select(spec, gatewayChoice);
    } catch (err) {
      const msg = err instanceof NucleusError ? err.message : (err as Error).message;
      const hint = err instanceof NucleusError && err.hint ? err.hint : "run `nucleus doctor` to see which backends work here";
      refusals.push({ server: spec.name, gaps: [{ rule: `servers.${spec.name}.backend`, message: msg, hint }] });
      continue;
    }
    selections.set(spec.name, selection);
    const gaps = await selection.backend.gaps(spec);
    if (gaps.length > 0) refusals.push({ server: spec.name, gaps });
  }
  return { selections, refusals };
}

/** The exit-3 error for refusals: every rule, what it is, and what to do. */
export function refusalError(refusals: Preflight["refusals"]): NucleusError {
  const lines = refusals.flatMap((r) => r.gaps.map((g) => `  ${g.rule}: ${g.message}\n    Hint: ${g.hint}`));
  const names = refusals.map((r) => `"${r.server}"`).join(", ");
  return new NucleusError("POLICY_REFUSED", `refusing to start ${names}: a rule cannot be enforced\n${lines.join("\n")}`);
}

/** The launcher for the gateway: everything that happens between "start server X" and a running Sandbox. */
export function makeLauncher(selections: ReadonlyMap<string, Selection>, deps: RuntimeDeps, log: Logger): Launcher {
  return async (spec: ServerSpec, signal: AbortSignal): Promise<Sandbox> => {
    const selection = selections.get(spec.name);
    if (!selection) throw new NucleusError("POLICY_REFUSED", `server "${spec.name}" has no backend`, { hint: "run `nucleus check`" });
    const resolved = await deps.resolvePackage(spec, signal);
    signal.throwIfAborted();
    const secrets = await deps.resolveSecrets(resolved);
    signal.throwIfAborted();
    let egress: EgressHandle | null = null;
    if (resolved.network.mode === "allowlist") {
      if (!deps.startEgress) {
        throw new NucleusError("POLICY_REFUSED", `server "${spec.name}" has an egress allowlist but no egress proxy is available`, {
          hint: `set servers.${spec.name}.network = "none" or remove allowed_hosts`,
        });
      }
      egress = await deps.startEgress(resolved);
    }
    const slog = log.child({ server: spec.name });
    try {
      const sandbox = await selection.backend.launch(resolved, { secrets, log: slog, egressSocket: egress?.socketPath ?? null, signal, ...(egress?.adopt ? { egressAdopt: egress.adopt } : {}) });
      if (egress) {
        const e = egress;
        void sandbox.exited.finally(() => e.close().catch(() => undefined));
      }
      return sandbox;
    } catch (err) {
      await egress?.close().catch(() => undefined);
      throw err;
    }
  };
}
