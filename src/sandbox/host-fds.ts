// File descriptors the gateway inherited without close-on-exec. Every child
// inherits them — sandboxed servers included (bwrap 0.8 cannot close them, and
// Node's spawn does not either) — so a gateway started by a shell, an IDE or a
// supervisor that leaked a socket or a file would hand it to every server.
// The CLI closes them before starting anything (closeInheritedFds); the
// bubblewrap backend still checks (inheritedFds) as a backstop.

import { closeSync, readFileSync, readdirSync } from "node:fs";

const O_CLOEXEC = 0o2000000;

/** fds above 2 that this process holds without close-on-exec. */
export function inheritedFds(): number[] {
  const out: number[] = [];
  let fds: string[];
  try {
    fds = readdirSync("/proc/self/fd");
  } catch {
    return out;
  }
  for (const fd of fds.map(Number).filter((n) => n > 2)) {
    try {
      const flags = /^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))?.[1];
      if (flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0) out.push(fd);
    } catch {
      /* closed meanwhile (e.g. the fd readdir itself used) */
    }
  }
  return out;
}

let closedAtStart: readonly number[] = [];

/**
 * Closes every inherited fd above 2 except Node's own IPC channel (when a
 * parent forked us on purpose), and returns those closed. Only for the process
 * entry (src/cli/run-main.ts), before anything of ours is open: everything Node
 * and libuv open themselves is close-on-exec, so what is left was inherited.
 * Never call it inside another program (a test runner's own channel may lack
 * close-on-exec).
 */
export function closeInheritedFds(): number[] {
  const channel = (process as { channel?: { fd?: unknown } }).channel;
  const keep = typeof channel?.fd === "number" ? channel.fd : -1;
  const closed: number[] = [];
  for (const fd of inheritedFds()) {
    if (fd === keep) continue;
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {
      /* already gone */
    }
  }
  closedAtStart = closed;
  return closed;
}

/** What closeInheritedFds closed at start-up (for the gateway's log). */
export function fdsClosedAtStart(): readonly number[] {
  return closedAtStart;
}
