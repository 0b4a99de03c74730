// Defence in depth around QEMU: a minimal bubblewrap invocation, of our own, that
// gives the QEMU process only what it needs — the read-only /usr, the image, the
// shared paths — in fresh namespaces without network. Its control and console
// channels are inherited fds, which bwrap passes on (it closes none it does not
// know), so no writable host path but the writable shares. Pure builder; not
// responsible for the guest's policy (argv.ts).

export interface QemuBwrapOptions {
  readonly bwrap: string;
  /** Host top-level merged-/usr links, e.g. /lib → usr/lib (mirrored as symlinks). */
  readonly usrLinks: ReadonlyMap<string, string>;
  /** Top-level runtime directories that are real directories on this host (no merged /usr). */
  readonly runtimeDirs: readonly string[];
  readonly imageDir: string;
  readonly shares: readonly { readonly hostPath: string; readonly writable: boolean }[];
  /** Pass /dev/kvm through. */
  readonly kvm: boolean;
  readonly qemuArgv: readonly string[];
}

export function buildQemuBwrapArgv(o: QemuBwrapOptions): string[] {
  const argv = [
    o.bwrap,
    // SECURITY: new user, mount, pid, net, ipc, uts and cgroup namespaces: QEMU sees no host
    // network (the VM has none either) and no host process.
    "--unshare-all",
    // SECURITY: QEMU dies with the gateway, never outlives it.
    "--die-with-parent",
    // SECURITY: a new session: no TIOCSTI into the gateway's terminal (CVE-2017-5226).
    "--new-session",
    "--clearenv",
    // SECURITY: QEMU needs no capability at all.
    "--cap-drop", "ALL",
    "--ro-bind", "/usr", "/usr",
  ];
  for (const [link, target] of o.usrLinks) argv.push("--symlink", target.replace(/^\//, ""), link);
  for (const d of o.runtimeDirs) argv.push("--ro-bind", d, d);
  argv.push("--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache");
  argv.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp");
  // SECURITY: /dev/kvm only when the VM runs on KVM.
  if (o.kvm) argv.push("--dev-bind", "/dev/kvm", "/dev/kvm");
  const binds: { path: string; flag: string }[] = [
    { path: o.imageDir, flag: "--ro-bind" },
    // SECURITY: read-only at the mount too, not only in QEMU's -fsdev readonly=on.
    ...o.shares.map((s) => ({ path: s.hostPath, flag: s.writable ? "--bind" : "--ro-bind" })),
  ];
  for (const b of binds.sort((a, z) => a.path.length - z.path.length)) argv.push(b.flag, b.path, b.path);
  argv.push("--chdir", "/", "--", ...o.qemuArgv);
  return argv;
}
