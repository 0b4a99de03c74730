import { describe, expect, it } from "vitest";
import { buildQemuArgv, kernelCmdline, type QemuArgvOptions } from "../../../src/sandbox/microvm/qemu/argv.js";
import { buildQemuBwrapArgv } from "../../../src/sandbox/microvm/qemu/bwrap.js";
import { chooseAccel, hostTscKhz } from "../../../src/sandbox/microvm/qemu/host.js";

const base: QemuArgvOptions = {
  qemu: "/usr/bin/qemu-system-x86_64",
  accel: "tcg",
  memoryMiB: 512,
  cpus: 2,
  kernel: "/cache/img/vmlinux",
  initramfs: "/cache/img/initramfs.cpio",
  tscKhz: 2600000,
  controlFd: 3,
  consoleFd: 4,
  shares: [
    { tag: "c0", hostPath: "/srv/code/node_modules", writable: false },
    { tag: "p0", hostPath: "/home/u/docs", writable: false },
    { tag: "p1", hostPath: "/home/u/out", writable: true },
  ],
};

describe("QEMU argv", () => {
  it("matches the reviewed snapshot", () => {
    expect(buildQemuArgv(base)).toMatchSnapshot();
  });

  it("has the security-relevant flags", () => {
    const argv = buildQemuArgv(base);
    const after = (flag: string) => argv[argv.indexOf(flag) + 1];
    expect(after("-M")).toBe("microvm");
    expect(argv).toContain("-nodefaults");
    expect(argv).toContain("-no-user-config");
    expect(after("-nic")).toBe("none");
    expect(after("-sandbox")).toBe("on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    expect(argv.filter((a) => /virtio-net|netdev|-net\b/.test(a))).toEqual([]);
    const fsdevs = argv.filter((_, i) => argv[i - 1] === "-fsdev");
    expect(fsdevs[0]).toMatch(/readonly=on$/);
    expect(fsdevs[1]).toMatch(/readonly=on$/);
    expect(fsdevs[2]).not.toMatch(/readonly/);
    expect(after("-m")).toBe("512M");
    expect(after("-smp")).toBe("2");
  });

  it("puts the TSC fix on the command line for TCG only, and never a secret-bearing field", () => {
    expect(kernelCmdline({ accel: "tcg", tscKhz: 2600000 })).toContain("tsc_early_khz=2600000");
    expect(kernelCmdline({ accel: "kvm", tscKhz: 2600000 })).not.toContain("tsc_early_khz");
    expect(buildQemuArgv({ ...base, accel: "kvm" })).toContain("host");
  });

  it("connects the control channel and the console to inherited fds, never to a socket path", () => {
    const argv = buildQemuArgv(base);
    const chardevs = argv.filter((_, i) => argv[i - 1] === "-chardev");
    expect(chardevs).toEqual(["socket,id=con,fd=4", "stdio,id=mcp,signal=off", "socket,id=ctl,fd=3"]);
    // SECURITY: no listening socket and no path QEMU connects to: nothing another process could reach first.
    expect(argv.filter((a) => /path=.*\.sock|server=|\blisten/.test(a))).toEqual([]);
    expect(argv[argv.indexOf("-serial") + 1]).toBe("chardev:con");
    expect(argv).toContain("virtserialport,chardev=ctl,name=nucleus.ctl");
    expect(buildQemuArgv({ ...base, controlFd: 7, consoleFd: 9 }).filter((_, i, a) => a[i - 1] === "-chardev")).toEqual(["socket,id=con,fd=9", "stdio,id=mcp,signal=off", "socket,id=ctl,fd=7"]);
  });

  it("refuses an fd that is not an inherited one (0..2, not an integer) or one fd for both channels", () => {
    expect(() => buildQemuArgv({ ...base, controlFd: 1 })).toThrow(/invalid inherited fd 1/);
    expect(() => buildQemuArgv({ ...base, consoleFd: 3.5 })).toThrow(/invalid inherited fd/);
    expect(() => buildQemuArgv({ ...base, consoleFd: Number.NaN })).toThrow(/invalid inherited fd/);
    expect(() => buildQemuArgv({ ...base, consoleFd: 3 })).toThrow(/two different fds/);
  });

  it("refuses paths and tags that would inject QEMU options", () => {
    expect(() => buildQemuArgv({ ...base, shares: [{ tag: "c0", hostPath: "/a,readonly=off", writable: false }] })).toThrow(/comma/);
    expect(() => buildQemuArgv({ ...base, shares: [{ tag: "x,y", hostPath: "/a", writable: false }] })).toThrow(/mount tag/);
    expect(() => buildQemuArgv({ ...base, kernel: "/k,x" })).toThrow(/comma/);
  });
});

describe("bubblewrap around QEMU", () => {
  const argv = buildQemuBwrapArgv({
    bwrap: "/usr/bin/bwrap",
    usrLinks: new Map([["/lib", "/usr/lib"], ["/bin", "/usr/bin"]]),
    runtimeDirs: [],
    imageDir: "/cache/img",
    shares: base.shares,
    kvm: false,
    qemuArgv: ["/usr/bin/qemu-system-x86_64", "-M", "microvm"],
  });

  it("matches the reviewed snapshot", () => {
    expect(argv).toMatchSnapshot();
  });

  it("unshares everything, drops capabilities, binds read-only unless writable, no /dev/kvm under TCG", () => {
    expect(argv).toEqual(expect.arrayContaining(["--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]));
    const pair = (flag: string, path: string) => argv.some((a, i) => a === flag && argv[i + 1] === path && argv[i + 2] === path);
    expect(pair("--ro-bind", "/home/u/docs")).toBe(true);
    expect(pair("--ro-bind", "/srv/code/node_modules")).toBe(true);
    expect(pair("--bind", "/home/u/out")).toBe(true);
    expect(pair("--ro-bind", "/cache/img")).toBe(true);
    // The only writable binds are the writable shares (no run dir: the channels are inherited fds).
    expect(argv.filter((_, i) => argv[i - 1] === "--bind")).toEqual(["/home/u/out"]);
    expect(argv).not.toContain("/dev/kvm");
    expect(argv.slice(argv.indexOf("--") + 1)).toEqual(["/usr/bin/qemu-system-x86_64", "-M", "microvm"]);
  });
});

describe("host facts", () => {
  it("reads the TSC frequency from cpuinfo", () => {
    expect(hostTscKhz("processor: 0\ncpu MHz\t\t: 2599.998\n")).toBe(2599998);
    expect(hostTscKhz("nothing")).toBeNull();
  });

  it("honours NUCLEUS_QEMU_ACCEL and wants vmx/svm for KVM", () => {
    expect(chooseAccel({ NUCLEUS_QEMU_ACCEL: "tcg" }).accel).toBe("tcg");
    expect(chooseAccel({}, "flags\t: fpu sse2\n").accel).toBe("tcg");
  });
});
