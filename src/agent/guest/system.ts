// What the guest agent asks of the guest kernel, through busybox (Node has no
// mount/insmod/reboot calls): kernel modules, mounts, power-off, device lookup.
// Not responsible for the protocol. No imports outside src/agent/guest.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import type { MountRequest } from "./protocol.js";

export const BUSYBOX = "/bin/busybox";

function busybox(args: readonly string[]): void {
  const r = spawnSync(BUSYBOX, args, { stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) throw new Error(`busybox ${args.join(" ")} failed (status ${r.status}, ${r.error?.message ?? "no error"})`);
}

/** Load the modules listed (in order) in /nucleus/modules; a module already built in is fine. */
export function loadModules(listFile = "/nucleus/modules"): void {
  if (!existsSync(listFile)) return;
  for (const line of readFileSync(listFile, "utf8").split("\n")) {
    const path = line.trim();
    if (!path) continue;
    const r = spawnSync(BUSYBOX, ["insmod", path], { stdio: ["ignore", "ignore", "pipe"] });
    const err = r.stderr?.toString() ?? "";
    if (r.status !== 0 && !/File exists/.test(err)) throw new Error(`could not load module ${path}: ${err.trim()}`);
  }
}

export function mountTmpfs(path: string, sizeMiB: number, mode = "1777"): void {
  mkdirSync(path, { recursive: true });
  busybox(["mount", "-t", "tmpfs", "-o", `size=${sizeMiB}m,mode=${mode},nosuid,nodev`, "tmpfs", path]);
}

export function mountShare(m: MountRequest): void {
  mkdirSync(m.path, { recursive: true });
  const rw = m.writable ? "rw" : "ro";
  if (m.kind === "9p") {
    // SECURITY: read-only here and (the real guarantee) readonly=on in QEMU's -fsdev.
    const opts = `trans=virtio,version=9p2000.L,msize=262144,cache=${m.cache},${rw},nodev,nosuid`;
    busybox(["mount", "-t", "9p", "-o", opts, m.source, m.path]);
  } else {
    busybox(["mount", "-t", "ext4", "-o", `${rw},nodev,nosuid`, m.source, m.path]);
  }
}

/** Mix bytes into the kernel's entropy pool (uncredited: it only ever adds unpredictability). */
export function mixEntropy(bytes: Buffer, dev = "/dev/urandom"): void {
  if (bytes.length > 0) writeFileSync(dev, bytes);
}

/**
 * Before mounting block devices: wait (bounded) until each shows the size the host announced —
 * after a snapshot restore the host swaps the images and the guest learns the new sizes through a
 * config-change interrupt — then drop the page cache, which may still hold blocks the kernel read
 * from the placeholder images when it probed them at boot.
 */
export function prepareBlockDevices(mounts: readonly MountRequest[], timeoutMs = 5000): void {
  const deadline = Date.now() + timeoutMs;
  for (const m of mounts) {
    if (m.sizeBytes === undefined) continue;
    const sysSize = `/sys/class/block/${m.source.replace(/^\/dev\//, "")}/size`;
    for (;;) {
      let sectors = -1;
      try {
        sectors = Number(readFileSync(sysSize, "utf8").trim());
      } catch {
        /* not there yet */
      }
      if (sectors * 512 === m.sizeBytes) break;
      if (Date.now() > deadline) throw new Error(`${m.source} shows ${sectors * 512} bytes, not the ${m.sizeBytes} of its image`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  spawnSync(BUSYBOX, ["sync"]);
  writeFileSync("/proc/sys/vm/drop_caches", "3");
}

/** Map virtio-serial port names to their device nodes, waiting until `names` exist. */
export async function findPorts(names: readonly string[], timeoutMs: number): Promise<Map<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = new Map<string, string>();
    const dir = "/sys/class/virtio-ports";
    if (existsSync(dir)) {
      for (const entry of readdirSync(dir)) {
        try {
          const name = readFileSync(`${dir}/${entry}/name`, "utf8").trim();
          if (existsSync(`/dev/${entry}`)) found.set(name, `/dev/${entry}`);
        } catch {
          /* not ready yet */
        }
      }
    }
    if (names.every((n) => found.has(n))) return found;
    if (Date.now() > deadline) throw new Error(`virtio ports ${names.filter((n) => !found.has(n)).join(", ")} did not appear`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** End the VM: the host VMM treats a guest reset as the end (QEMU -no-reboot, Firecracker). */
export function powerOff(): never {
  spawnSync(BUSYBOX, ["sync"]);
  spawnSync(BUSYBOX, ["reboot", "-f"]);
  // reboot(2) does not return. If it did: process.exit() could hang joining threads blocked on the
  // ports, so abort — PID 1 dying panics the kernel, and panic=-1 ends the VM.
  spawnSync(BUSYBOX, ["poweroff", "-f"]);
  process.abort();
}

export function kernelRelease(): string {
  try {
    return readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  } catch {
    return "unknown";
  }
}
