// Builds the host-side services one gateway session uses: backend selection,
// the secret redactor (installed on the logger), the audit log, secret and
// package resolution, and the egress proxies (egress-service.ts). Not responsible for MCP traffic.

import { AuditLog } from "../audit/audit-log.js";
import { auditDropped, type AuditEvent } from "../audit/events.js";
import type { NucleusConfig, ServerSpec } from "../config/spec.js";
import { refused } from "../errors.js";
import type { Logger } from "../log.js";
import { resolvePackageSpec } from "../packages/npm.js";
import type { Backend } from "../sandbox/backend.js";
import { BubblewrapBackend } from "../sandbox/bubblewrap/backend.js";
import { FirecrackerBackend, QemuBackend } from "../sandbox/microvm/index.js";
import { selectBackend } from "../sandbox/select.js";
import { UnsandboxedBackend } from "../sandbox/unsandboxed.js";
import { SecretRedactor } from "../secrets/redactor.js";
import { resolveServerSecrets } from "../secrets/resolve.js";
import { createEgressService, type EgressServiceOptions } from "./egress-service.js";
import type { RuntimeDeps } from "./runtime.js";
import { Throttle } from "../throttle.js";

export interface Services {
  readonly deps: RuntimeDeps;
  readonly redactor: SecretRedactor;
  readonly audit: ((event: AuditEvent) => void) | undefined;
  /** Redaction of everything a server sends towards the client (unless redact_results = false). */
  readonly outgoing: <T>(server: string, value: T) => T;
  /** A reloaded config: its secrets and servers are used from now on (the audit log stays). */
  update(config: NucleusConfig, servers: readonly ServerSpec[]): void;
  close(): Promise<void>;
}

/** Most audit records waiting to be written; past it they are counted, not queued. */
export const MAX_PENDING_AUDIT = 10_000;

/** The "records behind" warning is printed at most once per this many ms, with a count. */
export const AUDIT_BEHIND_WARN_MS = 10_000;

/**
 * The audit sink: appends in order, but never queues without bound. A server
 * that floods events (thousands of refused connections a second) gets them
 * counted and written as one `audit.dropped` record once the queue drains,
 * so the gateway's memory stays bounded and the gap is on the record. The
 * warning about it is printed at most once per 10 s, with what was counted since.
 */
export function boundedAudit(
  auditLog: Pick<AuditLog, "append">,
  log: Logger,
  maxPending = MAX_PENDING_AUDIT,
  now: () => number = Date.now,
): (event: AuditEvent) => void {
  let pending = 0;
  let dropped = 0;
  const warnings = new Throttle(AUDIT_BEHIND_WARN_MS, now);
  const write = (event: AuditEvent) => {
    pending++;
    auditLog
      .append(event)
      .catch((err: Error) => log.error(`could not write the audit log: ${err.message}`))
      .finally(() => pending--);
  };
  return (event) => {
    if (pending >= maxPending) {
      dropped++;
      const held = warnings.pass();
      if (held !== null) {
        log.warn(
          `the audit log is ${maxPending} records behind; further records are counted, not written, until it catches up (${held + 1} counted since the last such warning)`,
        );
      }
      return;
    }
    if (dropped > 0) {
      write(auditDropped({ count: dropped }));
      dropped = 0;
    }
    write(event);
  };
}

/** Every backend built into this gateway; selection picks among them per server. */
export function defaultBackends(runAs: { uid: number; gid: number } | null = null): Backend[] {
  return [new FirecrackerBackend(runAs ? { runAs } : {}), new QemuBackend(runAs ? { runAs } : {}), new BubblewrapBackend(runAs ? { runAs } : {}), new UnsandboxedBackend()];
}

export async function createServices(
  config: NucleusConfig,
  servers: readonly ServerSpec[],
  opts: { log: Logger; env: NodeJS.ProcessEnv; egress?: EgressServiceOptions },
): Promise<Services> {
  const { log, env } = opts;
  const redactor = new SecretRedactor();
  // SECURITY: every line the gateway logs passes through the redactor.
  log.setRedactor(redactor.fn);
  const auditLog = config.gateway.auditLog
    ? new AuditLog(config.gateway.auditLog, { maxBytes: config.gateway.auditMaxBytes, redact: (f) => redactor.redactJson(f) })
    : null;
  const audit = auditLog ? boundedAudit(auditLog, log) : undefined;
  // Replaced on config reload (update()).
  let secretSpecs = config.secrets;
  let byName = new Map(servers.map((s) => [s.name, s]));
  if (config.gateway.runAs && process.getuid?.() !== 0) {
    throw refused(
      `[gateway] run_as = "${config.gateway.runAs.user}" needs a gateway started as root (to switch to that user)`,
      "remove run_as: a gateway run by an ordinary user already runs its sandboxes as that user",
    );
  }
  // SECURITY: fail at start when the log cannot be used, rather than run servers whose every record is lost.
  await auditLog?.open();
  const backends = defaultBackends(config.gateway.runAs);
  // Egress decisions go to the same audit log; refusals are also logged once per destination at warn.
  const egress = createEgressService({ log, audit, ...opts.egress });
  const deps: RuntimeDeps = {
    select: (spec, gatewayChoice) => selectBackend(spec, gatewayChoice, backends),
    resolveSecrets: (spec) => resolveServerSecrets(spec, secretSpecs, env, { redactor }),
    resolvePackage: (spec, signal) => (spec.launch.package ? resolvePackageSpec(spec, { log, signal }) : Promise.resolve(spec)),
    startEgress: (spec) => egress.start(spec),
  };
  return {
    deps,
    redactor,
    audit,
    outgoing: <T>(server: string, value: T): T => (byName.get(server)?.redactResults === false ? value : redactor.redactJson(value)),
    update(next: NucleusConfig, nextServers: readonly ServerSpec[]) {
      if (next.gateway.auditLog !== config.gateway.auditLog) log.warn("[gateway] audit_log changed: it takes effect when the gateway restarts");
      secretSpecs = next.secrets;
      byName = new Map(nextServers.map((s) => [s.name, s]));
    },
    async close() {
      await egress.close();
      await auditLog?.close();
    },
  };
}
