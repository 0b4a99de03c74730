import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { assemble, decode, emulate, encode, errno, jeq, label, ld, ret, Ret } from "../../../src/sandbox/seccomp/bpf.js";
import {
  AF_INET, AF_INET6, AF_UNIX, DENIED_SYSCALLS, EAFNOSUPPORT, ENOSYS, EPERM, TIOCLINUX, TIOCSTI,
  buildSeccompFilter, filterProgram,
} from "../../../src/sandbox/seccomp/filter.js";
import { AUDIT_ARCH, SYSCALLS, syscallNumber, type SeccompArch } from "../../../src/sandbox/seccomp/syscalls.js";

const ARCHES: SeccompArch[] = ["x86_64", "aarch64"];

describe("seccomp assembler", () => {
  it("encodes struct sock_filter little-endian and resolves labels", () => {
    const insns = assemble([ld(4), jeq(0xc000003e, "ok", 0), ret(Ret.KILL_PROCESS), label("ok"), ret(Ret.ALLOW)]);
    expect(insns).toEqual([
      { code: 0x20, jt: 0, jf: 0, k: 4 },
      { code: 0x15, jt: 1, jf: 0, k: 0xc000003e },
      { code: 0x06, jt: 0, jf: 0, k: 0x80000000 },
      { code: 0x06, jt: 0, jf: 0, k: 0x7fff0000 },
    ]);
    expect(encode(insns).toString("hex")).toBe("2000000004000000" + "150001003e0000c0" + "0600000000000080" + "060000000000ff7f");
    expect(decode(encode(insns))).toEqual(insns);
  });

  it("rejects unknown labels, backward jumps and duplicate labels", () => {
    expect(() => assemble([jeq(1, "nowhere", 0), ret(0)])).toThrow(/unknown label/);
    expect(() => assemble([label("a"), ret(0), jeq(1, "a", 0), ret(0)])).toThrow(/out of range/);
    expect(() => assemble([label("a"), label("a"), ret(0)])).toThrow(/twice/);
  });

  it("knows syscall numbers from the kernel tables", () => {
    expect([syscallNumber("x86_64", "ptrace"), syscallNumber("aarch64", "ptrace")]).toEqual([101, 117]);
    expect([syscallNumber("x86_64", "unshare"), syscallNumber("aarch64", "unshare")]).toEqual([272, 97]);
    expect([syscallNumber("x86_64", "mount"), syscallNumber("aarch64", "mount")]).toEqual([165, 40]);
    expect([syscallNumber("x86_64", "socket"), syscallNumber("aarch64", "socket")]).toEqual([41, 198]);
    expect([syscallNumber("x86_64", "ioctl"), syscallNumber("aarch64", "ioctl")]).toEqual([16, 29]);
    expect([syscallNumber("x86_64", "clone"), syscallNumber("aarch64", "clone")]).toEqual([56, 220]);
    expect([syscallNumber("x86_64", "bpf"), syscallNumber("aarch64", "bpf")]).toEqual([321, 280]);
    expect(syscallNumber("aarch64", "iopl")).toBeUndefined();
  });

  const header = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
  it.skipIf(!existsSync(header))(`matches ${header} for every x86_64 entry (skipped: kernel headers not installed)`, () => {
    const text = readFileSync(header, "utf8");
    for (const [name, nr] of Object.entries(SYSCALLS.x86_64)) {
      const m = new RegExp(`#define __NR_${name}\\s+(\\d+)`).exec(text);
      if (m) expect([name, Number(m[1])]).toEqual([name, nr]);
    }
  });
});

describe.each(ARCHES)("seccomp filter on %s", (arch) => {
  const prog = assemble(filterProgram({ arch, allowInet: false }));
  const inet = assemble(filterProgram({ arch, allowInet: true }));
  const run = (p: typeof prog, name: string, args: bigint[] = []) =>
    emulate(p, { arch: AUDIT_ARCH[arch], nr: SYSCALLS[arch][name]!, args });

  it("denies every listed syscall with EPERM and allows ordinary ones", () => {
    for (const name of DENIED_SYSCALLS) {
      if (syscallNumber(arch, name) === undefined) continue;
      expect([name, run(prog, name)]).toEqual([name, errno(EPERM)]);
    }
    expect(emulate(prog, { arch: AUDIT_ARCH[arch], nr: 0 })).toBe(Ret.ALLOW);
    expect(emulate(prog, { arch: AUDIT_ARCH[arch], nr: 63 })).toBe(Ret.ALLOW);
  });

  it("answers clone3 and io_uring with ENOSYS", () => {
    for (const n of ["clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"]) expect(run(prog, n)).toBe(errno(ENOSYS));
  });

  it("kills a syscall made under another architecture", () => {
    const other = arch === "x86_64" ? AUDIT_ARCH.aarch64 : AUDIT_ARCH.x86_64;
    expect(emulate(prog, { arch: other, nr: 0 })).toBe(Ret.KILL_PROCESS);
  });

  it("allows clone for threads and forks but not with namespace flags", () => {
    expect(run(prog, "clone", [0x3d0f00n])).toBe(Ret.ALLOW); // pthread_create flags
    expect(run(prog, "clone", [17n])).toBe(Ret.ALLOW); // fork: SIGCHLD
    expect(run(prog, "clone", [0x10000000n | 17n])).toBe(errno(EPERM)); // CLONE_NEWUSER
    expect(run(prog, "clone", [0x40000000n])).toBe(errno(EPERM)); // CLONE_NEWNET
  });

  it("denies TIOCSTI and TIOCLINUX, including with high bits set, and allows other ioctls", () => {
    expect(run(prog, "ioctl", [1n, BigInt(TIOCSTI)])).toBe(errno(EPERM));
    expect(run(prog, "ioctl", [1n, BigInt(TIOCLINUX)])).toBe(errno(EPERM));
    expect(run(prog, "ioctl", [1n, (1n << 32n) | BigInt(TIOCSTI)])).toBe(errno(EPERM));
    expect(run(prog, "ioctl", [1n, 0x5401n])).toBe(Ret.ALLOW); // TCGETS
  });

  it("allows unix sockets only; IP sockets only in allowlist mode; never netlink or packet", () => {
    expect(run(prog, "socket", [BigInt(AF_UNIX)])).toBe(Ret.ALLOW);
    expect(run(prog, "socket", [BigInt(AF_INET)])).toBe(errno(EAFNOSUPPORT));
    expect(run(prog, "socket", [BigInt(AF_INET6)])).toBe(errno(EAFNOSUPPORT));
    expect(run(inet, "socket", [BigInt(AF_INET)])).toBe(Ret.ALLOW);
    expect(run(inet, "socket", [BigInt(AF_INET6)])).toBe(Ret.ALLOW);
    for (const p of [prog, inet]) {
      expect(run(p, "socket", [16n])).toBe(errno(EAFNOSUPPORT)); // AF_NETLINK
      expect(run(p, "socket", [17n])).toBe(errno(EAFNOSUPPORT)); // AF_PACKET
      expect(run(p, "socket", [40n])).toBe(errno(EAFNOSUPPORT)); // AF_VSOCK
    }
  });

  it("builds a raw program bwrap accepts (multiple of 8 bytes, under 4096 instructions)", () => {
    const buf = buildSeccompFilter({ arch, allowInet: false });
    expect(buf.length % 8).toBe(0);
    expect(decode(buf)).toEqual(prog);
  });
});

describe("x32 ABI", () => {
  it("refuses x32 syscall numbers on x86_64", () => {
    const prog = assemble(filterProgram({ arch: "x86_64", allowInet: false }));
    expect(emulate(prog, { arch: AUDIT_ARCH.x86_64, nr: 0x40000000 + 101 })).toBe(errno(ENOSYS));
  });
});
