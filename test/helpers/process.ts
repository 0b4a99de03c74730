// Test helpers about host processes.
import { readdirSync, readFileSync } from "node:fs";

/** Is a process still there? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every process's command line on this host, one per line (what `ps` would show anyone). */
export function everyCmdline(): string {
  let all = "";
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      all += readFileSync(`/proc/${pid}/cmdline`, "utf8") + "\n";
    } catch {
      /* gone */
    }
  }
  return all;
}
