// The bubblewrap backend: probes bwrap, reports gaps, and launches a server
// with the argv from argv.ts inside per-server cgroups, reporting OOM kills.
// Not responsible for the argv's content (argv.ts) or cgroup layout (cgroups/).

import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildAgentPlan } from "../../agent/plan.js";
import type { ServerSpec } from "../../config/spec.js";
import { refused } from "../../errors.js";
import type { Backend, Gap, LaunchContext, ProbeResult, Sandbox } from "../backend.js";
import { spawnSandbox } from "../process.js";
import type { CgroupLayout, Controller } from "../cgroups/layout.js";
import { CgroupLeaf, hostLayout, probeControllers, sweepStaleCgroups, type ControllerStatus, type PlaceOverrides, type SweepResult } from "../cgroups/manager.js";
import { runAsPrefix, type RunAs } from "../run-as.js";
import { seccompArchOf } from "../seccomp/syscalls.js";
import { buildBwrapPlan, type EgressMount } from "./argv.js";
import { limitEnforcement, limitGaps, type LimitEnforcement } from "./enforcement.js";
import { collectHostFacts, findBwrap } from "./host.js";
import { inheritedFds } from "../host-fds.js";
import type { ChildProcess } from "node:child_process";
import { receiveListeners } from "./egress-handover.js";
import { findLowPortTools, lowerThenRelease, lowestPrivilegedPort, UNPRIVILEGED_PORT_START } from "./low-ports.js";

export interface BubblewrapOptions {
  /** Path of bwrap; default: found on PATH. */
  readonly bwrapPath?: string;
  /** cgroup parents delegated by an administrator, per controller (e.g. for a non-root gateway). */
  readonly cgroupParents?: PlaceOverrides;
  /**
   * Host identity the sandboxes run as when the gateway is root (e.g. a dedicated system user), so that the
   * sandbox uid maps to that user instead of host uid 0. Needs /usr/bin/setpriv (util-linux). Default: the
   * gateway's own uid. Granted paths must then be accessible to this user.
   */
  readonly runAs?: RunAs;
  /**
   * The built egress agent (allowlist servers only): its directory (holding main.js) and the package.json that
   * marks it as ESM. Default: dist/agent and package.json of this package.
   */
  readonly agent?: { readonly dir: string; readonly packageJson: string };
}

/** The package root: this file is src/sandbox/bubblewrap/backend.ts or dist/sandbox/bubblewrap/backend.js. */
const PACKAGE_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** Where the built agent of this package lives (`npm run build` writes dist/agent/). */
export function defaultAgentLocation(): { dir: string; packageJson: string } {
  return { dir: join(PACKAGE_ROOT, "dist", "agent"), packageJson: join(PACKAGE_ROOT, "package.json") };
}

/**
 * Joins the cgroups named by its arguments (up to "--"), then execs the rest:
 * the process enters the cgroups before bwrap forks anything. Constant text.
 */
const CGROUP_JOIN_SCRIPT = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';

export class BubblewrapBackend implements Backend {
  readonly name = "bubblewrap" as const;
  private readonly bwrap: string | null;
  private layoutCache: CgroupLayout | null = null;
  private controllersCache: Record<Controller, ControllerStatus> | null = null;
  private probeCache: Promise<ProbeResult> | null = null;
  private warnedFds = false;

  constructor(private readonly opts: BubblewrapOptions = {}) {
    this.bwrap = opts.bwrapPath ?? findBwrap();
  }

  private layout(): CgroupLayout {
    return (this.layoutCache ??= hostLayout(this.opts.cgroupParents ?? {}));
  }

  /** Which cgroup controllers this gateway can use (probed once by creating a child cgroup). */
  controllers(): Record<Controller, ControllerStatus> {
    return (this.controllersCache ??= probeControllers(this.layout()));
  }

  /** Clean up cgroups left by gateways that were killed: kill what is left in them, remove them. */
  sweepStale(): SweepResult {
    return sweepStaleCgroups(this.layout());
  }

  /** Probed once per backend object (it spawns bwrap). */
  probe(): Promise<ProbeResult> {
    return (this.probeCache ??= this.probeNow());
  }

  private async probeNow(): Promise<ProbeResult> {
    if (!this.bwrap) {
      return { available: false, reason: "bwrap (bubblewrap) is not installed", hints: ["install it: apt-get install bubblewrap (or run scripts/setup.sh as root)"] };
    }
    if (!seccompArchOf(process.arch)) {
      return { available: false, reason: `no seccomp filter exists for ${process.arch}`, hints: ["use an x86_64 or aarch64 host"] };
    }
    const r = spawnSync(this.bwrap, ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--", "/usr/bin/true"], { encoding: "utf8", timeout: 10_000, env: {} });
    if (r.status !== 0) {
      const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split("\n")[0];
      return {
        available: false,
        reason: `bwrap cannot create namespaces here: ${why}`,
        hints: ["enable unprivileged user namespaces: sysctl -w kernel.unprivileged_userns_clone=1 (Debian) or user.max_user_namespaces=15000", "on Ubuntu 24.04+, allow bwrap in AppArmor (kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile for bwrap)"],
      };
    }
    return { available: true, reason: `${this.bwrap} creates user, mount, pid and network namespaces`, hints: [] };
  }

  /** setpriv prefix that drops to `runAs` after the cgroups are joined (joining may need root). */
  private dropTo(): string[] {
    return runAsPrefix(this.opts.runAs);
  }

  private agentLocation(): { dir: string; packageJson: string } {
    return this.opts.agent ?? defaultAgentLocation();
  }

  /** The egress path of an allowlist server (null for network = "none"); refuses an allowlist without a proxy. */
  private egressMount(spec: ServerSpec, ctx: LaunchContext): EgressMount | null {
    if (spec.network.mode !== "allowlist") return null;
    // SECURITY: fail closed: without its proxy an allowlist cannot be enforced, so the server does not start.
    if (!ctx.egressSocket) {
      throw refused(`server "${spec.name}" has an egress allowlist, but the gateway gave no egress proxy socket for it`, `start it through \`nucleus serve\` or \`nucleus run\` (which run the egress proxy), or set servers.${spec.name}.network = "none"`);
    }
    const r = this.opts.runAs;
    if (r) {
      // SECURITY: bwrap runs as the runAs user and must reach the socket to bind it. That user gets this one
      // socket (0600, its own server's proxy); the gateway's socket directory becomes traversable (0711) but
      // not listable, and every other socket in it stays 0600 to its own owner.
      chownSync(ctx.egressSocket, r.uid, r.gid);
      chmodSync(dirname(ctx.egressSocket), 0o711);
    }
    const agent = this.agentLocation();
    return { socket: ctx.egressSocket, agentDir: agent.dir, packageJson: agent.packageJson, plan: buildAgentPlan(spec, { nodePath: realpathSync(process.execPath) }) };
  }

  /** How each resource limit of `spec` is (or is not) enforced on this host; for `explain` and `doctor`. */
  enforcement(spec: ServerSpec): LimitEnforcement[] {
    return limitEnforcement(spec, this.controllers());
  }

  async gaps(spec: ServerSpec): Promise<Gap[]> {
    const p = `servers.${spec.name}`;
    const gaps: Gap[] = [];
    if (!seccompArchOf(process.arch)) {
      gaps.push({ rule: `${p}.backend`, message: `bubblewrap has no seccomp filter for ${process.arch}`, hint: "use an x86_64 or aarch64 host, or a microVM backend" });
    }
    if (spec.network.mode === "allowlist") {
      const agent = this.agentLocation();
      if (!existsSync(join(agent.dir, "main.js")) || !existsSync(agent.packageJson)) {
        gaps.push({
          rule: `${p}.allowed_hosts`,
          message: `server "${spec.name}" has an egress allowlist, which needs the egress agent, and it is not built at ${agent.dir}`,
          hint: `run \`npm run build\` in the nucleus package (it writes dist/agent/), or set ${p}.network = "none"`,
        });
      }
    }
    gaps.push(...limitGaps(spec, this.enforcement(spec)));
    return gaps;
  }

  async launch(spec: ServerSpec, ctx: LaunchContext): Promise<Sandbox> {
    const gaps = await this.gaps(spec);
    if (gaps.length > 0) throw refused(gaps.map((g) => g.message).join("; "), gaps[0]!.hint);
    if (!this.bwrap) throw refused("bwrap (bubblewrap) is not installed", "install it: apt-get install bubblewrap");
    const drop = this.dropTo();
    const argv0 = spec.launch.argv[0];
    if (!argv0) throw new Error(`server "${spec.name}" has no resolved command`);
    const host = collectHostFacts(argv0, this.bwrap);
    const egress = this.egressMount(spec, ctx);
    const plan = buildBwrapPlan({ spec, host, secrets: ctx.secrets, egress });
    // The agent hands its listeners to the proxy over Node's IPC channel, the fd after the data fds.
    const handover = egress && ctx.egressAdopt ? { fd: 3 + plan.fdData.length, adopt: ctx.egressAdopt, pins: egress.plan.pins } : null;
    // Pins below 1024: bwrap holds the sandbox until its network namespace admits them (low-ports.ts).
    const lowPort = egress ? lowestPrivilegedPort(egress.plan.pins) : null;
    const tools = lowPort !== null ? findLowPortTools() : null;
    if (lowPort !== null && !tools) ctx.log.warn(`egress: pins below port ${UNPRIVILEGED_PORT_START} cannot listen in server "${spec.name}"'s sandbox: perl is missing`, { hint: "install perl (apt-get install perl-base)" });
    const hold = lowPort !== null && tools ? { infoFd: 3 + plan.fdData.length + (handover ? 1 : 0), port: lowPort, tools } : null;
    let bwrapArgv = handover ? withChannelEnv(plan.argv, handover.fd) : plan.argv;
    if (hold) bwrapArgv = [bwrapArgv[0]!, "--info-fd", String(hold.infoFd), "--block-fd", String(hold.infoFd + 1), ...bwrapArgv.slice(1)];

    const layout = this.layout();
    const swept = sweepStaleCgroups(layout);
    for (const gone of swept.removed) ctx.log.debug("removed a cgroup left by a gateway that died", { cgroup: gone });
    if (swept.killed.length > 0) ctx.log.warn("killed processes left in cgroups of gateways that died (sandboxes that outlived their gateway)", { pids: swept.killed.join(",") });
    const controllers = this.controllers();
    const usable = (Object.keys(controllers) as Controller[]).filter((c) => controllers[c].usable);
    const leaf = usable.length > 0
      ? CgroupLeaf.create(layout, spec.name, { memoryMiB: spec.limits.memoryMiB, pids: spec.limits.pids, cpus: spec.limits.cpus }, usable)
      : null;
    for (const e of this.enforcement(spec)) {
      if (!e.enforced) ctx.log.warn(`default ${e.limit} limit (${e.value}) is not enforced`, { server: spec.name, reason: e.detail });
    }
    const leaked = inheritedFds();
    if (leaked.length > 0 && !this.warnedFds) {
      this.warnedFds = true;
      ctx.log.warn("the gateway inherited open file descriptors without close-on-exec; every sandbox inherits them too", { fds: leaked.join(","), hint: "start nucleus with only stdin, stdout and stderr open" });
    }
    const argv = [...(leaf ? [host.shell, "-c", CGROUP_JOIN_SCRIPT, "nucleus-cgroup", ...leaf.procsFiles, "--"] : []), ...drop, ...bwrapArgv];
    const details: Record<string, string> = { hostname: plan.hostname, seccomp: host.arch };
    if (this.opts.runAs) details.runAs = `${this.opts.runAs.uid}:${this.opts.runAs.gid}`;
    if (leaf) for (const [c, d] of leaf.dirs) details[`cgroup.${c}`] = d;
    try {
      return await spawnSandbox({
        serverName: spec.name,
        backend: this.name,
        argv,
        env: {},
        extraStdio: [...plan.fdData.map(() => "pipe" as const), ...(handover ? (["ipc"] as const) : []), ...(hold ? (["pipe", "pipe"] as const) : [])],
        extraInput: plan.fdData,
        onSpawn: (child: ChildProcess) => {
          if (handover) receiveListeners(child, handover.pins, handover.adopt, ctx.log);
          if (hold) void lowerThenRelease(child, { infoFd: hold.infoFd, blockFd: hold.infoFd + 1, port: hold.port, tools: hold.tools, prefix: drop, server: spec.name, log: ctx.log });
        },
        defaultGraceMs: spec.timeouts.shutdownGraceMs,
        details,
        cleanup: async (exit) => {
          if (!leaf) return;
          const oom = leaf.oomKills();
          await leaf.destroy();
          if (oom > 0 && exit.cause !== "stopped") {
            return { cause: "oom" as const, message: `server "${spec.name}" was killed by the kernel's OOM killer at its ${spec.limits.memoryMiB} MiB memory limit` };
          }
        },
      });
    } catch (err) {
      await leaf?.destroy();
      throw err;
    }
  }
}

/** bwrap's argv with Node's IPC channel named in the sandbox's environment (right after --clearenv). */
function withChannelEnv(argv: readonly string[], fd: number): string[] {
  const at = argv.indexOf("--clearenv");
  if (at < 0) throw new Error("the bwrap argv has no --clearenv");
  return [...argv.slice(0, at + 1), "--setenv", "NODE_CHANNEL_FD", String(fd), "--setenv", "NODE_CHANNEL_SERIALIZATION_MODE", "json", ...argv.slice(at + 1)];
}
