// Checking a guest image's files before a launch trusts them: each is a regular
// file (never a link), owned by this process's uid, not writable by group/other,
// of the recorded size and SHA-256. A digest is remembered per process by the
// file's identity (dev, inode, size, mtime, ctime), so a launch does not rehash
// 100+ MiB each time. Not responsible for finding images (store.ts).

import { createHash } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";

/** SHA-256 (hex) of an open file's bytes from its start; injectable so tests can count hashing. */
export type FileHasher = (file: FileHandle) => Promise<string>;

export const sha256Handle: FileHasher = async (file) => {
  const h = createHash("sha256");
  for await (const chunk of file.createReadStream({ start: 0, autoClose: false })) h.update(chunk as Buffer);
  return h.digest("hex");
};

/** SHA-256 (hex) of the file at `path`. */
export async function sha256File(path: string): Promise<string> {
  const file = await open(path, "r");
  try {
    return await sha256Handle(file);
  } finally {
    await file.close();
  }
}

export interface FileDigest {
  readonly size: number;
  readonly sha256: string;
}

/** Identity of a file's bytes as this process saw them hashed; any write changes ctime. */
function identity(st: Stats): string {
  return [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs].join(":");
}

// Per-process memo: file identity → digest it had. Only ever a cache of work done, never a source of trust.
const verified = new Map<string, string>();

/** Why `st` cannot be trusted as an image file or dir (a link, someone else's, writable by others), or null. */
export function ownershipProblem(st: Stats, what: string, kind: "file" | "dir"): string | null {
  if (st.isSymbolicLink()) return `${what} is a symbolic link`;
  if (kind === "file" ? !st.isFile() : !st.isDirectory()) return `${what} is not a ${kind === "file" ? "regular file" : "directory"}`;
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) return `${what} is owned by uid ${st.uid}, not by this gateway's uid ${uid}`;
  if ((st.mode & 0o022) !== 0) return `${what} is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`;
  return null;
}

/** Why the file at `path` does not match `want`, or null when it does (hashing only what this process has not seen). */
export async function fileProblem(path: string, what: string, want: FileDigest, hash: FileHasher = sha256Handle): Promise<string | null> {
  let file: FileHandle;
  try {
    // SECURITY: O_NOFOLLOW — a link planted in place of the file is refused, not followed.
    file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ELOOP" ? `${what} is a symbolic link` : `${what} cannot be opened (${code ?? (err as Error).message})`;
  }
  try {
    const before = await file.stat();
    const bad = ownershipProblem(before, what, "file");
    if (bad) return bad;
    if (before.size !== want.size) return `${what} has ${before.size} bytes, not the ${want.size} recorded at build time`;
    const key = `${path}\0${identity(before)}`;
    if (verified.get(key) === want.sha256) return null;
    const got = await hash(file);
    const after = await file.stat();
    if (identity(after) !== identity(before)) return `${what} changed while it was being checked`;
    if (got !== want.sha256) return `${what} does not match the SHA-256 recorded at build time`;
    verified.set(key, got);
    return null;
  } finally {
    await file.close();
  }
}
