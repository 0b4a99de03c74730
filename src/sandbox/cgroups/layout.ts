// Works out, from /proc/self/mountinfo and /proc/self/cgroup, where this
// process may create child cgroups for the memory, pids and cpu controllers:
// cgroup v2 where a controller is available there, v1 hierarchies otherwise
// (hybrid hosts). Pure parsing and planning; no I/O (see manager.ts).

import { posix } from "node:path";

export type Controller = "memory" | "pids" | "cpu";
export const CONTROLLERS: readonly Controller[] = ["memory", "pids", "cpu"];

export interface MountEntry {
  readonly mountPoint: string;
  readonly root: string;
  readonly fsType: string;
  readonly superOptions: readonly string[];
}

/** Parse /proc/self/mountinfo (fields per proc(5); the optional fields end at "-"). */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const parts = line.trim().split(" ");
    const dash = parts.indexOf("-");
    if (dash < 6 || parts.length < dash + 4) continue;
    const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({
      root: unescape(parts[3]!),
      mountPoint: unescape(parts[4]!),
      fsType: parts[dash + 1]!,
      superOptions: parts[dash + 3]!.split(","),
    });
  }
  return out;
}

export interface ProcCgroup {
  /** The cgroup2 path ("0::/path"), or null. */
  readonly unified: string | null;
  /** v1 hierarchies: controller → path. */
  readonly v1: ReadonlyMap<string, string>;
}

export function parseProcCgroup(text: string): ProcCgroup {
  let unified: string | null = null;
  const v1 = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === "0" && m[2] === "") unified = m[3]!;
    else for (const c of m[2]!.split(",")) if (c) v1.set(c, m[3]!);
  }
  return { unified, v1 };
}

/** Where one controller's child cgroups go. */
export interface ControllerPlace {
  readonly version: 1 | 2;
  /** Absolute host directory of the parent cgroup (this process's own cgroup, or an override). */
  readonly parent: string;
}

export interface CgroupLayout {
  readonly places: Readonly<Partial<Record<Controller, ControllerPlace>>>;
  /** Why a controller has no place (for doctor/explain). */
  readonly missing: Readonly<Partial<Record<Controller, string>>>;
}

/** Translate a cgroup path into a directory under a mount of that hierarchy (the mount's root may be a sub-cgroup). */
function dirFor(mount: MountEntry, cgPath: string): string | null {
  const root = mount.root === "/" ? "" : mount.root;
  if (root && !(cgPath === root || cgPath.startsWith(`${root}/`))) return null;
  const dir = posix.join(mount.mountPoint, cgPath.slice(root.length) || "/");
  return dir.length > 1 && dir.endsWith("/") ? dir.slice(0, -1) : dir;
}

/**
 * Pick a place per controller. `v2Controllers(dir)` returns the content of
 * `dir/cgroup.controllers` (null if unreadable). v2 wins where it offers the
 * controller; otherwise the v1 hierarchy mounted for it.
 */
export function detectLayout(mountinfo: string, procCgroup: string, v2Controllers: (dir: string) => string | null): CgroupLayout {
  const mounts = parseMountinfo(mountinfo);
  const own = parseProcCgroup(procCgroup);
  const places: Partial<Record<Controller, ControllerPlace>> = {};
  const missing: Partial<Record<Controller, string>> = {};
  const v2Mount = mounts.find((m) => m.fsType === "cgroup2");
  const v2Dir = v2Mount && own.unified !== null ? dirFor(v2Mount, own.unified) : null;
  const v2Available = new Set((v2Dir ? v2Controllers(v2Dir) ?? "" : "").trim().split(/\s+/).filter(Boolean));
  for (const c of CONTROLLERS) {
    if (v2Dir && v2Available.has(c)) {
      places[c] = { version: 2, parent: v2Dir };
      continue;
    }
    const m = mounts.find((x) => x.fsType === "cgroup" && x.superOptions.includes(c));
    const path = own.v1.get(c);
    const dir = m && path !== undefined ? dirFor(m, path) : null;
    if (dir) places[c] = { version: 1, parent: dir };
    else missing[c] = v2Dir ? `the ${c} controller is not enabled in cgroup v2 at ${v2Dir} and no v1 hierarchy has it` : `no cgroup hierarchy offers the ${c} controller`;
  }
  return { places, missing };
}

export interface LimitValues {
  readonly memoryMiB: number;
  readonly pids: number;
  readonly cpus: number;
}

export interface PlannedWrite {
  readonly controller: Controller;
  readonly file: string;
  readonly value: string;
  /** A write that may fail without weakening the limit's core (e.g. swap accounting is off). */
  readonly optional: boolean;
}

const CPU_PERIOD_US = 100_000;

/** The files to write in a controller's leaf directory for the given limits. */
export function limitWrites(version: 1 | 2, c: Controller, limits: LimitValues): PlannedWrite[] {
  const w = (file: string, value: string, optional = false): PlannedWrite => ({ controller: c, file, value, optional });
  const bytes = String(Math.floor(limits.memoryMiB * 1024 * 1024));
  const quota = String(Math.max(1000, Math.round(limits.cpus * CPU_PERIOD_US)));
  if (version === 2) {
    if (c === "memory") return [w("memory.max", bytes), w("memory.swap.max", "0", true)];
    if (c === "pids") return [w("pids.max", String(limits.pids))];
    return [w("cpu.max", `${quota} ${CPU_PERIOD_US}`)];
  }
  if (c === "memory") return [w("memory.limit_in_bytes", bytes), w("memory.memsw.limit_in_bytes", bytes, true)];
  if (c === "pids") return [w("pids.max", String(limits.pids))];
  return [w("cpu.cfs_period_us", String(CPU_PERIOD_US)), w("cpu.cfs_quota_us", quota)];
}

/** Leaf cgroup name: carries the owning gateway's pid so a later gateway can remove leftovers. */
export function leafName(ownerPid: number, serverName: string, unique: string): string {
  const clean = serverName.toLowerCase().replace(/[^a-z0-9-]+/g, "-").slice(0, 40);
  return `nucleus-${ownerPid}-${clean}-${unique}`;
}

/** The owner pid of a leaf created by leafName, or null for foreign names. */
export function leafOwner(name: string): number | null {
  const m = /^nucleus-(\d+)-/.exec(name);
  return m ? Number(m[1]) : null;
}

/** `oom_kill N` from memory.events (v2) or memory.oom_control (v1). */
export function parseOomKills(text: string): number {
  const m = /^oom_kill\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * cgroup v2 forbids enabling a controller for children of a cgroup that holds
 * processes, and the gateway's own cgroup usually does (a systemd scope with
 * the shell in it). So the v2 controllers move to the nearest cgroup, from the
 * gateway's own one up to the mount root, that already enables all of them for
 * its children and that this user may create children in. They must share one
 * directory: a process is in exactly one v2 cgroup. Without such a cgroup the
 * own one stays (the probe then reports why it fails).
 */
export function preferDelegatedV2(
  layout: CgroupLayout,
  mountRoot: string,
  subtreeControl: (dir: string) => string | null,
  writable: (dir: string) => boolean,
): CgroupLayout {
  const v2 = CONTROLLERS.filter((c) => layout.places[c]?.version === 2);
  const start = v2.length > 0 ? layout.places[v2[0]!]!.parent : null;
  if (!start) return layout;
  for (let dir = start; dir.startsWith(mountRoot); dir = posix.dirname(dir)) {
    const enabled = (subtreeControl(dir) ?? "").split(/\s+/);
    if (v2.every((c) => enabled.includes(c)) && writable(dir)) {
      const places: Partial<Record<Controller, ControllerPlace>> = { ...layout.places };
      for (const c of v2) places[c] = { version: 2, parent: dir };
      return { places, missing: layout.missing };
    }
    if (dir === mountRoot || dir === "/") break;
  }
  return layout;
}
