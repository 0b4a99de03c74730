// One Firecracker process and its files: the layout (jailer chroot, or a run
// dir when the jailer is explicitly waived), the VMM spawned as a Sandbox, the
// API client once its socket exists, and the two ways to bring the guest up —
// a cold boot or a restore from a snapshot. Not responsible for the guest agent
// (the backend talks to it) or for which snapshot to use (warm.ts).

import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../../../log.js";
import type { Sandbox } from "../../backend.js";
import { spawnSandbox } from "../../process.js";
import { FirecrackerApi } from "./api.js";
import { buildFirecrackerRequests } from "./config.js";
import type { JailSetup } from "./host.js";
import { directLayout, jailedLayout, type FcLayout } from "./layout.js";
import { loadSnapshot, updateDrive, type StoredSnapshot } from "./snapshot.js";

export interface FcVm {
  readonly layout: FcLayout;
  readonly vmm: Sandbox;
  readonly api: FirecrackerApi;
  /** The last console lines (Firecracker's stdout is the guest's serial console). */
  readonly consoleLines: string[];
  readonly id: string;
}

/** A fresh layout: a chroot under the jailer, else a private run dir. */
export function newLayout(firecracker: string, jail: JailSetup | null, limits: { memoryMiB: number; cpus: number }): { layout: FcLayout; id: string } {
  const id = `nucleus-${randomBytes(8).toString("hex")}`;
  if (!jail) return { layout: directLayout(firecracker, mkdtempSync(join(tmpdir(), "nucleus-fc-"))), id };
  return { layout: jailedLayout(jail, firecracker, id, limits), id };
}

/** Starts Firecracker (under the jailer when the layout says so) and waits for its API socket. */
export async function spawnVmm(name: string, layout: FcLayout, id: string, graceMs: number, log: Logger): Promise<FcVm> {
  const vmm = await spawnSandbox({
    serverName: name,
    backend: "firecracker",
    argv: layout.argv,
    env: {},
    defaultGraceMs: graceMs,
    // Nothing stays behind: the chroot (staged links, drive images, sockets) and the VM's cgroups.
    cleanup: async () => layout.cleanup(),
    details: { vm: id },
  });
  const consoleLines: string[] = [];
  let partial = "";
  vmm.stdout.on("data", (d: Buffer) => {
    partial += d.toString("utf8");
    const lines = partial.split(/\r?\n/);
    partial = (lines.pop() ?? "").slice(-4096);
    for (const line of lines) {
      if (!line.trim()) continue;
      consoleLines.push(line);
      if (consoleLines.length > 50) consoleLines.shift();
      log.debug("guest console", { line });
    }
  });
  let stderr = "";
  vmm.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString("utf8")).slice(-2000)));
  let gone = false;
  void vmm.exited.then(() => (gone = true));
  for (let i = 0; !existsSync(layout.apiSocket); i++) {
    if (gone || i > 200) {
      await vmm.stop(0);
      const why = stderr.trim().split("\n").slice(-3).join(" | ");
      throw new Error(`${gone ? "Firecracker exited before" : "Firecracker did not"} create its API socket${gone ? "" : " within 10 s"}${why ? `: ${why}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { layout, vmm, api: new FirecrackerApi(layout.apiSocket), consoleLines, id };
}

export interface BootImage {
  readonly kernel: string;
  readonly initramfs: string;
}

/** Cold boot: kernel and initramfs staged into the layout, then configure and start. */
export async function coldBoot(vm: FcVm, image: BootImage, limits: { memoryMiB: number; cpus: number }, driveIds: readonly string[]): Promise<void> {
  const l = vm.layout;
  await vm.api.sendAll(
    buildFirecrackerRequests({
      kernel: l.stage(image.kernel, "vmlinux"),
      initramfs: l.stage(image.initramfs, "initramfs.cpio"),
      memoryMiB: limits.memoryMiB,
      cpus: limits.cpus,
      vsockUds: l.vsockInVm,
      drives: driveIds.map((id) => ({ id, image: l.inVm(`${id}.ext4`) })),
    }),
  );
}

/**
 * Warm start: the snapshot staged into the layout, loaded and resumed, then each drive pointed at
 * this server's image (same path as the snapshot's placeholder; PATCH makes Firecracker re-read its
 * size and tell the guest).
 */
export async function restoreBoot(vm: FcVm, snap: StoredSnapshot, driveIds: readonly string[]): Promise<void> {
  const l = vm.layout;
  await vm.api.send(loadSnapshot(l.stage(snap.vmstate, "snapshot.vmstate"), l.stage(snap.mem, "snapshot.mem")), 60_000);
  for (const id of driveIds) await vm.api.send(updateDrive(id, l.inVm(`${id}.ext4`)));
}
