// The one pure function that turns a ServerSpec plus host facts into a bwrap
// argv and the data bwrap reads from inherited fds (seccomp program, generated
// /etc files, secrets). Snapshot-tested: this argv is security code.
// Not responsible for spawning, cgroups, or finding host facts (host.ts).

import { posix } from "node:path";
import { baseServerEnv } from "../env.js";
import type { AgentPlan } from "../../agent/plan.js";
import { SANDBOX_AGENT_PATHS } from "../../agent/plan.js";
import type { ServerSpec } from "../../config/spec.js";
import { buildSeccompFilter } from "../seccomp/filter.js";
import type { SeccompArch } from "../seccomp/syscalls.js";
import {
  EGRESS_SOCKET, ENV_FILE, LAUNCHER_SCRIPT, RUN_DIR, SANDBOX_HOME, SECRET_FILE_DIR,
  renderEnvFile, renderGroup, renderHosts, renderPasswd, validSecretTarget,
} from "./etc-files.js";

export type RuntimeEntry =
  | { readonly path: string; readonly kind: "dir" }
  | { readonly path: string; readonly kind: "symlink"; readonly target: string };

/** What the builder needs to know about the host, gathered by host.ts. */
export interface HostFacts {
  readonly bwrap: string;
  readonly arch: SeccompArch;
  /** Top-level runtime: /usr as a dir; /bin, /lib... as dirs or merged-/usr symlinks. */
  readonly runtime: readonly RuntimeEntry[];
  /** Read-only /etc entries that exist on this host (dynamic linker cache, CA certificates). */
  readonly etc: readonly string[];
  /** realpath of launch.argv[0]. */
  readonly interpreter: string;
  /** realpath of /bin/sh (runs the launcher when env secrets are delivered). */
  readonly shell: string;
  /** /proc files that exist on this kernel and are masked with /dev/null (see PROC_MASKS in host.ts). */
  readonly procMasks: readonly string[];
}

/** The egress path of an allowlist server: its proxy socket and the agent that relays to it (docs/egress.md). */
export interface EgressMount {
  /** Host unix socket of this server's egress proxy; bound at SANDBOX_AGENT_PATHS.socket. */
  readonly socket: string;
  /** Host directory of the built agent (dist/agent); bound read-only at SANDBOX_AGENT_PATHS.agentDir. */
  readonly agentDir: string;
  /** Host package.json marking the agent's .js files as ESM; bound read-only at SANDBOX_AGENT_PATHS.packageJson. */
  readonly packageJson: string;
  /** buildAgentPlan(spec): argvPrefix[0] is the host path of node (bound read-only), env holds no secret. */
  readonly plan: Pick<AgentPlan, "argvPrefix" | "env" | "hostsFile" | "pins">;
}

export interface BuildInput {
  readonly spec: ServerSpec;
  readonly host: HostFacts;
  /** Secret values by target; they only ever reach `fdData`, never `argv`. */
  readonly secrets: ReadonlyMap<string, { readonly value: string; readonly as: "env" | "file" }>;
  /** Required exactly when spec.network is an allowlist; null for network = "none" (no agent, no socket). */
  readonly egress: EgressMount | null;
  /** Identity inside the sandbox. */
  readonly uid?: number;
  readonly gid?: number;
}

export interface BwrapPlan {
  readonly argv: string[];
  /** fdData[i] is written to fd 3 + i of bwrap, then closed. May hold secrets: never log it. */
  readonly fdData: Buffer[];
  readonly hostname: string;
}

const MiB = 1024 * 1024;
const FD_BASE = 3;

export function sandboxHostname(name: string): string {
  const clean = name.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
  return `nucleus-${clean || "server"}`.slice(0, 63);
}

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith("/") ? dir : `${dir}/`);
}

export function buildBwrapPlan(input: BuildInput): BwrapPlan {
  const { spec, host } = input;
  const uid = input.uid ?? 1000;
  const gid = input.gid ?? 1000;
  const argv0 = spec.launch.argv[0];
  if (!argv0 || !posix.isAbsolute(argv0)) throw new Error(`server "${spec.name}" has no absolute command to run`);
  const hostname = sandboxHostname(spec.name);
  const egress = input.egress;
  // SECURITY: fail closed: an allowlist without its proxy would otherwise run with no way to enforce it, and a
  // network = "none" server must never get a socket out.
  if (spec.network.mode === "allowlist" && !egress) throw new Error(`server "${spec.name}" has an egress allowlist but no egress proxy socket`);
  if (spec.network.mode === "none" && egress) throw new Error(`server "${spec.name}" has network = "none" and must not get an egress path`);
  const fdData: Buffer[] = [];
  const fd = (data: string | Buffer): string => {
    fdData.push(typeof data === "string" ? Buffer.from(data) : data);
    return String(FD_BASE + fdData.length - 1);
  };
  const tmpBytes = String(spec.limits.tmpMiB * MiB);
  const a: string[] = [host.bwrap];

  // SECURITY: new user, mount, pid, net, ipc, uts and cgroup namespaces; --unshare-user explicitly so that
  // --disable-userns (no nested user namespaces, the usual first step of a kernel exploit) is accepted.
  a.push("--unshare-all", "--unshare-user", "--disable-userns");
  // SECURITY: the sandbox dies with the gateway (no orphaned servers after a crash).
  a.push("--die-with-parent");
  // SECURITY: setsid, so no controlling terminal to push input into (TIOCSTI, CVE-2017-5226).
  a.push("--new-session");
  // SECURITY: no capabilities at all, even inside the namespaces (bwrap also sets NO_NEW_PRIVS).
  a.push("--cap-drop", "ALL");
  a.push("--uid", String(uid), "--gid", String(gid), "--hostname", hostname);
  // SECURITY: nothing of the gateway's environment (other servers' secrets) is inherited.
  a.push("--clearenv");
  const env: Record<string, string> = {
    ...baseServerEnv(SANDBOX_HOME),
    TMPDIR: "/tmp",
    USER: "nucleus",
    ...spec.launch.env,
    // The agent's configuration (socket path, proxy port, pinned names: no secret); the agent removes it.
    ...egress?.plan.env,
  };
  for (const [k, v] of Object.entries(env)) a.push("--setenv", k, v);

  // Read-only runtime: /usr and the merged-/usr links (or real lib dirs on older layouts).
  for (const r of host.runtime) {
    if (r.kind === "symlink") a.push("--symlink", r.target, r.path);
    else a.push("--ro-bind", r.path, r.path);
  }
  const covered = (p: string) => host.runtime.some((r) => r.kind === "dir" && under(p, r.path));
  // SECURITY: a fresh procfs for the new pid namespace: no other process (gateway, other servers) is visible.
  a.push("--proc", "/proc");
  // SECURITY: a minimal /dev (null, zero, full, random, urandom, tty, pts, shm); no /dev/mem, no disks.
  a.push("--dev", "/dev");
  // SECURITY: bwrap's /dev is an unbounded writable tmpfs: POSIX shared memory gets its own bounded tmpfs,
  // and /dev itself is made read-only below (device nodes stay usable).
  a.push("--size", tmpBytes, "--tmpfs", "/dev/shm");
  // SECURITY: private, size-bounded /tmp and home, so filling them cannot exhaust host memory or disk.
  a.push("--size", tmpBytes, "--tmpfs", "/tmp");
  a.push("--size", tmpBytes, "--tmpfs", SANDBOX_HOME);
  // SECURITY: a generated passwd/group/hosts instead of the host's (no host user names, no resolv.conf).
  a.push("--ro-bind-data", fd(renderPasswd(uid, gid)), "/etc/passwd");
  a.push("--ro-bind-data", fd(renderGroup(gid)), "/etc/group");
  // In allowlist mode /etc/hosts also pins each exact allowed name to the agent's relay on 127.0.1.N.
  const hosts = egress ? `${egress.plan.hostsFile}127.0.0.1\t${hostname}\n` : renderHosts(hostname);
  a.push("--ro-bind-data", fd(hosts), SANDBOX_AGENT_PATHS.hosts);
  for (const e of host.etc) a.push("--ro-bind", e, e);
  // The interpreter's real location, when it is not already inside the runtime.
  if (!covered(host.interpreter)) a.push("--ro-bind", host.interpreter, host.interpreter);
  // The server's own code (read-only) and its allowed paths, at the same paths, in one list ordered
  // parents first, so no bind hides a nested one; at an equal path a code dir comes last (read-only wins).
  const binds: Array<{ path: string; writable: boolean; code: boolean }> = [];
  const agentNode = egress?.plan.argvPrefix[0];
  if (egress && (!agentNode || !posix.isAbsolute(agentNode))) throw new Error(`server "${spec.name}": the egress agent needs an absolute node path`);
  // The agent's node, when it lives outside the runtime and is not the server's own interpreter.
  if (agentNode && agentNode !== host.interpreter && !covered(agentNode)) binds.push({ path: agentNode, writable: false, code: true });
  for (const d of spec.launch.codeDirs) {
    // SECURITY: a code dir exposes its neighbours; `/` would expose the whole host.
    if (!posix.isAbsolute(d) || posix.normalize(d) === "/") throw new Error(`server "${spec.name}" has code dir "${d}", which must be an absolute path other than /`);
    if (!covered(d)) binds.push({ path: d, writable: false, code: true });
  }
  for (const g of spec.paths) binds.push({ path: g.path, writable: g.writable, code: false });
  binds.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : Number(x.code) - Number(y.code)));
  // SECURITY: read-only unless the policy grants write.
  for (const b of binds) a.push(b.writable ? "--bind" : "--ro-bind", b.path, b.path);

  const envSecrets = [...input.secrets].filter(([, s]) => s.as === "env");
  const fileSecrets = [...input.secrets].filter(([, s]) => s.as === "file");
  for (const [t, s] of input.secrets) {
    if (!validSecretTarget(t, s.as)) throw new Error(`secret target "${t}" cannot be delivered as ${s.as === "env" ? "an environment variable" : "a file name"}`);
  }
  if (envSecrets.length > 0 || egress) a.push("--size", String(MiB), "--tmpfs", RUN_DIR);
  if (envSecrets.length > 0) {
    // SECURITY: env secret values travel through an fd into a 0400 file that the launcher reads and deletes;
    // they never appear on any argv (bwrap's or the server's) where `ps` could show them.
    a.push("--perms", "0400", "--file", fd(renderEnvFile(envSecrets.map(([t, s]) => [t, s.value] as const))), ENV_FILE);
  }
  if (fileSecrets.length > 0) {
    a.push("--size", String(MiB), "--tmpfs", SECRET_FILE_DIR);
    for (const [t, s] of fileSecrets) a.push("--perms", "0400", "--file", fd(s.value), `${SECRET_FILE_DIR}/${t}`);
  }
  if (egress) {
    // SECURITY: the only way out in allowlist mode is this one socket to this server's own egress proxy
    // (read-only bind: still connectable, but cannot be replaced or removed from inside).
    a.push("--ro-bind", egress.socket, EGRESS_SOCKET);
    // The agent's code and its ESM marker, read-only; the agent is a convenience, not a boundary.
    a.push("--ro-bind", egress.agentDir, SANDBOX_AGENT_PATHS.agentDir);
    a.push("--ro-bind", egress.packageJson, SANDBOX_AGENT_PATHS.packageJson);
  }
  // SECURITY: the sandbox root (a tmpfs holding the mount points) becomes read-only too.
  a.push("--remount-ro", "/");
  a.push("--remount-ro", "/dev");
  // SECURITY: kernel-wide information a root-mapped uid could read (key descriptions, timers of host
  // processes, slab and page statistics that help exploits) is masked, as container runtimes do.
  for (const m of host.procMasks) a.push("--ro-bind", "/dev/null", m);
  // SECURITY: /proc read-only. When the gateway runs as root, the sandbox uid maps to host uid 0: without
  // capabilities, but sysctl files check only the uid, so /proc/sys (core_pattern!) would be writable.
  a.push("--remount-ro", "/proc");
  // SECURITY: the seccomp deny-list (see seccomp/filter.ts). AF_INET/AF_INET6 only in allowlist mode, where the
  // agent listens on loopback; the netns still has loopback only (--unshare-all), so nothing leaves but the socket.
  a.push("--seccomp", fd(buildSeccompFilter({ arch: host.arch, allowInet: egress !== null })));
  a.push("--chdir", spec.launch.cwd ?? SANDBOX_HOME);
  a.push("--");
  if (envSecrets.length > 0) a.push(host.shell, "-c", LAUNCHER_SCRIPT, "nucleus-launch", ENV_FILE);
  if (egress) a.push(...egress.plan.argvPrefix);
  a.push(argv0 === host.interpreter || covered(argv0) ? argv0 : host.interpreter, ...spec.launch.argv.slice(1));
  return { argv: a, fdData, hostname };
}
