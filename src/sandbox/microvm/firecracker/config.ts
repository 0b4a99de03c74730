// The Firecracker API requests that configure and start one microVM, built by
// one pure function: machine-config, boot-source (our vmlinux + initramfs),
// read-only drives for granted paths, a hybrid vsock device — and no
// network-interfaces at all. Not responsible for sending them (api.ts).

export interface FirecrackerRequest {
  readonly method: "PUT" | "PATCH" | "GET";
  readonly path: string;
  readonly body: Record<string, unknown> | null;
}

export interface FirecrackerVmOptions {
  readonly kernel: string;
  readonly initramfs: string;
  readonly memoryMiB: number;
  readonly cpus: number;
  /** Host unix socket of the hybrid vsock device (Firecracker creates it). */
  readonly vsockUds: string;
  /** Read-only block images, one per granted path, attached as /dev/vdb, /dev/vdc, … in order. */
  readonly drives: readonly { readonly id: string; readonly image: string }[];
}

/** Kernel arguments: no secrets, ever (they are readable in the guest's /proc/cmdline). */
export function firecrackerBootArgs(): string {
  return ["console=ttyS0", "quiet", "loglevel=4", "reboot=k", "panic=1", "pci=off", "rdinit=/init", "nucleus.channel=vsock"].join(" ");
}

export const GUEST_CID = 3;

export function buildFirecrackerRequests(o: FirecrackerVmOptions): FirecrackerRequest[] {
  if (!Number.isInteger(o.cpus) || o.cpus < 1 || o.cpus > 32) throw new Error(`Firecracker supports 1 to 32 vCPUs; the policy asks for ${o.cpus}`);
  if (!Number.isInteger(o.memoryMiB) || o.memoryMiB < 64) throw new Error(`a microVM needs at least 64 MiB; the policy gives ${o.memoryMiB}`);
  const requests: FirecrackerRequest[] = [
    { method: "PUT", path: "/machine-config", body: { vcpu_count: o.cpus, mem_size_mib: o.memoryMiB, smt: false } },
    {
      method: "PUT",
      path: "/boot-source",
      body: { kernel_image_path: o.kernel, initrd_path: o.initramfs, boot_args: firecrackerBootArgs() },
    },
  ];
  for (const d of o.drives) {
    if (!/^[A-Za-z0-9_]{1,32}$/.test(d.id)) throw new Error(`invalid drive id "${d.id}"`);
    requests.push({
      method: "PUT",
      path: `/drives/${d.id}`,
      // SECURITY: granted paths are read-only block devices; write access is a gap (refused).
      body: { drive_id: d.id, path_on_host: d.image, is_root_device: false, is_read_only: true },
    });
  }
  // SECURITY: vsock is the only way in or out; no /network-interfaces request is ever sent.
  requests.push({ method: "PUT", path: "/vsock", body: { guest_cid: GUEST_CID, uds_path: o.vsockUds } });
  requests.push({ method: "PUT", path: "/actions", body: { action_type: "InstanceStart" } });
  return requests;
}

/** Ask the guest to reboot (Firecracker then exits): the polite stop when the agent does not answer. */
export function ctrlAltDel(): FirecrackerRequest {
  return { method: "PUT", path: "/actions", body: { action_type: "SendCtrlAltDel" } };
}
