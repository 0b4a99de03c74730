// Creates, fills and removes the per-server cgroups (v2 or v1 per controller,
// as layout.ts decided), reads OOM kills, and removes leftovers of gateways
// that died. Thin I/O over layout.ts; not responsible for choosing limits.

import { randomBytes } from "node:crypto";
import { accessSync, constants, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from "node:fs";
import { posix } from "node:path";
import {
  CONTROLLERS, detectLayout, leafName, leafOwner, limitWrites, parseMountinfo, parseOomKills, preferDelegatedV2,
  type CgroupLayout, type Controller, type ControllerPlace, type LimitValues,
} from "./layout.js";

export type PlaceOverrides = Partial<Record<Controller, ControllerPlace>>;

function readOrNull(p: string): string | null {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return null;
  }
}

/** This host's layout, with optional parents delegated by an administrator (e.g. for a non-root user). */
export function hostLayout(overrides: PlaceOverrides = {}): CgroupLayout {
  const base = detectLayout(readOrNull("/proc/self/mountinfo") ?? "", readOrNull("/proc/self/cgroup") ?? "", (d) =>
    readOrNull(posix.join(d, "cgroup.controllers")),
  );
  const v2Root = parseMountinfo(readOrNull("/proc/self/mountinfo") ?? "").find((m) => m.fsType === "cgroup2")?.mountPoint ?? "/sys/fs/cgroup";
  const writable = (d: string) => {
    try {
      accessSync(d, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  };
  const delegated = preferDelegatedV2(base, v2Root, (d) => readOrNull(posix.join(d, "cgroup.subtree_control")), writable);
  const places = { ...delegated.places, ...overrides };
  const missing = { ...base.missing };
  for (const c of Object.keys(overrides) as Controller[]) delete missing[c];
  return { places, missing };
}

export interface ControllerStatus {
  readonly usable: boolean;
  /** A sentence: where limits go, or why they cannot. */
  readonly detail: string;
}

function enableV2(parent: string, c: Controller): void {
  const active = (readOrNull(posix.join(parent, "cgroup.subtree_control")) ?? "").split(/\s+/);
  if (!active.includes(c)) writeFileSync(posix.join(parent, "cgroup.subtree_control"), `+${c}`);
}

/** Try, for each controller, to create (and remove) a child cgroup: the only reliable test of permission. */
export function probeControllers(layout: CgroupLayout): Record<Controller, ControllerStatus> {
  const out = {} as Record<Controller, ControllerStatus>;
  for (const c of CONTROLLERS) {
    const place = layout.places[c];
    if (!place) {
      out[c] = { usable: false, detail: layout.missing[c] ?? `no cgroup hierarchy offers the ${c} controller` };
      continue;
    }
    const dir = posix.join(place.parent, `nucleus-probe-${process.pid}-${randomBytes(3).toString("hex")}`);
    try {
      if (place.version === 2) enableV2(place.parent, c);
      mkdirSync(dir);
      rmdirSync(dir);
      out[c] = { usable: true, detail: `cgroup v${place.version} under ${place.parent}` };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      out[c] = { usable: false, detail: `cannot create a ${c} cgroup under ${place.parent} (${code}; cgroup v${place.version})` };
    }
  }
  return out;
}

/** One server's cgroups: a leaf per distinct parent directory. */
export class CgroupLeaf {
  private constructor(
    readonly dirs: ReadonlyMap<Controller, string>,
    private readonly versions: ReadonlyMap<Controller, 1 | 2>,
  ) {}

  /** Create leaves for `controllers` and write the limits; throws (after undoing) if a required write fails. */
  static create(layout: CgroupLayout, serverName: string, limits: LimitValues, controllers: readonly Controller[]): CgroupLeaf {
    const name = leafName(process.pid, serverName, randomBytes(4).toString("hex"));
    const dirs = new Map<Controller, string>();
    const versions = new Map<Controller, 1 | 2>();
    const leaf = new CgroupLeaf(dirs, versions);
    try {
      for (const c of controllers) {
        const place = layout.places[c];
        if (!place) throw new Error(`no cgroup place for the ${c} controller`);
        const dir = posix.join(place.parent, name);
        if (place.version === 2) enableV2(place.parent, c);
        if (![...dirs.values()].includes(dir)) mkdirSync(dir);
        dirs.set(c, dir);
        versions.set(c, place.version);
        for (const w of limitWrites(place.version, c, limits)) {
          try {
            writeFileSync(posix.join(dir, w.file), w.value);
          } catch (err) {
            if (!w.optional) throw new Error(`could not write ${w.file} in ${dir}: ${(err as Error).message}`);
          }
        }
      }
    } catch (err) {
      leaf.removeNow();
      throw err;
    }
    return leaf;
  }

  /** The cgroup.procs files a new process must join (one per distinct directory). */
  get procsFiles(): string[] {
    return [...new Set(this.dirs.values())].map((d) => posix.join(d, "cgroup.procs"));
  }

  /** How many times the kernel OOM-killed a process in this server's memory cgroup. */
  oomKills(): number {
    const dir = this.dirs.get("memory");
    if (!dir) return 0;
    const file = this.versions.get("memory") === 2 ? "memory.events" : "memory.oom_control";
    return parseOomKills(readOrNull(posix.join(dir, file)) ?? "");
  }

  private pids(): number[] {
    const pids = new Set<number>();
    for (const f of this.procsFiles) for (const l of (readOrNull(f) ?? "").split("\n")) if (l.trim()) pids.add(Number(l));
    return [...pids];
  }

  private removeNow(): boolean {
    let all = true;
    for (const d of new Set(this.dirs.values())) {
      try {
        rmdirSync(d);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") all = false;
      }
    }
    return all;
  }

  /** Kill whatever is left inside, then remove the directories (retrying while the kernel reaps). */
  async destroy(timeoutMs = 5000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
      if (this.removeNow()) return;
      if (Date.now() > until) throw new Error(`could not remove cgroups ${[...new Set(this.dirs.values())].join(", ")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface SweepResult {
  /** Leaves removed. */
  readonly removed: string[];
  /** Processes killed in leaves of gateways that no longer run. */
  readonly killed: number[];
}

/**
 * SIGKILL what is left in a dead gateway's leaf: a sandbox that outlived its gateway. bwrap's --die-with-parent
 * takes effect only once its setup is done, so a gateway killed while bwrap held a sandbox (low-port pins, see
 * bubblewrap/low-ports.ts) or was still setting it up leaves one behind. Its leaf names it ours.
 */
function killLeft(dir: string): number[] {
  try {
    writeFileSync(posix.join(dir, "cgroup.kill"), "1"); // cgroup v2 (Linux ≥ 5.14): the whole leaf at once
  } catch {
    /* v1, or an older kernel: one by one below */
  }
  const pids = (readOrNull(posix.join(dir, "cgroup.procs")) ?? "").split("\n").filter((l) => /^\d+$/.test(l)).map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone already */
    }
  }
  return pids;
}

/**
 * Clean up leaves left by gateways that no longer run (a SIGKILLed gateway cannot): kill what is still in them,
 * remove the empty ones. A leaf whose processes are still dying goes at a later sweep.
 */
export function sweepStaleCgroups(layout: CgroupLayout): SweepResult {
  const removed: string[] = [];
  const killed = new Set<number>();
  for (const parent of new Set(Object.values(layout.places).map((p) => p.parent))) {
    let names: string[];
    try {
      names = readdirSync(parent);
    } catch {
      continue;
    }
    for (const n of names) {
      const owner = leafOwner(n);
      if (owner === null || owner === process.pid || alive(owner)) continue;
      const dir = posix.join(parent, n);
      for (const pid of killLeft(dir)) killed.add(pid);
      try {
        rmdirSync(dir);
        removed.push(dir);
      } catch {
        /* still busy or not ours to remove */
      }
    }
  }
  return { removed, killed: [...killed] };
}
