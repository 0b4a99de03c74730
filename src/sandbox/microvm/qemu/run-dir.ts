// Run dirs that earlier versions of the QEMU backend left in $TMPDIR: they held
// the control and console sockets QEMU connected to, and stayed behind when a
// gateway was killed outright. The backend makes none any more (the channels are
// inherited fds, see backend.ts); this module only removes the leftovers, and
// only those that are clearly ours and clearly stale. Not responsible for
// anything a running VM uses.

import { lstatSync, readdirSync, rmSync, type Stats } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Named after the owning gateway's pid, then mkdtemp's six characters. */
const RUN_DIR = /^nucleus-qemu-([1-9][0-9]{0,9})-[A-Za-z0-9]{6}$/;
/** The older naming, before the pid was in the name: the prefix, then mkdtemp's six characters. */
const LEGACY_RUN_DIR = /^nucleus-qemu-[A-Za-z0-9]{6}$/;
/** Everything such a dir ever held: the two sockets. */
const LEGACY_ENTRIES = new Set(["ctl.sock", "con.sock"]);
/** A dir of the older naming untouched for this long has no gateway left that could use it. */
export const LEGACY_MIN_AGE_MS = 24 * 60 * 60 * 1000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Whether `path` (already lstat'ed as `st`, a directory of this uid) looks exactly like a dir the old naming
 * made: private (0700, as mkdtemp makes it), nothing in it but our two sockets (each a socket by lstat), and
 * neither it nor anything in it modified within LEGACY_MIN_AGE_MS of `now`.
 */
function staleLegacyDir(path: string, st: Stats, now: number): boolean {
  if ((st.mode & 0o777) !== 0o700) return false;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) {
    if (!LEGACY_ENTRIES.has(name)) return false;
    const e = lstatSync(join(path, name));
    if (!e.isSocket()) return false;
    newest = Math.max(newest, e.mtimeMs);
  }
  return now - newest >= LEGACY_MIN_AGE_MS;
}

/**
 * Removes run dirs under `root` left by gateways that are gone. Only directories (never a symlink, never
 * followed) owned by this uid and named like ours count, and of those: a dir named after a pid, when that pid
 * is not a live process (a pid reused since keeps its dir — the safe side); a dir of the older naming (no
 * pid to ask), when it is 0700, holds nothing but `ctl.sock`/`con.sock` sockets and has not changed for a
 * day. Returns the paths removed.
 */
export function sweepStaleRunDirs(root: string = tmpdir(), isAlive: (pid: number) => boolean = alive, now: number = Date.now()): string[] {
  const uid = process.getuid?.();
  if (uid === undefined) return [];
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = RUN_DIR.exec(name);
    const legacy = !m && LEGACY_RUN_DIR.test(name);
    if (!m && !legacy) continue;
    if (m) {
      const pid = Number(m[1]);
      if (pid === process.pid || isAlive(pid)) continue;
    }
    const path = join(root, name);
    try {
      // SECURITY: lstat: a symlink (someone else's, pointing anywhere) is not a directory here and stays.
      const st = lstatSync(path);
      if (!st.isDirectory() || st.uid !== uid) continue;
      // SECURITY: without a pid in the name, only a dir that can be nothing but an old one of ours goes.
      if (legacy && !staleLegacyDir(path, st, now)) continue;
      // rm does not follow symlinks inside the tree either.
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      /* gone meanwhile, or not readable or removable: leave it */
    }
  }
  return removed;
}
