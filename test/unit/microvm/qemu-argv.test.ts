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
  controlSocket: "/tmp/run/ctl.sock",
  consoleSocket: "/tmp/run/con.sock",
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
    runDir: "/tmp/run",
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
