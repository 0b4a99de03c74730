// The Firecracker backend: every server in its own Firecracker microVM (KVM
// only), run under the jailer (chroot, unprivileged user, own cgroup),
// configured through the API socket — cold, or restored from a snapshot of an
// idle guest (warm start) — with the guest agent reached over hybrid vsock and
// granted paths as read-only ext4 drives. Not responsible for the request
// bodies (config.ts, snapshot.ts), the jailer argv or the staging (layout.ts).

import { statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ServerSpec } from "../../../config/spec.js";
import { NucleusError, refused } from "../../../errors.js";
import type { Logger } from "../../../log.js";
import type { Backend, Gap, LaunchContext, ProbeResult, Sandbox } from "../../backend.js";
import { VSOCK_PORT_CONTROL, VSOCK_PORT_MCP, type MountRequest } from "../../../agent/guest/protocol.js";
import { ControlChannel } from "../channel.js";
import { consoleTailText } from "../guest-messages.js";
import { guestEgressPlan, type GuestEgress } from "../egress-plan.js";
import { commonVmGaps, imageFacts } from "../gaps.js";
import { ImageLookup } from "../image-lookup.js";
import { imageRoot, scanImages, type GuestImage } from "../image/store.js";
import { chooseAccel } from "../qemu/host.js";
import { vmStartRequest } from "../start-request.js";
import { vmSandbox } from "../vm-sandbox.js";
import { buildReadOnlyDrive } from "./drives.js";
import { findFirecracker, type FirecrackerHost, type FirecrackerHostOptions, type JailSetup } from "./host.js";
import { SnapshotStore, snapshotKey, type StoredSnapshot } from "./snapshot.js";
import { coldBoot, newLayout, restoreBoot, spawnVmm, type FcVm } from "./vm.js";
import { connectVsockWhenReady } from "./vsock.js";
import { ensureSnapshot } from "./warm.js";
import { watchAbort } from "../aborted.js";

export interface FirecrackerBackendOptions extends FirecrackerHostOptions {
  readonly imageRoot?: string;
  /** Restore servers from a snapshot of an idle guest (default: true; only under the jailer). */
  readonly warmStart?: boolean;
  /** Default: <cache>/nucleus/firecracker-snapshots. */
  readonly snapshotRoot?: string;
}

export class FirecrackerBackend implements Backend {
  readonly name = "firecracker" as const;
  private readonly images: ImageLookup;
  private readonly cacheRoot: string;
  /** Snapshot keys that failed to be taken or restored in this process: those servers boot cold. */
  private readonly brokenSnapshots = new Set<string>();

  constructor(private readonly opts: FirecrackerBackendOptions = {}) {
    this.images = new ImageLookup(opts.imageRoot);
    this.cacheRoot = dirname(opts.imageRoot ?? imageRoot(opts.env));
  }

  private host(): FirecrackerHost {
    return findFirecracker(this.opts, { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 }, this.cacheRoot);
  }

  async probe(): Promise<ProbeResult> {
    const hints: string[] = [];
    const kvm = chooseAccel({}).accel === "kvm";
    const host = this.host();
    const image = await this.images.hasImage();
    if (!kvm) hints.push("Firecracker needs KVM: a host with hardware virtualization and read-write access to /dev/kvm");
    if (!host.ok) hints.push(host.hint);
    if (!image) hints.push("build the guest image: `nucleus image build`");
    const missing = [!kvm && "usable KVM", !host.ok && host.missing, !image && "a guest image"].filter((m): m is string => typeof m === "string");
    if (missing.length > 0) return { available: false, reason: `Firecracker needs ${missing.length > 1 ? `${missing.slice(0, -1).join(", ")} and ${missing[missing.length - 1]}` : missing[0]}`, hints };
    const how = host.ok && host.jail ? `under the jailer ${host.jail.jailer} as uid ${host.jail.uid}` : "WITHOUT the jailer (NUCLEUS_FIRECRACKER_INSECURE_NO_JAILER)";
    return { available: true, reason: `${host.ok ? host.firecracker : "firecracker"} with KVM, ${how}`, hints };
  }

  async gaps(spec: ServerSpec): Promise<Gap[]> {
    const gaps = commonVmGaps(spec, "firecracker", imageFacts(await this.images.current()), { egress: true });
    spec.paths.forEach((g, i) => {
      if (g.writable) {
        gaps.push({
          rule: `servers.${spec.name}.allowed_paths[${i}]`,
          message: `${g.path} is granted writable, but Firecracker has no shared filesystem: granted paths reach the guest as read-only drive images`,
          hint: `grant it read-only, or use backend = "qemu" (virtio-9p) or "bubblewrap" for this server`,
        });
      }
    });
    return gaps;
  }

  async launch(spec: ServerSpec, ctx: LaunchContext): Promise<Sandbox> {
    const gaps = await this.gaps(spec);
    if (gaps.length > 0) throw refused(gaps[0]!.message, gaps[0]!.hint);
    const argv0 = spec.launch.argv[0];
    if (!argv0) throw new NucleusError("SANDBOX_START_FAILED", `server "${spec.name}" has no resolved command`);
    const egress = guestEgressPlan(spec, ctx);
    const host = this.host();
    if (!host.ok || chooseAccel({}).accel !== "kvm") {
      const why = host.ok ? "usable KVM" : host.missing;
      throw new NucleusError("BACKEND_UNAVAILABLE", `the Firecracker backend needs ${why}`, { hint: host.ok ? 'use backend = "qemu" on hosts without KVM' : host.hint });
    }
    const image = await this.images.require(spec.name, argv0);
    if (!image.manifest.vsockBridge) {
      throw new NucleusError("BACKEND_UNAVAILABLE", `guest image ${image.manifest.id} has no vsock bridge (socat)`, { hint: "install socat and run `nucleus image build` again" });
    }
    const log = ctx.log.child({ server: spec.name, backend: "firecracker" });
    const limits = { memoryMiB: spec.limits.memoryMiB, cpus: spec.limits.cpus };
    // Code dirs and granted paths become read-only drives /dev/vda, /dev/vdb, … in this order.
    const granted = new Set(spec.paths.map((g) => g.path));
    const dirs = [...spec.launch.codeDirs.filter((d) => !granted.has(d)).map((d) => ({ path: d, code: true })), ...spec.paths.map((g) => ({ path: g.path, code: false }))];
    const driveIds = dirs.map((_, i) => `d${i}`);
    const startupMs = spec.timeouts.startupMs;

    // Warm start needs paths that are the same in every VM: the jailer's chroot gives them.
    try {
      let snap: { key: string; files: StoredSnapshot } | null = null;
      if (host.jail && this.opts.warmStart !== false) {
        const key = snapshotKey({ imageId: image.manifest.id, firecracker: binaryFacts(host.firecracker), ...limits, drives: dirs.length });
        if (!this.brokenSnapshots.has(key)) {
          const store = this.snapshots();
          if (!store.get(key)) store.prune(new Set(scanImages(dirname(image.dir)).images.map((i) => i.manifest.id)));
          try {
            const files = await ensureSnapshot(this.snapshots(), host.firecracker, host.jail, { key, image, ...limits, drives: dirs.length, bootMs: startupMs }, log);
            snap = { key, files };
          } catch (err) {
            // A warm start is only faster: without a snapshot the server boots cold.
            this.brokenSnapshots.add(key);
            log.warn("could not take a Firecracker snapshot; booting cold", { error: (err as Error).message });
          }
        }
      }
      const run = (s: StoredSnapshot | null) => this.boot(spec, ctx, { host: { firecracker: host.firecracker, jail: host.jail }, image, dirs, driveIds, limits, egress, snap: s }, log);
      if (!snap) return await run(null);
      try {
        return await run(snap.files);
      } catch (err) {
        if (!(err instanceof RestoreFailed)) throw err;
        // Nothing of the server reached that VM yet (the restore failed before the start request).
        this.brokenSnapshots.add(snap.key);
        this.snapshots().remove(snap.key);
        log.warn("could not restore the Firecracker snapshot; booting cold", { error: err.message });
        return await run(null);
      }
    } catch (err) {
      if (err instanceof NucleusError) throw err;
      throw new NucleusError("SANDBOX_START_FAILED", `server "${spec.name}" could not start in a Firecracker microVM: ${(err as Error).message}`, {
        hint: "run with --log-level debug to see the guest console",
        cause: err,
      });
    }
  }

  private async boot(spec: ServerSpec, ctx: LaunchContext, b: BootPlan, log: Logger): Promise<Sandbox> {
    const startupMs = spec.timeouts.startupMs;
    const { layout, id } = newLayout(b.host.firecracker, b.host.jail, b.limits);
    let vm: FcVm;
    let mounts: MountRequest[];
    try {
      mounts = b.dirs.map((d, i) => {
        const file = join(layout.dir, `${b.driveIds[i]}.ext4`);
        buildReadOnlyDrive(d.path, file, b.driveIds[i]!);
        return { source: `/dev/vd${String.fromCharCode(97 + i)}`, kind: "block", path: d.path, writable: false, cache: d.code ? "loose" : "none", sizeBytes: statSync(file).size };
      });
      vm = await spawnVmm(spec.name, layout, id, spec.timeouts.shutdownGraceMs, log);
    } catch (err) {
      layout.cleanup();
      throw err;
    }
    let sentStart = false;
    const abort = watchAbort(ctx.signal, `server "${spec.name}"`);
    try {
      if (b.snap) await restoreBoot(vm, b.snap, b.driveIds);
      else await coldBoot(vm, b.image, b.limits, b.driveIds);
      const exitedEarly = vm.vmm.exited.then((e) => {
        throw new Error(`Firecracker exited during boot: ${e.message}${vm.consoleLines.length ? `; console: ${consoleTailText(vm.consoleLines)}` : ""}`);
      });
      exitedEarly.catch(() => {});
      const early = Promise.race([exitedEarly, abort.promise]);
      early.catch(() => {});
      const ctlSock = await Promise.race([connectVsockWhenReady(layout.vsockHost, VSOCK_PORT_CONTROL, startupMs), early]);
      // SECURITY: the guest's egress streams reach this server's own proxy socket, nothing else.
      const channel = new ControlChannel(ctlSock, b.egress ? ctx.egressSocket : null);
      channel.on("warning", (err) => log.warn(err.message));
      await Promise.race([channel.waitFor("hello", startupMs), early]);
      sentStart = true;
      // SECURITY: secrets travel over vsock after boot (and after any restore), never in boot_args,
      // the image or a snapshot.
      channel.send(vmStartRequest(spec, ctx, mounts, b.egress));
      await Promise.race([channel.waitFor("started", startupMs), early]);
      const mcp = await Promise.race([connectVsockWhenReady(layout.vsockHost, VSOCK_PORT_MCP, startupMs), early]);
      mcp.on("error", () => {});
      const start = b.snap ? "restored" : "cold";
      log.info("server started in a Firecracker microVM", { start, jailer: b.host.jail !== null });
      return vmSandbox({
        backend: "firecracker",
        serverName: spec.name,
        vmm: vm.vmm,
        channel,
        mcp: { stdin: mcp, stdout: mcp },
        defaultGraceMs: spec.timeouts.shutdownGraceMs,
        consoleTail: () => vm.consoleLines,
        details: { ...vm.vmm.details, image: b.image.manifest.id, dir: layout.dir, start, jailer: b.host.jail ? "yes" : "no" },
      });
    } catch (err) {
      await vm.vmm.stop(0); // its cleanup removes the layout
      // Up to the agent's hello, a restored VM has received nothing of the server: a cold boot may follow
      // (not when the gateway gave up on this start).
      if (b.snap && !sentStart && !ctx.signal?.aborted) throw new RestoreFailed((err as Error).message);
      throw err;
    } finally {
      abort.dispose();
    }
  }

  private snapshots(): SnapshotStore {
    return new SnapshotStore(this.opts.snapshotRoot ?? join(this.cacheRoot, "firecracker-snapshots"));
  }
}

/** The snapshot could not be restored; nothing of the server reached the VM. */
class RestoreFailed extends Error {}

interface BootPlan {
  readonly host: { readonly firecracker: string; readonly jail: JailSetup | null };
  readonly image: GuestImage;
  readonly dirs: readonly { readonly path: string; readonly code: boolean }[];
  readonly driveIds: readonly string[];
  readonly limits: { readonly memoryMiB: number; readonly cpus: number };
  readonly egress: GuestEgress | null;
  readonly snap: StoredSnapshot | null;
}

function binaryFacts(path: string): { path: string; size: number; mtimeMs: number } {
  const st = statSync(path);
  return { path, size: st.size, mtimeMs: Math.floor(st.mtimeMs) };
}

