// The one interface every sandbox backend implements (bubblewrap, QEMU,
// Firecracker, and the explicit `unsandboxed` escape hatch). Backends accept
// only a resolved ServerSpec. Not responsible for choosing a backend (select.ts).

import type { Readable, Writable } from "node:stream";
import type { BackendName, ServerSpec } from "../config/spec.js";
import type { Logger } from "../log.js";
import type { EgressProxy } from "../egress/types.js";

export interface ProbeResult {
  readonly available: boolean;
  /** One sentence: why it is (not) available. */
  readonly reason: string;
  /** What to do to make it available. */
  readonly hints: readonly string[];
}

/** A rule of the spec this backend cannot guarantee. Any gap refuses the start (exit 3). */
export interface Gap {
  /** TOML path of the rule, e.g. `servers.github.memory_mib`. */
  readonly rule: string;
  readonly message: string;
  readonly hint: string;
}

export interface LaunchContext {
  /** Secret values for this server only, keyed by SecretRef.target. Never logged, never on argv. */
  readonly secrets: ReadonlyMap<string, { readonly value: string; readonly as: "env" | "file" }>;
  readonly log: Logger;
  /** Host unix socket of this server's egress proxy; null when network = "none". */
  readonly egressSocket: string | null;
  /**
   * Hands a listener made inside the sandbox (by its egress agent) to this server's egress
   * proxy, which then accepts on it directly (one relay instead of two). Absent: the agent relays.
   */
  readonly egressAdopt?: EgressProxy["adopt"];
  /** Fires when the gateway gives up on this start (the server was stopped meanwhile): a slow boot ends at once. */
  readonly signal?: AbortSignal;
}

export type ExitCause = "exited" | "signalled" | "oom" | "stopped" | "start-failed";

export interface SandboxExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly cause: ExitCause;
  /** A sentence: `server "fs" was killed with SIGKILL after a 5000 ms grace period`. */
  readonly message: string;
}

export interface Sandbox {
  readonly backend: BackendName;
  /** Bytes to the server's stdin. */
  readonly stdin: Writable;
  /** Bytes from the server's stdout (the MCP stream). */
  readonly stdout: Readable;
  /** The server's stderr (diagnostics); the gateway relays it into the log, redacted. */
  readonly stderr: Readable;
  /** Resolves once, when the sandbox is gone (process reaped, resources released). */
  readonly exited: Promise<SandboxExit>;
  /** EOF on stdin → SIGTERM → SIGKILL after the grace period; then releases everything. Idempotent. */
  stop(graceMs?: number): Promise<SandboxExit>;
  /** Backend facts for logs and `explain` (e.g. cgroup path, qemu pid). No secrets. */
  readonly details: Readonly<Record<string, string>>;
}

export interface Backend {
  readonly name: BackendName;
  probe(): Promise<ProbeResult>;
  gaps(spec: ServerSpec): Promise<Gap[]>;
  launch(spec: ServerSpec, ctx: LaunchContext): Promise<Sandbox>;
}
