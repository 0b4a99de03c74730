// The Firecracker backend: every server in its own Firecracker microVM (KVM
// only), configured through the API socket, with the guest agent reached over
// hybrid vsock (control and MCP ports) and granted paths as read-only ext4
// drives. Not responsible for the request bodies (config.ts) or the jailer argv.

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServerSpec } from "../../../config/spec.js";
import { NucleusError, refused } from "../../../errors.js";
import type { Backend, Gap, LaunchContext, ProbeResult, Sandbox } from "../../backend.js";
import { baseServerEnv } from "../../env.js";
import { spawnSandbox } from "../../process.js";
import { whichSync } from "../../which.js";
import { VSOCK_PORT_CONTROL, VSOCK_PORT_MCP, type MountRequest } from "../../../agent/guest/protocol.js";
import { ControlChannel } from "../channel.js";
import { commonVmGaps, imageFacts } from "../gaps.js";
import { ImageLookup } from "../image-lookup.js";
import { chooseAccel } from "../qemu/host.js";
import { vmSandbox } from "../vm-sandbox.js";
import { FirecrackerApi } from "./api.js";
import { buildFirecrackerRequests } from "./config.js";
import { buildReadOnlyDrive } from "./drives.js";
import { connectVsockWhenReady } from "./vsock.js";
import { directLayout, jailedLayout, type FcLayout, type JailConfig } from "./layout.js";

export interface FirecrackerBackendOptions {
  /** Default: $NUCLEUS_FIRECRACKER_BIN, then `firecracker` on PATH. */
  readonly firecracker?: string;
  readonly imageRoot?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Run Firecracker under the jailer (needs root to set up; recommended in production). */
  readonly jailer?: JailConfig;
}

export class FirecrackerBackend implements Backend {
  readonly name = "firecracker" as const;
  private readonly images: ImageLookup;

  constructor(private readonly opts: FirecrackerBackendOptions = {}) {
    this.images = new ImageLookup(opts.imageRoot);
  }

  private binary(): string | null {
    const env = this.opts.env ?? process.env;
    return this.opts.firecracker ?? (env.NUCLEUS_FIRECRACKER_BIN || null) ?? whichSync("firecracker", env.PATH);
  }

  async probe(): Promise<ProbeResult> {
    const hints: string[] = [];
    const kvm = chooseAccel({}).accel === "kvm";
    const bin = this.binary();
    const image = await this.images.hasImage();
    if (!kvm) hints.push("Firecracker needs KVM: a host with hardware virtualization and read-write access to /dev/kvm");
    if (!bin) hints.push("install Firecracker and set NUCLEUS_FIRECRACKER_BIN to its path");
    if (!image) hints.push("build the guest image: `nucleus image build`");
    const missing = [!kvm && "usable KVM", !bin && "the firecracker binary", !image && "a guest image"].filter(Boolean);
    if (missing.length > 0) return { available: false, reason: `Firecracker needs ${missing.length > 1 ? `${missing.slice(0, -1).join(", ")} and ${missing[missing.length - 1]}` : missing[0]}`, hints };
    return { available: true, reason: `${bin} with KVM`, hints };
  }

  async gaps(spec: ServerSpec): Promise<Gap[]> {
    const gaps = commonVmGaps(spec, "firecracker", imageFacts(await this.images.current()));
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
    const bin = this.binary();
    if (!bin || chooseAccel({}).accel !== "kvm") {
      throw new NucleusError("BACKEND_UNAVAILABLE", "the Firecracker backend needs KVM and the firecracker binary", { hint: "set NUCLEUS_FIRECRACKER_BIN, or use backend = \"qemu\"" });
    }
    const image = await this.images.require(spec.name, argv0);
    if (!image.manifest.vsockBridge) {
      throw new NucleusError("BACKEND_UNAVAILABLE", `guest image ${image.manifest.id} has no vsock bridge (socat)`, { hint: "install socat and run `nucleus image build` again" });
    }
    const log = ctx.log.child({ server: spec.name, backend: "firecracker" });
    const runDir = mkdtempSync(join(tmpdir(), "nucleus-fc-"));
    let layout: FcLayout | null = null;
    const cleanupHost = () => {
      layout?.cleanup();
      rmSync(runDir, { recursive: true, force: true });
    };
    try {
      // Code dirs and granted paths become read-only drives /dev/vda, /dev/vdb, … in this order.
      const granted = new Set(spec.paths.map((g) => g.path));
      const dirs = [...spec.launch.codeDirs.filter((d) => !granted.has(d)).map((d) => ({ path: d, code: true })), ...spec.paths.map((g) => ({ path: g.path, code: false }))];
      const drives = dirs.map((d, i) => ({ id: `d${i}`, image: join(runDir, `d${i}.ext4`), ...d }));
      for (const d of drives) buildReadOnlyDrive(d.path, d.image, d.id);
      const mounts: MountRequest[] = drives.map((d, i) => ({
        source: `/dev/vd${String.fromCharCode(97 + i)}`,
        kind: "block",
        path: d.path,
        writable: false,
        cache: d.code ? "loose" : "none",
      }));
      const lay: FcLayout = this.opts.jailer
        ? jailedLayout(this.opts.jailer, bin, `nucleus-${runDir.slice(-6).replace(/[^A-Za-z0-9]/g, "x")}`, [image.kernel, image.initramfs, ...drives.map((d) => d.image)], spec.limits)
        : directLayout(bin, runDir);
      layout = lay;
      const apiSocket = lay.apiSocket;
      const vsockUds = lay.vsockHost;
      const vmm = await spawnSandbox({
        serverName: spec.name,
        backend: "firecracker",
        argv: lay.argv,
        env: {},
        defaultGraceMs: spec.timeouts.shutdownGraceMs,
        cleanup: async () => cleanupHost(),
      });
      const consoleLines: string[] = [];
      vmm.stdout.on("data", (d: Buffer) => {
        for (const line of d.toString("utf8").split(/\r?\n/)) {
          if (!line.trim()) continue;
          consoleLines.push(line);
          if (consoleLines.length > 50) consoleLines.shift();
          log.debug("guest console", { line });
        }
      });
      try {
        for (let i = 0; !existsSync(apiSocket); i++) {
          if (i > 100) throw new Error("Firecracker did not create its API socket within 5 s");
          await new Promise((r) => setTimeout(r, 50));
        }
        const requests = buildFirecrackerRequests({
          kernel: lay.inVm(image.kernel),
          initramfs: lay.inVm(image.initramfs),
          memoryMiB: spec.limits.memoryMiB,
          cpus: spec.limits.cpus,
          vsockUds: lay.vsockInVm,
          drives: drives.map((d) => ({ id: d.id, image: lay.inVm(d.image) })),
        });
        await new FirecrackerApi(apiSocket).sendAll(requests);
        const ctlSock = await connectVsockWhenReady(vsockUds, VSOCK_PORT_CONTROL, spec.timeouts.startupMs);
        const channel = new ControlChannel(ctlSock);
        await channel.waitFor("hello", spec.timeouts.startupMs);
        // SECURITY: secrets travel over vsock after boot, never in boot_args or the image.
        channel.send({
          t: "start",
          argv: spec.launch.argv,
          env: { ...baseServerEnv("/tmp"), ...spec.launch.env },
          cwd: spec.launch.cwd,
          mounts,
          secrets: [...ctx.secrets].map(([target, s]) => ({ target, as: s.as, value: s.value })),
          tmpMiB: spec.limits.tmpMiB,
        });
        await channel.waitFor("started", spec.timeouts.startupMs);
        const mcp = await connectVsockWhenReady(vsockUds, VSOCK_PORT_MCP, spec.timeouts.startupMs);
        mcp.on("error", () => {});
        log.info("server started in a Firecracker microVM");
        return vmSandbox({
          backend: "firecracker",
          serverName: spec.name,
          vmm,
          channel,
          mcp: { stdin: mcp, stdout: mcp },
          defaultGraceMs: spec.timeouts.shutdownGraceMs,
          consoleTail: () => consoleLines,
          details: { ...vmm.details, image: image.manifest.id, runDir },
        });
      } catch (err) {
        await vmm.stop(0);
        throw err;
      }
    } catch (err) {
      cleanupHost();
      if (err instanceof NucleusError) throw err;
      throw new NucleusError("SANDBOX_START_FAILED", `server "${spec.name}" could not start in a Firecracker microVM: ${(err as Error).message}`, { cause: err });
    }
  }
}
