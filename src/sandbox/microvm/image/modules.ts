// Which kernel modules the guest needs and in what order to load them. The
// package ships no modules.dep (depmod runs at install), so dependencies are
// read from each module's own `.modinfo` ("depends=a,b"). Not responsible for loading.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/** QEMU microvm: virtio-mmio devices, virtio-serial ports, 9p shares. */
export const QEMU_MODULES = ["virtio_mmio", "virtio_console", "9pnet_virtio", "9p"] as const;
/** Firecracker: virtio-blk drives for granted paths (ext4) and vsock channels. */
export const FIRECRACKER_MODULES = ["virtio_blk", "ext4", "vmw_vsock_virtio_transport"] as const;

const norm = (name: string) => name.replace(/-/g, "_");

/** Map module name → path relative to `modulesRoot` (…/lib/modules/<release>). */
export function indexModules(modulesRoot: string): Map<string, string> {
  const index = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const p = join(dir, entry);
      if (statSync(p).isDirectory()) walk(p);
      else if (entry.endsWith(".ko")) index.set(norm(entry.slice(0, -3)), relative(modulesRoot, p));
    }
  };
  walk(join(modulesRoot, "kernel"));
  return index;
}

/** The `depends=` list of a module file. */
export function moduleDepends(ko: Buffer): string[] {
  const at = ko.indexOf("\0depends=");
  if (at === -1) return [];
  const start = at + "\0depends=".length;
  const end = ko.indexOf(0, start);
  const list = ko.toString("utf8", start, end);
  return list ? list.split(",").map(norm) : [];
}

/** Modules `wanted` plus their dependencies, dependencies first; each path relative to `modulesRoot`. */
export function resolveModules(modulesRoot: string, wanted: readonly string[]): string[] {
  const index = indexModules(modulesRoot);
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, chain: string[]) => {
    const n = norm(name);
    if (seen.has(n)) return;
    if (chain.includes(n)) throw new Error(`module dependency cycle: ${[...chain, n].join(" → ")}`);
    const rel = index.get(n);
    if (!rel) throw new Error(`kernel module ${n} is not in ${modulesRoot} (is it built in? then drop it from the list)`);
    for (const dep of moduleDepends(readFileSync(join(modulesRoot, rel)))) visit(dep, [...chain, n]);
    seen.add(n);
    order.push(rel);
  };
  for (const w of wanted) visit(w, []);
  return order;
}
