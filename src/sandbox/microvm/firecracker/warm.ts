// Taking the snapshot that warm starts restore: boot a template VM with the
// same machine size and as many placeholder drives, wait for the agent's
// hello, hang up, pause, snapshot, and install the files in the store. Once per
// key; concurrent launches share one build. Not responsible for restoring
// (vm.ts) or for the request bodies (snapshot.ts).
//
// SECURITY: the template never gets a start request — no secret, argv, env or
// server file is ever in guest memory when the snapshot is taken.

import { copyFileSync, renameSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../../log.js";
import { VSOCK_PORT_CONTROL } from "../../../agent/guest/protocol.js";
import { ControlChannel } from "../channel.js";
import type { JailSetup } from "./host.js";
import { createSnapshot, pauseVm, type SnapshotStore, type StoredSnapshot } from "./snapshot.js";
import { coldBoot, newLayout, spawnVmm, type BootImage, type FcVm } from "./vm.js";
import { connectVsockWhenReady } from "./vsock.js";

export interface TemplateSpec {
  readonly key: string;
  readonly image: BootImage;
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly drives: number;
  readonly bootMs: number;
}

const building = new Map<string, Promise<StoredSnapshot>>();

/** The snapshot for `t.key`, taken now if the store has none. */
export function ensureSnapshot(store: SnapshotStore, firecracker: string, jail: JailSetup, t: TemplateSpec, log: Logger): Promise<StoredSnapshot> {
  const have = store.get(t.key);
  if (have) return Promise.resolve(have);
  let p = building.get(t.key);
  if (!p) {
    p = takeSnapshot(store, firecracker, jail, t, log).finally(() => building.delete(t.key));
    building.set(t.key, p);
  }
  return p;
}

async function takeSnapshot(store: SnapshotStore, firecracker: string, jail: JailSetup, t: TemplateSpec, log: Logger): Promise<StoredSnapshot> {
  const { layout, id } = newLayout(firecracker, jail, t);
  const driveIds = Array.from({ length: t.drives }, (_, i) => `d${i}`);
  let vm: FcVm;
  try {
    // Placeholders at the paths every restored VM will use for its own images.
    for (const d of driveIds) {
      const f = join(layout.dir, `${d}.ext4`);
      writeFileSync(f, "");
      truncateSync(f, 1024 * 1024);
    }
    vm = await spawnVmm("snapshot-template", layout, id, 2000, log);
  } catch (err) {
    layout.cleanup();
    throw err;
  }
  try {
    await coldBoot(vm, t.image, t, driveIds);
    const sock = await connectVsockWhenReady(layout.vsockHost, VSOCK_PORT_CONTROL, t.bootMs);
    const channel = new ControlChannel(sock, null);
    await channel.waitFor("hello", t.bootMs);
    // Hang up first: the agent then listens again (as it would after the reset a restore brings),
    // so the snapshot holds no live connection either way.
    channel.close();
    await new Promise((r) => setTimeout(r, 300));
    await vm.api.send(pauseVm());
    await vm.api.send(createSnapshot(layout.runInVm("vmstate"), layout.runInVm("mem")), 120_000);
    const staging = store.staging(t.key);
    try {
      const out = { vmstate: join(staging, "vmstate.new"), mem: join(staging, "mem.new") };
      moveFile(join(layout.runDir, "vmstate"), out.vmstate);
      moveFile(join(layout.runDir, "mem"), out.mem);
      const snap = store.install(t.key, staging, out.vmstate, out.mem);
      log.info("took a Firecracker snapshot for warm starts", { key: t.key, memoryMiB: t.memoryMiB, cpus: t.cpus, drives: t.drives });
      return snap;
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      throw err;
    }
  } finally {
    await vm.vmm.stop(0);
  }
}

function moveFile(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
    copyFileSync(from, to);
    rmSync(from, { force: true });
  }
}
