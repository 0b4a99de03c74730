// Rules of a ServerSpec that a microVM backend cannot keep (yet), shared by the
// QEMU and Firecracker backends. Any gap refuses the start. Not responsible for
// the backend-specific ones (each backend adds its own).

import type { ServerSpec } from "../../config/spec.js";
import type { Gap } from "../backend.js";

/** Guest paths a share must not cover: they hold the runtime, the agent and the kernel's filesystems. */
const GUEST_RESERVED = ["/", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/dev", "/proc", "/sys", "/run", "/nucleus", "/init"];

/** Guest RAM the image needs: the initramfs unpacked into RAM, the kernel, Node's own heap. */
export function minimumMemoryMiB(initramfsBytes: number): number {
  return Math.ceil(initramfsBytes / 1048576) + 160;
}

/** `egress`: the backend relays the guest's egress streams to the server's proxy (QEMU and Firecracker do). */
export function commonVmGaps(
  spec: ServerSpec,
  backend: string,
  image: { runtime: string; initramfsBytes: number } | null,
  opts: { readonly egress: boolean } = { egress: false },
): Gap[] {
  const imageRuntime = image?.runtime ?? null;
  const p = `servers.${spec.name}`;
  const gaps: Gap[] = [];
  if (spec.network.mode !== "none" && !opts.egress) {
    // SECURITY: fail closed where the backend does not carry egress streams to the host's proxy.
    gaps.push({
      rule: `${p}.allowed_hosts`,
      message: `server "${spec.name}" has a network allowlist, and egress for microVMs needs the egress proxy, which the ${backend} backend does not use yet`,
      hint: `use backend = "qemu" or "bubblewrap" for this server, or set network = "none"`,
    });
  }
  const argv0 = spec.launch.argv[0];
  if (argv0 && imageRuntime && argv0 !== imageRuntime) {
    gaps.push({
      rule: `${p}.command`,
      message: `server "${spec.name}" runs ${argv0}, but the guest image holds only the runtime ${imageRuntime}`,
      hint: `run the server with ${imageRuntime}, or rebuild the image with that runtime (\`nucleus image build --runtime ${argv0}\`)`,
    });
  }
  // The script a runtime is given must be in the guest: under a code dir or a granted path.
  const script = spec.launch.argv[1];
  const shared = [...spec.launch.codeDirs, ...spec.paths.map((g) => g.path)];
  if (script?.startsWith("/") && !shared.some((d) => script === d || script.startsWith(d.endsWith("/") ? d : d + "/"))) {
    gaps.push({
      rule: `${p}.command`,
      message: `server "${spec.name}" starts ${script}, which is not shared into the microVM (it is in none of the server's code directories or allowed paths)`,
      hint: "install the server as a package, or add its directory to allowed_paths",
    });
  }
  spec.paths.forEach((g, i) => {
    const bad = GUEST_RESERVED.find((r) => g.path === r || (r !== "/" && r.startsWith(g.path + "/")));
    if (bad || g.path.startsWith("/usr/") || g.path.startsWith("/nucleus/")) {
      gaps.push({
        rule: `${p}.allowed_paths[${i}]`,
        message: `${g.path} would cover the guest's own ${bad ?? g.path} in the microVM`,
        hint: "grant a directory below it instead",
      });
    }
    if (g.path.includes(",")) {
      gaps.push({ rule: `${p}.allowed_paths[${i}]`, message: `${g.path} contains a comma, which QEMU's option syntax cannot carry`, hint: "rename the directory or grant its parent" });
    }
  });
  if (image && spec.limits.memoryMiB < minimumMemoryMiB(image.initramfsBytes)) {
    const min = minimumMemoryMiB(image.initramfsBytes);
    gaps.push({
      rule: `${p}.memory_mib`,
      message: `server "${spec.name}" is limited to ${spec.limits.memoryMiB} MiB, and its microVM needs at least ${min} MiB (the guest image alone is ${Math.ceil(image.initramfsBytes / 1048576)} MiB)`,
      hint: `raise memory_mib to ${min} or more for this server`,
    });
  }
  if (spec.limits.explicit.pids) {
    gaps.push({
      rule: `${p}.pids`,
      message: `a pids limit is not enforced inside a microVM (memory and vCPUs are)`,
      hint: `drop the pids limit for this server, or use backend = "bubblewrap"`,
    });
  }
  return gaps;
}

export function imageFacts(image: { manifest: { runtime: { path: string }; initramfsBytes: number } } | null): { runtime: string; initramfsBytes: number } | null {
  return image ? { runtime: image.manifest.runtime.path, initramfsBytes: image.manifest.initramfsBytes } : null;
}
