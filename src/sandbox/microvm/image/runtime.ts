// The host runtime copied into the guest image: an executable (Node.js by
// default) and the shared libraries `ldd` says it loads, at their host paths.
// Not responsible for writing the image.

import { spawnSync } from "node:child_process";
import { realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";

export interface RuntimeFile {
  /** Path in the guest (as the loader asks for it, directories resolved). */
  readonly path: string;
  /** The real file on the host. */
  readonly source: string;
}

/** Shared libraries of `exe` (including the ELF interpreter); [] for a static binary. */
export function sharedLibraries(exe: string): string[] {
  const r = spawnSync("ldd", [exe], { encoding: "utf8" });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  if (/not a dynamic executable|statically linked/.test(out)) return [];
  if (r.error || r.status !== 0) throw new Error(`ldd ${exe} failed: ${r.error?.message ?? out.trim()}`);
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

/** The files to copy for `exe`: the binary and its libraries, each at its directory-resolved path. */
export function runtimeFiles(exe: string): RuntimeFile[] {
  const files = new Map<string, RuntimeFile>();
  for (const p of [exe, ...sharedLibraries(exe)]) {
    const source = realpathSync(p);
    const path = join(realpathSync(dirname(p)), basename(p));
    files.set(path, { path, source });
    files.set(source, { path: source, source });
  }
  return [...files.values()];
}
