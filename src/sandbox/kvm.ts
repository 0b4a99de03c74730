// Whether hardware virtualization is usable here: /dev/kvm opens read-write
// AND the CPU advertises vmx/svm. Some hosts expose a /dev/kvm (a PVM module,
// as on the machines this project is built on) on which an ordinary guest
// kernel hangs; such a host counts as "no KVM". One place for backend
// selection, QEMU's accelerator choice and `doctor`.

import { closeSync, existsSync, openSync, readFileSync } from "node:fs";

export interface KvmStatus {
  readonly usable: boolean;
  readonly reason: string;
}

export function kvmStatus(cpuinfo: string = readCpuinfo()): KvmStatus {
  if (!existsSync("/dev/kvm")) return { usable: false, reason: "no /dev/kvm" };
  try {
    // Opening, not access(): root passes access() on a device the kernel then refuses.
    closeSync(openSync("/dev/kvm", "r+"));
  } catch {
    return { usable: false, reason: "/dev/kvm is not accessible to this user (add the user to the kvm group for KVM)" };
  }
  if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo)) {
    return { usable: false, reason: "/dev/kvm exists but the CPU shows no vmx/svm (no hardware virtualization)" };
  }
  return { usable: true, reason: "/dev/kvm is usable" };
}

function readCpuinfo(): string {
  try {
    return readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return "";
  }
}
