// The QEMU command line of one microVM, built by one pure function so that it
// can be read and snapshot-tested as the security code it is. Not responsible
// for running it (backend.ts) or for confining QEMU itself (bwrap.ts).

import { PORT_CONTROL, PORT_MCP } from "../../../agent/guest/protocol.js";

export interface QemuShare {
  /** 9p mount tag, [a-z0-9]{1,31}. */
  readonly tag: string;
  readonly hostPath: string;
  readonly writable: boolean;
}

export interface QemuArgvOptions {
  readonly qemu: string;
  readonly accel: "kvm" | "tcg";
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly kernel: string;
  readonly initramfs: string;
  /** Host TSC frequency in kHz (TCG: fixes the early TSC calibration hang); null to omit. */
  readonly tscKhz: number | null;
  /** QEMU's inherited fd of a connected socket whose other end is the gateway's: the control port. */
  readonly controlFd: number;
  /** QEMU's inherited fd of a connected socket whose other end is the gateway's: the guest console. */
  readonly consoleFd: number;
  readonly shares: readonly QemuShare[];
}

export function kernelCmdline(o: Pick<QemuArgvOptions, "accel" | "tscKhz">): string {
  return [
    "console=ttyS0",
    "quiet",
    "loglevel=4",
    // A kernel panic (e.g. the agent, PID 1, dying) reboots at once, and -no-reboot turns that into QEMU's exit.
    "panic=-1",
    "reboot=t",
    "8250.nr_uarts=1",
    "rdinit=/init",
    ...(o.accel === "tcg" && o.tscKhz ? [`tsc_early_khz=${o.tscKhz}`] : []),
  ].join(" ");
}

export function buildQemuArgv(o: QemuArgvOptions): string[] {
  for (const s of o.shares) {
    if (!/^[a-z0-9]{1,31}$/.test(s.tag)) throw new Error(`invalid 9p mount tag "${s.tag}"`);
    // QEMU's option parser splits on commas; a path with one would inject options.
    if (s.hostPath.includes(",")) throw new Error(`cannot share ${s.hostPath}: QEMU does not accept commas in shared paths`);
  }
  for (const p of [o.kernel, o.initramfs]) {
    if (p.includes(",")) throw new Error(`QEMU cannot take the path ${p}: it contains a comma`);
  }
  for (const fd of [o.controlFd, o.consoleFd]) {
    if (!Number.isInteger(fd) || fd < 3) throw new Error(`invalid inherited fd ${fd} for a QEMU chardev: it must be an integer of 3 or more`);
  }
  if (o.controlFd === o.consoleFd) throw new Error("the control channel and the console need two different fds");
  const argv = [
    o.qemu,
    "-M", "microvm",
    "-accel", o.accel,
    // TCG: every feature it emulates (Node needs more than qemu64's SSE2); KVM: the host CPU.
    "-cpu", o.accel === "kvm" ? "host" : "max",
    "-m", `${o.memoryMiB}M`,
    "-smp", String(o.cpus),
    // SECURITY: no default devices (no NIC, no VGA, no floppy, no monitor), no user config files.
    "-nodefaults",
    "-no-user-config",
    "-nographic",
    // SECURITY: no network device at all: the guest's only ways out are the ports below.
    "-nic", "none",
    // A guest reset (the agent's power-off, a kernel panic) ends QEMU instead of rebooting.
    "-no-reboot",
    // SECURITY: QEMU's own seccomp filter: no obsolete syscalls, no setuid/capabilities,
    // no fork/exec, no scheduler/affinity changes — a compromised QEMU stays contained.
    "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    "-kernel", o.kernel,
    "-initrd", o.initramfs,
    "-append", kernelCmdline(o),
    // SECURITY: both sockets below are already connected, inherited fds (a socketpair per channel made by the
    // gateway at spawn): no listening socket, no path another process of QEMU's uid could connect to first.
    // Guest console (kernel messages, the agent's diagnostics) → the host's log.
    "-chardev", `socket,id=con,fd=${o.consoleFd}`,
    "-serial", "chardev:con",
    "-device", "virtio-serial-device,max_ports=4",
    // The MCP stream is QEMU's own stdin/stdout: the Sandbox's stdio, no relay on the host.
    "-chardev", "stdio,id=mcp,signal=off",
    "-device", `virtserialport,chardev=mcp,name=${PORT_MCP}`,
    "-chardev", `socket,id=ctl,fd=${o.controlFd}`,
    "-device", `virtserialport,chardev=ctl,name=${PORT_CONTROL}`,
  ];
  for (const s of o.shares) {
    argv.push(
      "-fsdev",
      // SECURITY: readonly=on makes QEMU refuse every write to a path not granted as writable.
      `local,id=${s.tag},path=${s.hostPath},security_model=none,multidevs=remap${s.writable ? "" : ",readonly=on"}`,
      "-device",
      `virtio-9p-device,fsdev=${s.tag},mount_tag=${s.tag}`,
    );
  }
  return argv;
}
