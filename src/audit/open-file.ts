// Opens an audit file for appending without trusting what sits at its path:
// no symlink is followed, no FIFO blocks the gateway, and only a regular file
// owned by the gateway's user is accepted, before anything (chmod) touches it.
// Not responsible for the records in it (audit-log.ts, tail-read.ts).

import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { NucleusError } from "../errors.js";

const { O_RDWR, O_APPEND, O_CREAT, O_NOFOLLOW, O_NONBLOCK, O_RDONLY } = constants;

/** Read-write (the chain's end is read through the same descriptor), appending, created 0600. */
export async function openForAppend(path: string): Promise<FileHandle> {
  // SECURITY: O_NOFOLLOW: a symlink planted at the path is refused (ELOOP), not followed to its target;
  // O_NONBLOCK: a FIFO fails (ENXIO) instead of hanging the gateway; 0600: only the gateway's user reads it.
  const fh = await open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o600).catch((err: NodeJS.ErrnoException) => {
    throw unusable(path, err.code === "ELOOP" ? "it is a symbolic link" : err.code === "ENXIO" ? "it is not a regular file" : (err.message ?? String(err)), err);
  });
  try {
    await checkFile(fh, path);
    const st = await fh.stat();
    // SECURITY: only after the checks: a chmod never reaches a file that is not the gateway's own.
    if ((st.mode & 0o077) !== 0) await fh.chmod(0o600);
    return fh;
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/** Read-only, for a rotated file; null when it does not exist. */
export async function openForRead(path: string): Promise<FileHandle | null> {
  try {
    const fh = await open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    try {
      await checkFile(fh, path);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    return fh;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ELOOP") throw unusable(path, "it is a symbolic link", err);
    throw err;
  }
}

async function checkFile(fh: FileHandle, path: string): Promise<void> {
  const st = await fh.stat();
  if (!st.isFile()) throw unusable(path, "it is not a regular file");
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw unusable(path, `it is owned by uid ${st.uid}, not by the gateway's user (uid ${uid})`);
  // A second name for the file (a hard link) would keep the log readable or writable elsewhere.
  if (st.nlink > 1) throw unusable(path, `it has ${st.nlink} names (hard links)`);
}

function unusable(path: string, why: string, cause?: unknown): NucleusError {
  return new NucleusError("CONFIG_INVALID", `the audit log ${path} cannot be opened for appending: ${why}`, {
    hint: "Point [gateway] audit_log at a regular file of the gateway's user (or a path that does not exist yet) in a directory only that user can write.",
    ...(cause === undefined ? {} : { cause }),
  });
}
