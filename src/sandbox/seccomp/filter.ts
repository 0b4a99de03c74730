// The seccomp policy for sandboxed servers: a deny-list of syscalls that widen
// the kernel attack surface or escape the namespaces bubblewrap sets up,
// compiled to classic BPF for bwrap's `--seccomp FD`. Pure: no I/O.
// Not responsible for loading the filter (bwrap does that before exec).

import { Data, assemble, encode, errno, jeq, jge, jset, label, ld, ret, Ret, type Insn } from "./bpf.js";
import { AUDIT_ARCH, SYSCALLS, X32_SYSCALL_BIT, type SeccompArch } from "./syscalls.js";

export const EPERM = 1;
export const ENOSYS = 38;
export const EAFNOSUPPORT = 97;

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;

/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME. */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080;

/** Denied outright with EPERM. */
export const DENIED_SYSCALLS: readonly string[] = [
  // SECURITY: inspecting or writing another process's memory, or taking its file descriptors.
  "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
  // SECURITY: changing the filesystem view (old and new mount API).
  "mount", "umount2", "pivot_root", "chroot", "open_tree", "open_tree_attr", "move_mount", "fsopen",
  "fsconfig", "fsmount", "fspick", "mount_setattr",
  // SECURITY: entering or creating namespaces (clone is filtered by flags below).
  "unshare", "setns",
  // SECURITY: large kernel attack surface with a history of privilege escalations.
  "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
  "name_to_handle_at", "open_by_handle_at", "lookup_dcookie",
  // SECURITY: host-wide administration, never needed by an MCP server.
  "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon",
  "swapoff", "acct", "syslog", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime", "iopl",
  "ioperm", "sethostname", "setdomainname", "quotactl", "vhangup",
];

/** Denied with ENOSYS so that libc and libuv fall back to older interfaces. */
export const UNAVAILABLE_SYSCALLS: readonly string[] = [
  // SECURITY: clone3 passes its flags in memory the filter cannot inspect; ENOSYS makes glibc use clone.
  "clone3",
  // SECURITY: io_uring bypasses seccomp for the operations it performs.
  "io_uring_setup", "io_uring_enter", "io_uring_register",
];

export interface FilterOptions {
  readonly arch: SeccompArch;
  /** Allow AF_INET/AF_INET6 sockets (egress allowlist mode: the in-sandbox agent listens on loopback). */
  readonly allowInet: boolean;
}

/** The filter as an instruction list (before assembly), for tests that read it. */
export function filterProgram(opts: FilterOptions): Insn[] {
  const table = SYSCALLS[opts.arch];
  const nr = (name: string): number | undefined => table[name];
  const p: Insn[] = [
    ld(Data.arch),
    // SECURITY: a syscall made under another ABI (e.g. i386 via int 0x80) has other numbers: kill.
    jeq(AUDIT_ARCH[opts.arch], 1, 0),
    ret(Ret.KILL_PROCESS),
    ld(Data.nr),
  ];
  if (opts.arch === "x86_64") {
    // SECURITY: x32 syscalls (bit 30 set) would otherwise bypass every check below.
    p.push(jge(X32_SYSCALL_BIT, 0, 1), ret(errno(ENOSYS)));
  }
  const denyAll = (names: readonly string[], e: number) => {
    for (const name of names) {
      const n = nr(name);
      if (n === undefined) continue; // the arch has no such syscall (iopl on aarch64)
      p.push(jeq(n, 0, 1), ret(errno(e)));
    }
  };
  denyAll(DENIED_SYSCALLS, EPERM);
  denyAll(UNAVAILABLE_SYSCALLS, ENOSYS);

  // SECURITY: clone with any CLONE_NEW* flag creates namespaces (the user namespace is the usual first step of an escape).
  p.push(jeq(nr("clone")!, 0, "after-clone"), ld(Data.argLow(0)), jset(CLONE_NAMESPACE_FLAGS, 0, 1));
  p.push(ret(errno(EPERM)), ret(Ret.ALLOW), label("after-clone"));

  // SECURITY: TIOCSTI pushes input into a terminal (CVE-2017-5226), TIOCLINUX does similar on the console.
  // The kernel reads cmd as an unsigned int, so the low word is the whole command.
  p.push(jeq(nr("ioctl")!, 0, "after-ioctl"), ld(Data.argLow(1)), jeq(TIOCSTI, "deny-ioctl", 0), jeq(TIOCLINUX, "deny-ioctl", 0));
  p.push(ret(Ret.ALLOW), label("deny-ioctl"), ret(errno(EPERM)), label("after-ioctl"));

  // SECURITY: only unix sockets (plus IP sockets in allowlist mode): no netlink, packet, raw-link, vsock,
  // bluetooth, ... With network = "none" AF_INET/AF_INET6 are denied too, beside the empty netns.
  p.push(jeq(nr("socket")!, 0, "after-socket"), ld(Data.argLow(0)), jeq(AF_UNIX, "allow-socket", 0));
  if (opts.allowInet) p.push(jeq(AF_INET, "allow-socket", 0), jeq(AF_INET6, "allow-socket", 0));
  p.push(ret(errno(EAFNOSUPPORT)), label("allow-socket"), ret(Ret.ALLOW), label("after-socket"));

  p.push(ret(Ret.ALLOW));
  return p;
}

/** The raw BPF program (struct sock_filter[]) bwrap reads from `--seccomp FD`. */
export function buildSeccompFilter(opts: FilterOptions): Buffer {
  return encode(assemble(filterProgram(opts)));
}
