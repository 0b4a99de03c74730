// Read-only ext4 images of host directories, for Firecracker (which has no
// shared filesystem): `mkfs.ext4 -d` copies a directory into a fresh image
// without root. Built at each start, so the guest sees the directory as it is
// then; writes are a gap. Not responsible for attaching them (config.ts).

import { spawnSync } from "node:child_process";
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** Bytes under `dir` (files and directory entries), not following symlinks. */
export function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir)) {
    const p = join(dir, entry);
    const st = lstatSync(p);
    total += st.isDirectory() ? 4096 + treeBytes(p) : Math.ceil(st.size / 4096) * 4096 + 256;
  }
  return total;
}

export function mkfsArgv(mkfs: string, dir: string, image: string, sizeKiB: number, label: string): string[] {
  return [mkfs, "-q", "-F", "-t", "ext4", "-O", "^has_journal", "-L", label.slice(0, 16), "-E", "root_owner=0:0", "-d", dir, image, `${sizeKiB}k`];
}

export function buildReadOnlyDrive(dir: string, image: string, label: string, mkfs = "mkfs.ext4"): void {
  // Room for metadata: 25 % + 16 MiB.
  const sizeKiB = Math.ceil((treeBytes(dir) * 1.25) / 1024) + 16 * 1024;
  const [cmd, ...args] = mkfsArgv(mkfs, dir, image, sizeKiB, label);
  const r = spawnSync(cmd!, args, { encoding: "utf8" });
  if (r.error) throw new Error(`${cmd} could not run: ${r.error.message}. Hint: install e2fsprogs (scripts/setup.sh does).`);
  if (r.status !== 0) throw new Error(`could not build a drive image of ${dir}: ${r.stderr.trim()}`);
}
