// Facts about this host that shape a QEMU launch: which accelerator works, the
// TSC frequency for TCG guests, the merged-/usr links. Not responsible for argv.

import { lstatSync, readFileSync, readlinkSync } from "node:fs";
import { kvmStatus } from "../../kvm.js";
import { dirname, join } from "node:path";

export interface AccelChoice {
  readonly accel: "kvm" | "tcg";
  readonly reason: string;
}

/**
 * KVM only when /dev/kvm opens read-write AND the CPU advertises hardware
 * virtualization (vmx/svm). Some hosts expose a /dev/kvm (e.g. a PVM module) on
 * which an ordinary guest kernel hangs; NUCLEUS_QEMU_ACCEL=kvm|tcg overrides.
 */
export function chooseAccel(env: NodeJS.ProcessEnv = process.env, cpuinfo = readCpuinfo()): AccelChoice {
  const forced = env.NUCLEUS_QEMU_ACCEL;
  if (forced === "kvm" || forced === "tcg") return { accel: forced, reason: `NUCLEUS_QEMU_ACCEL=${forced}` };
  const kvm = kvmStatus(cpuinfo);
  return { accel: kvm.usable ? "kvm" : "tcg", reason: kvm.reason };
}

function readCpuinfo(): string {
  try {
    return readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return "";
  }
}

/** The host's TSC frequency in kHz from /proc/cpuinfo ("cpu MHz"), or null. */
export function hostTscKhz(cpuinfo = readCpuinfo()): number | null {
  const m = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(cpuinfo);
  if (!m) return null;
  const khz = Math.round(Number(m[1]) * 1000);
  return Number.isFinite(khz) && khz > 0 ? khz : null;
}

/** /bin → /usr/bin and friends, where the host has merged /usr. */
export function usrLinks(): Map<string, string> {
  const links = new Map<string, string>();
  for (const l of ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]) {
    try {
      if (lstatSync(l).isSymbolicLink()) links.set(l, join(dirname(l), readlinkSync(l)));
    } catch {
      /* absent */
    }
  }
  return links;
}
