// Test helpers about host processes.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** Is a process still there? */
/** Whether `pid` runs (a zombie, dead but not yet reaped by its new parent, does not count). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] !== "Z";
  } catch {
    return false;
  }
}

/** A /proc file of `pid` (cmdline, comm, status, ...) as text; "" once the process is gone. */
export function procFile(pid: number, name: string): string {
  try {
    return readFileSync(`/proc/${pid}/${name}`, "latin1");
  } catch {
    return "";
  }
}

/** The pids on this host for which `test` holds. */
export function pidsWhere(test: (pid: number) => boolean): number[] {
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map(Number).filter(test);
}

/** Every process's command line on this host, one per line (what `ps` would show anyone). */
export function everyCmdline(): string {
  return pidsWhere(() => true).map((pid) => procFile(pid, "cmdline")).join("\n") + "\n";
}

/** The parent pid of `pid` (0 when it is gone). */
function parentOf(pid: number): number {
  try {
    return Number(/^PPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * Live QEMU processes descending from `root` (a QEMU sandbox's pid: setpriv/bwrap, then bwrap's own
 * processes, then QEMU), so that other sessions' VMs never count.
 */
export function qemuUnder(root: number): number[] {
  const found: number[] = [];
  for (const p of readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number)) {
    try {
      if (!readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0")[0]!.includes("qemu-system")) continue;
    } catch {
      continue; // gone
    }
    for (let q = parentOf(p); q > 1; q = parentOf(q)) {
      if (q === root) {
        found.push(p);
        break;
      }
    }
  }
  return found;
}

/** The socket inode behind fd `fd` of process `pid` ("self" for this one), or null for anything else. */
export function socketInode(pid: number | "self", fd: string | number): number | null {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The inodes of every socket process `pid` ("self" for this one) holds open. */
export function socketInodesOf(pid: number | "self"): Set<number> {
  const all = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const i = socketInode(pid, fd);
    if (i !== null) all.add(i);
  }
  return all;
}
