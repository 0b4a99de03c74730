// Before a QEMU microVM starts as `[gateway] run_as`: can that user open what
// QEMU opens — the guest image, the shared code dirs and granted paths, /dev/kvm?
// Fails with a sentence and a hint instead of a QEMU error mid-boot. Not
// responsible for QEMU's control and console channels: inherited fds, no path.

import { NucleusError } from "../../../errors.js";
import { inaccessibleTo, type RunAs } from "../../run-as.js";
import type { GuestImage } from "../image/store.js";
import type { QemuShare } from "./argv.js";

const who = (r: RunAs) => `the run_as user (uid ${r.uid})`;

/** Throws when `runAs` cannot read the image or use a share; returns whether it can use /dev/kvm. */
export function checkRunAsAccess(serverName: string, runAs: RunAs, image: GuestImage, shares: readonly QemuShare[], kvm: boolean): { kvm: boolean } {
  // The image cache is read-only for the VM: QEMU reads the kernel and initramfs, bwrap binds the dir.
  if (inaccessibleTo(runAs, [{ path: image.dir }, { path: image.kernel }, { path: image.initramfs }]).length > 0) {
    throw new NucleusError("BACKEND_UNAVAILABLE", `the guest image ${image.dir} is not readable by ${who(runAs)}, which QEMU runs as`, {
      hint: "keep the image cache where that user can read it: build it with XDG_CACHE_HOME set to such a directory (e.g. `XDG_CACHE_HOME=/var/cache nucleus image build`) and start the gateway with the same XDG_CACHE_HOME — a cache under /root is not readable by other users",
    });
  }
  const bad = inaccessibleTo(runAs, shares.map((s) => ({ path: s.hostPath, write: s.writable })));
  if (bad.length > 0) {
    const writable = new Set(shares.filter((s) => s.writable).map((s) => s.hostPath));
    const what = bad.map((p) => `${p} (${writable.has(p) ? "read-write" : "read"})`).join(", ");
    throw new NucleusError("SANDBOX_START_FAILED", `server "${serverName}" cannot start in a QEMU microVM: ${who(runAs)} has no access to ${what}, which the VM shares`, {
      hint: "give that user access to the server's code and granted paths (and every directory above them), or remove [gateway] run_as",
    });
  }
  // Without access to /dev/kvm the VM still runs, under TCG: slower, not weaker.
  return { kvm: kvm && inaccessibleTo(runAs, [{ path: "/dev/kvm", write: true }]).length === 0 };
}
