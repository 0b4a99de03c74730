// A short-lived lock file (`FILE.lock`, created with O_EXCL) held around each
// append, so several gateways may share one audit log without breaking its
// chain. Not responsible for what happens under the lock.

import { open, readFile, unlink } from "node:fs/promises";
import { NucleusError } from "../errors.js";

const POLL_MS = 5;

export async function withFileLock<T>(lockPath: string, timeoutMs: number, body: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      // SECURITY: O_EXCL does not follow a symlink planted at the lock path.
      const fh = await open(lockPath, "wx", 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (await staleLock(lockPath)) continue;
      if (Date.now() > deadline) {
        throw new NucleusError("INTERNAL", `the audit log lock ${lockPath} has been held by another process for more than ${timeoutMs} ms`, {
          hint: `If no nucleus process is running, remove ${lockPath}.`,
        });
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
  try {
    return await body();
  } finally {
    await unlink(lockPath).catch(() => undefined);
  }
}

/** Removes a lock whose owner process is gone; true when it did. */
async function staleLock(lockPath: string): Promise<boolean> {
  let pid: number;
  try {
    pid = Number((await readFile(lockPath, "utf8")).trim());
  } catch {
    return false; // released meanwhile, or being written: retry
  }
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") return false;
  }
  await unlink(lockPath).catch(() => undefined);
  return true;
}
