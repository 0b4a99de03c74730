// Fetching the guest kernel as a Debian package without root: resolve the
// metapackage (linux-image-amd64) to the versioned one, `apt-get download` it
// into the cache, unpack it with `dpkg-deb -x`. Not responsible for what is
// taken from the package.

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

function run(argv: readonly string[], cwd?: string): string {
  const [cmd, ...args] = argv;
  const r = spawnSync(cmd!, args, { cwd, encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
  if (r.error) throw new Error(`\`${cmd}\` could not run: ${r.error.message}. Hint: the image build needs Debian's apt tools.`);
  if (r.status !== 0) throw new Error(`\`${argv.join(" ")}\` failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** linux-image-amd64 → linux-image-6.1.0-56-amd64 (a concrete package name passes through). */
export function resolveKernelPackage(name: string): string {
  const out = run(["apt-cache", "depends", name]);
  const dep = /Depends:\s+(linux-image-[0-9][^\s]*)/.exec(out);
  return dep ? dep[1]! : name;
}

/** Path of the package's .deb in `dir`, downloading it when absent. */
export function downloadDeb(pkg: string, dir: string): { path: string; downloaded: boolean } {
  const existing = () => readdirSync(dir).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb")).sort();
  let found = existing();
  if (found.length > 0) return { path: join(dir, found[found.length - 1]!), downloaded: false };
  run(["apt-get", "download", pkg], dir);
  found = existing();
  if (found.length === 0) throw new Error(`apt-get download ${pkg} left no .deb in ${dir}`);
  return { path: join(dir, found[found.length - 1]!), downloaded: true };
}

export function unpackDeb(deb: string, into: string): void {
  if (!existsSync(deb)) throw new Error(`${deb} does not exist`);
  run(["dpkg-deb", "-x", deb, into]);
}
