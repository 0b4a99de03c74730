// The QEMU microVM backend: every server in its own `-M microvm` guest (KVM when
// usable, TCG otherwise), QEMU itself inside bubblewrap, the MCP stream on a
// virtio-serial port bridged to QEMU's stdio, the control channel and console on
// socketpairs QEMU inherits, code dirs and granted paths over virtio-9p. Not responsible for the image (image/) or the guest agent (src/agent/guest).

import type { Socket } from "node:net";
import type { ServerSpec } from "../../../config/spec.js";
import { NucleusError, refused } from "../../../errors.js";
import type { Backend, Gap, LaunchContext, ProbeResult, Sandbox } from "../../backend.js";
import { spawnSandbox } from "../../process.js";
import { inaccessibleTo, runAsPrefix, type RunAs } from "../../run-as.js";
import { whichSync } from "../../which.js";
import { ControlChannel } from "../channel.js";
import { consoleTailText } from "../guest-messages.js";
import { commonVmGaps, imageFacts } from "../gaps.js";
import { ImageLookup } from "../image-lookup.js";
import { vmSandbox } from "../vm-sandbox.js";
import { buildQemuArgv, type QemuShare } from "./argv.js";
import { buildQemuBwrapArgv } from "./bwrap.js";
import { chooseAccel, hostTscKhz, usrLinks, type AccelChoice } from "./host.js";
import { checkRunAsAccess } from "./run-as-access.js";
import { sweepStaleRunDirs } from "./run-dir.js";
import type { MountRequest } from "../../../agent/guest/protocol.js";
import { guestEgressPlan } from "../egress-plan.js";
import { vmStartRequest } from "../start-request.js";
import { watchAbort } from "../aborted.js";

/** QEMU's fds of the control channel and the console: the spawn's extra stdio 3 and 4. */
const CONTROL_FD = 3;
const CONSOLE_FD = 4;

export interface QemuBackendOptions {
  readonly qemu?: string;
  readonly bwrap?: string;
  /** Image cache root (default: $XDG_CACHE_HOME/nucleus/images). */
  readonly imageRoot?: string;
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Host identity bwrap and QEMU run as when the gateway is root (`[gateway] run_as`), through setpriv as in
   * the bubblewrap backend. That user must be able to read the image cache and the shared paths.
   */
  readonly runAs?: RunAs;
  /** Where run dirs left by earlier versions are swept (default: os.tmpdir()). */
  readonly runRoot?: string;
}

/** What `early` (which only ever rejects) rejects with within `ms`, else `fallback`. */
async function exitReasonWithin(early: Promise<unknown>, ms: number, fallback: unknown): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<unknown>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)));
  try {
    return await Promise.race([early.then(() => fallback, (e: unknown) => e), late]);
  } finally {
    clearTimeout(timer);
  }
}

export class QemuBackend implements Backend {
  readonly name = "qemu" as const;
  private readonly images: ImageLookup;

  constructor(private readonly opts: QemuBackendOptions = {}) {
    this.images = new ImageLookup(opts.imageRoot);
  }

  private qemuPath(): string | null {
    return this.opts.qemu ?? whichSync("qemu-system-x86_64", (this.opts.env ?? process.env).PATH);
  }
  private bwrapPath(): string | null {
    return this.opts.bwrap ?? whichSync("bwrap", (this.opts.env ?? process.env).PATH);
  }

  async probe(): Promise<ProbeResult> {
    const qemu = this.qemuPath();
    const bwrap = this.bwrapPath();
    const hints: string[] = [];
    if (!qemu) hints.push("install QEMU: `sudo apt-get install qemu-system-x86` (scripts/setup.sh does)");
    if (!bwrap) hints.push("install bubblewrap, which confines QEMU itself: `sudo apt-get install bubblewrap`");
    if (!qemu || !bwrap) {
      return { available: false, reason: `the QEMU backend needs ${[!qemu && "qemu-system-x86_64", !bwrap && "bwrap"].filter(Boolean).join(" and ")}, not found on PATH`, hints };
    }
    const accel = chooseAccel(this.opts.env);
    const current = await this.images.current();
    const image = current !== null;
    if (!image) hints.push("build the guest image before the first launch: `nucleus image build`");
    const runAs = this.opts.runAs;
    if (current && runAs && inaccessibleTo(runAs, [{ path: current.kernel }, { path: current.initramfs }]).length > 0) {
      hints.push(`the guest image in ${current.dir} is not readable by the run_as user (uid ${runAs.uid}): build it and start the gateway with an XDG_CACHE_HOME that user can read (e.g. /var/cache)`);
    }
    if (accel.accel === "tcg") hints.push("for KVM speed, use a host with hardware virtualization and access to /dev/kvm");
    const how = accel.accel === "kvm" ? "KVM" : "TCG, software emulation, slower";
    return { available: true, reason: `QEMU at ${qemu} runs microVMs with ${how} (${accel.reason})${image ? "" : "; no guest image yet"}`, hints };
  }

  async gaps(spec: ServerSpec): Promise<Gap[]> {
    return commonVmGaps(spec, "qemu", imageFacts(await this.images.current()), { egress: true });
  }

  async launch(spec: ServerSpec, ctx: LaunchContext): Promise<Sandbox> {
    const gaps = await this.gaps(spec);
    if (gaps.length > 0) throw refused(gaps[0]!.message, gaps[0]!.hint);
    const argv0 = spec.launch.argv[0];
    if (!argv0) throw new NucleusError("SANDBOX_START_FAILED", `server "${spec.name}" has no resolved command`);
    const egress = guestEgressPlan(spec, ctx);
    const qemu = this.qemuPath();
    const bwrap = this.bwrapPath();
    if (!qemu || !bwrap) throw new NucleusError("BACKEND_UNAVAILABLE", "the QEMU backend needs qemu-system-x86_64 and bwrap", { hint: "run scripts/setup.sh" });
    const image = await this.images.require(spec.name, argv0);
    const log = ctx.log.child({ server: spec.name, backend: "qemu" });
    const runAs = this.opts.runAs ?? null;
    const drop = runAsPrefix(runAs);
    let accel: AccelChoice = chooseAccel(this.opts.env);

    // Code dirs and granted paths, each its own 9p share at the same path in the guest.
    const shares: QemuShare[] = [];
    const mounts: MountRequest[] = [];
    const granted = new Set(spec.paths.map((g) => g.path));
    spec.launch.codeDirs.filter((d) => !granted.has(d)).forEach((dir, i) => {
      shares.push({ tag: `c${i}`, hostPath: dir, writable: false });
      mounts.push({ source: `c${i}`, kind: "9p", path: dir, writable: false, cache: "loose" });
    });
    spec.paths.forEach((g, i) => {
      shares.push({ tag: `p${i}`, hostPath: g.path, writable: g.writable });
      mounts.push({ source: `p${i}`, kind: "9p", path: g.path, writable: g.writable, cache: "none" });
    });

    if (runAs) {
      const access = checkRunAsAccess(spec.name, runAs, image, shares, accel.accel === "kvm");
      if (accel.accel === "kvm" && !access.kvm) accel = { accel: "tcg", reason: `the run_as user (uid ${runAs.uid}) cannot open /dev/kvm` };
    }
    for (const gone of sweepStaleRunDirs(this.opts.runRoot)) log.debug("removed a QEMU run dir left by an earlier gateway", { dir: gone });
    // SECURITY: the control channel (which carries the server's secrets) and the console are socketpairs the
    // gateway makes at spawn, QEMU's ends inherited as fds 3 and 4 (through setpriv and bwrap): connected
    // before QEMU runs, with no path anywhere that another process of QEMU's uid could connect to first.
    const ends: { ctl?: Socket; con?: Socket } = {};
    const closeChannels = () => {
      ends.ctl?.destroy();
      ends.con?.destroy();
    };

    let vmm: Sandbox;
    const consoleLines: string[] = [];
    try {
      const qemuArgv = buildQemuArgv({
        qemu,
        accel: accel.accel,
        memoryMiB: spec.limits.memoryMiB,
        cpus: spec.limits.cpus,
        kernel: image.kernel,
        initramfs: image.initramfs,
        tscKhz: hostTscKhz(),
        controlFd: CONTROL_FD,
        consoleFd: CONSOLE_FD,
        shares,
      });
      const links = usrLinks();
      const argv = buildQemuBwrapArgv({
        bwrap,
        usrLinks: links,
        runtimeDirs: ["/bin", "/sbin", "/lib", "/lib64"].filter((d) => !links.has(d)),
        imageDir: image.dir,
        shares,
        kvm: accel.accel === "kvm",
        qemuArgv,
      });
      log.debug("starting QEMU microVM", { accel: accel.accel, image: image.manifest.id, memoryMiB: spec.limits.memoryMiB, cpus: spec.limits.cpus });
      vmm = await spawnSandbox({
        serverName: spec.name,
        backend: "qemu",
        argv: [...drop, ...argv],
        env: {},
        // Node makes each extra "pipe" a unix socketpair: child.stdio[3] and [4] are the gateway's ends.
        extraStdio: ["pipe", "pipe"],
        onSpawn: (child) => {
          ends.ctl = child.stdio[CONTROL_FD] as Socket;
          ends.con = child.stdio[CONSOLE_FD] as Socket;
          // Errors (a reset when QEMU dies) are reported through `exited`.
          ends.ctl.on("error", () => {});
          ends.con.on("error", () => {});
        },
        defaultGraceMs: spec.timeouts.shutdownGraceMs,
        ...(runAs ? { details: { runAs: `${runAs.uid}:${runAs.gid}` } } : {}),
        // Our ends go with the process tree, whichever way it ends (bwrap keeps copies of QEMU's ends until then).
        cleanup: async () => closeChannels(),
      });
      const { ctl, con } = ends;
      if (!ctl || !con) {
        await vmm.stop(0);
        throw new Error("the control and console sockets were not created");
      }
      let partial = "";
      con.on("data", (d: Buffer) => {
        partial += d.toString("utf8");
        let i: number;
        while ((i = partial.indexOf("\n")) >= 0) {
          const line = partial.slice(0, i).replace(/\r$/, "");
          partial = partial.slice(i + 1);
          if (!line.trim()) continue;
          consoleLines.push(line);
          if (consoleLines.length > 50) consoleLines.shift();
          log.debug("guest console", { line });
        }
        if (partial.length > 4096) partial = "";
      });
      const bootMs = accel.accel === "tcg" ? Math.max(spec.timeouts.startupMs, 90_000) : spec.timeouts.startupMs;
      const exitedEarly = vmm.exited.then((e) => {
        throw new Error(`QEMU exited during boot: ${e.message}${consoleLines.length ? `; console: ${consoleTailText(consoleLines)}` : ""}`);
      });
      exitedEarly.catch(() => {});
      const abort = watchAbort(ctx.signal, `server "${spec.name}"`);
      const early = Promise.race([exitedEarly, abort.promise]);
      early.catch(() => {});
      // SECURITY: the guest's egress streams reach this server's own proxy socket, nothing else.
      const channel = new ControlChannel(ctl, egress ? ctx.egressSocket : null);
      channel.on("warning", (err) => log.warn(err.message));
      let channelClosed = false;
      channel.once("close", () => (channelClosed = true));
      try {
        await Promise.race([channel.waitFor("hello", bootMs), early]);
        // SECURITY: secrets go over the control channel now, after boot (see vmStartRequest).
        channel.send(vmStartRequest(spec, ctx, mounts, egress));
        await Promise.race([channel.waitFor("started", spec.timeouts.startupMs), early]);
      } catch (err) {
        // QEMU's end of the channel closes as QEMU exits, often just before its exit is seen: then how QEMU
        // ended (its code, the console's last lines) is the better reason, when it comes within a moment.
        const reason = channelClosed ? await exitReasonWithin(exitedEarly, 2000, err) : err;
        await vmm.stop(0);
        throw reason;
      } finally {
        abort.dispose();
      }
      log.info("server started in a QEMU microVM", { accel: accel.accel });
      return vmSandbox({
        backend: "qemu",
        serverName: spec.name,
        vmm,
        channel,
        defaultGraceMs: spec.timeouts.shutdownGraceMs,
        consoleTail: () => consoleLines,
        details: { ...vmm.details, accel: accel.accel, image: image.manifest.id },
      });
    } catch (err) {
      closeChannels();
      if (err instanceof NucleusError) throw err;
      throw new NucleusError("SANDBOX_START_FAILED", `server "${spec.name}" could not start in a QEMU microVM: ${(err as Error).message}`, {
        hint: "run with --log-level debug to see the guest console",
        cause: err,
      });
    }
  }
}
