// A short-lived lock file (`FILE.lock`, created with O_EXCL) held around each
// append, so several gateways may share one audit log without breaking its
// chain. A lock left by a dead process is broken under a second O_EXCL lock
// (`FILE.lock.break`). Not responsible for what happens under the lock.

import { open, readFile, unlink } from "node:fs/promises";
import { NucleusError } from "../errors.js";

const POLL_MS = 5;

export async function withFileLock<T>(lockPath: string, timeoutMs: number, body: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await createLockFile(lockPath)) break;
    if (await breakStaleLock(lockPath)) continue;
    if (Date.now() > deadline) {
      throw new NucleusError("INTERNAL", `the audit log lock ${lockPath} has been held by another process for more than ${timeoutMs} ms`, {
        hint: `If no nucleus process is running, remove ${lockPath} (and ${lockPath}.break if it exists).`,
      });
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  try {
    return await body();
  } finally {
    await unlink(lockPath).catch(() => undefined);
  }
}

/** Creates `path` holding our pid; false when it exists already. */
async function createLockFile(path: string): Promise<boolean> {
  try {
    // SECURITY: O_EXCL does not follow a symlink planted at the lock path.
    const fh = await open(path, "wx", 0o600);
    try {
      await fh.writeFile(String(process.pid));
    } finally {
      await fh.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return false;
  }
}

/** The pid written in a lock file; null when it is gone, being written, or not a pid of another process. */
async function lockOwner(path: string): Promise<number | null> {
  let pid: number;
  try {
    pid = Number((await readFile(path, "utf8")).trim());
  } catch {
    return null;
  }
  return Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid ? pid : null;
}

function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/**
 * Removes a lock whose owner process is gone; true when it did. Only the
 * holder of `LOCK.break` may remove it, and it reads the owner again inside:
 * two processes that both saw the dead owner cannot both remove a lock (the
 * second would otherwise delete the fresh lock the first one took meanwhile).
 */
async function breakStaleLock(lockPath: string): Promise<boolean> {
  const seen = await lockOwner(lockPath);
  if (seen === null || !isGone(seen)) return false;
  const breakPath = `${lockPath}.break`;
  // Another process is breaking it: wait for the lock like everyone else.
  if (!(await createLockFile(breakPath))) return false;
  try {
    // SECURITY: re-read under the break lock; the name may by now hold a live writer's new lock.
    if ((await lockOwner(lockPath)) !== seen) return false;
    await unlink(lockPath).catch(() => undefined);
    return true;
  } finally {
    await unlink(breakPath).catch(() => undefined);
  }
}
