// Syscall numbers and audit arch values for the architectures the seccomp
// filter supports (x86_64 from asm/unistd_64.h, aarch64 from the generic
// asm-generic/unistd.h table). Not responsible for deciding what is denied.

export type SeccompArch = "x86_64" | "aarch64";

/** AUDIT_ARCH_* (linux/audit.h): EM_* | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE. */
export const AUDIT_ARCH: Record<SeccompArch, number> = {
  x86_64: 0xc000003e,
  aarch64: 0xc00000b7,
};

/** x32 syscalls on x86_64 have this bit set; a filter must not let them bypass the 64-bit table. */
export const X32_SYSCALL_BIT = 0x40000000;

type Table = Readonly<Record<string, number>>;

const x86_64: Table = {
  ioctl: 16, socket: 41, clone: 56, personality: 135, vhangup: 153, pivot_root: 155, adjtimex: 159,
  chroot: 161, acct: 163, settimeofday: 164, mount: 165, umount2: 166, swapon: 167, swapoff: 168,
  reboot: 169, sethostname: 170, setdomainname: 171, iopl: 172, ioperm: 173, init_module: 175,
  delete_module: 176, quotactl: 179, syslog: 103, ptrace: 101, lookup_dcookie: 212, clock_settime: 227,
  kexec_load: 246, add_key: 248, request_key: 249, keyctl: 250, unshare: 272, perf_event_open: 298,
  name_to_handle_at: 303, open_by_handle_at: 304, clock_adjtime: 305, setns: 308, process_vm_readv: 310,
  process_vm_writev: 311, finit_module: 313, kexec_file_load: 320, bpf: 321, userfaultfd: 323,
  io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427, open_tree: 428, move_mount: 429,
  fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, clone3: 435, pidfd_getfd: 438, mount_setattr: 442, open_tree_attr: 467,
};

const aarch64: Table = {
  lookup_dcookie: 18, ioctl: 29, umount2: 39, mount: 40, pivot_root: 41, chroot: 51, vhangup: 58,
  quotactl: 60, acct: 89, personality: 92, unshare: 97, kexec_load: 104, init_module: 105,
  delete_module: 106, clock_settime: 112, syslog: 116, ptrace: 117, reboot: 142, sethostname: 161,
  setdomainname: 162, settimeofday: 170, adjtimex: 171, socket: 198, add_key: 217, request_key: 218,
  keyctl: 219, clone: 220, swapon: 224, swapoff: 225, perf_event_open: 241, name_to_handle_at: 264,
  open_by_handle_at: 265, clock_adjtime: 266, setns: 268, process_vm_readv: 270, process_vm_writev: 271,
  finit_module: 273, bpf: 280, userfaultfd: 282, kexec_file_load: 294, io_uring_setup: 425,
  io_uring_enter: 426, io_uring_register: 427, open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431,
  fsmount: 432, fspick: 433, clone3: 435, pidfd_getfd: 438, mount_setattr: 442, open_tree_attr: 467,
};

export const SYSCALLS: Record<SeccompArch, Table> = { x86_64, aarch64 };

/** The number of `name` on `arch`, or undefined where the arch has no such syscall (iopl on aarch64). */
export function syscallNumber(arch: SeccompArch, name: string): number | undefined {
  return SYSCALLS[arch][name];
}

/** Node's `process.arch` → seccomp arch, or null when unsupported. */
export function seccompArchOf(nodeArch: string): SeccompArch | null {
  return nodeArch === "x64" ? "x86_64" : nodeArch === "arm64" ? "aarch64" : null;
}
