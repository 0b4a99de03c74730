// `nucleus image build`: one generic guest image (kernel + initramfs) holding
// busybox, the host's Node.js and its libraries, the guest agent and the kernel
// modules it loads. Servers' code is NOT baked in: it is shared read-only at
// launch (9p on QEMU), so one image serves every server and stays small enough
// to boot fast. Cached by the content hash of its inputs. Not responsible for launching.

import { createHash } from "node:crypto";
import { chmodSync, createWriteStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { finished } from "node:stream/promises";
import { agentFiles, agentHash } from "./agent.js";
import { writeCpio, type CpioEntry } from "./cpio.js";
import { downloadDeb, resolveKernelPackage, unpackDeb } from "./deb.js";
import { extractVmlinux } from "./kernel.js";
import { FIRECRACKER_MODULES, QEMU_MODULES, resolveModules } from "./modules.js";
import { runtimeFiles } from "./runtime.js";
import { publishImage, sealImage } from "./publish.js";
import { IMAGE_FORMAT, imageRoot, readImage, verifyImage, type GuestImage } from "./store.js";
import { sha256File } from "./verify.js";

export interface BuildOptions {
  /** The runtime to copy in (absolute); default: the Node.js running Nucleus. */
  readonly runtime?: string;
  /** Debian kernel package; default linux-image-amd64 (resolved to the versioned package). */
  readonly kernelPackage?: string;
  /** A .deb already at hand instead of `apt-get download`. */
  readonly kernelDeb?: string;
  readonly busybox?: string;
  readonly root?: string;
  readonly onProgress?: (step: string) => void;
}

const SOCAT = "/usr/bin/socat";
const TOP_LEVEL_LINKS = ["/bin", "/sbin", "/lib", "/lib64"];

/** Map a guest path through the host's merged-/usr links (/lib → usr/lib), which the image mirrors. */
function canonical(path: string, links: Map<string, string>): string {
  for (const [link, target] of links) if (path === link || path.startsWith(link + "/")) return target + path.slice(link.length);
  return path;
}

export async function buildImage(opts: BuildOptions = {}): Promise<{ image: GuestImage; cached: boolean }> {
  const progress = opts.onProgress ?? (() => {});
  const root = opts.root ?? imageRoot();
  const runtime = realpathSync(opts.runtime ?? process.execPath);
  const busybox = realpathSync(opts.busybox ?? "/bin/busybox");
  // SECURITY: explicit modes, whatever the umask: the launch refuses image dirs writable by group/other.
  if (mkdirSync(root, { recursive: true, mode: 0o755 }) !== undefined) chmodSync(root, 0o755);
  if (!existsSync(join(root, "downloads"))) {
    mkdirSync(join(root, "downloads"), { mode: 0o755 });
    chmodSync(join(root, "downloads"), 0o755);
  }

  let deb = opts.kernelDeb;
  let pkg = "user-supplied";
  if (!deb) {
    pkg = resolveKernelPackage(opts.kernelPackage ?? "linux-image-amd64");
    progress(`fetching ${pkg} (apt-get download, cached in ${join(root, "downloads")})`);
    deb = downloadDeb(pkg, join(root, "downloads")).path;
  }
  progress("hashing the inputs");
  const agent = await agentFiles();
  // Firecracker guests reach vsock through socat (Node has no AF_VSOCK); QEMU guests do not need it.
  const socat = existsSync(SOCAT) ? realpathSync(SOCAT) : null;
  const runtimeSet = [...runtimeFiles(runtime), ...(socat === SOCAT ? runtimeFiles(SOCAT) : [])];
  const h = createHash("sha256").update(`format ${IMAGE_FORMAT}\n`).update(`agent ${agentHash(agent)}\n`);
  h.update(`kernel ${await sha256File(deb)}\nbusybox ${await sha256File(busybox)}\n`);
  h.update(`modules ${[...QEMU_MODULES, ...FIRECRACKER_MODULES].join(",")}\n`);
  for (const f of runtimeSet) h.update(`runtime ${f.path} ${await sha256File(f.source)}\n`);
  const id = h.digest("hex").slice(0, 16);
  const cached = readImage(join(root, id), id);
  if ("manifest" in cached && (await verifyImage(cached)) === null) {
    progress(`image ${id} is up to date`);
    return { image: cached, cached: true };
  }
  if (!("manifest" in cached) && existsSync(join(root, id))) progress(`image ${id} is ${cached.status} (${cached.problem}): building it again`);

  const tmp = mkdtempSync(join(root, ".build-"));
  try {
    progress(`unpacking ${deb}`);
    unpackDeb(deb, join(tmp, "deb"));
    const boot = join(tmp, "deb", "boot");
    const vmlinuz = readdirSync(boot).find((n) => n.startsWith("vmlinuz-"));
    if (!vmlinuz) throw new Error(`${deb} holds no /boot/vmlinuz-*: is it a linux-image package?`);
    const release = vmlinuz.slice("vmlinuz-".length);
    progress(`extracting the ELF vmlinux from ${vmlinuz}`);
    const { vmlinux, compression } = extractVmlinux(readFileSync(join(boot, vmlinuz)));
    const out = join(tmp, "out");
    mkdirSync(out);
    writeFileSync(join(out, "vmlinux"), vmlinux);

    const links = new Map<string, string>();
    for (const l of TOP_LEVEL_LINKS) {
      if (existsSync(l) && lstatSync(l).isSymbolicLink()) links.set(l, join(dirname(l), readlinkSync(l)));
    }
    const modulesRoot = join(tmp, "deb", "lib", "modules", release);
    const modules = resolveModules(modulesRoot, [...QEMU_MODULES, ...FIRECRACKER_MODULES]);
    const guestModules = modules.map((rel) => canonical(`/lib/modules/${release}/${rel}`, links));

    const files: CpioEntry[] = [];
    const addFile = (path: string, source: string, mode = 0o755) =>
      files.push({ kind: "file", path: canonical(path, links), mode, source, size: statSync(source).size });
    const addData = (path: string, data: string | Buffer, mode = 0o644) =>
      files.push({ kind: "data", path: canonical(path, links), mode, data: Buffer.from(data) });

    addFile("/bin/busybox", busybox);
    const seen = new Set<string>();
    for (const f of runtimeSet) {
      if (seen.has(f.path)) continue;
      seen.add(f.path);
      if (f.path === f.source) addFile(f.path, f.source);
      else files.push({ kind: "symlink", path: canonical(f.path, links), target: f.source });
    }
    modules.forEach((rel, i) => addFile(guestModules[i]!, join(modulesRoot, rel), 0o644));
    addData("/nucleus/modules", guestModules.join("\n") + "\n");
    for (const f of agent) addData(`/nucleus/agent/${f.name}`, f.data);
    addData("/nucleus/agent/package.json", '{"type":"module"}\n');
    addData("/init", initScript(runtime), 0o755);
    addData("/etc/passwd", "root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
    addData("/etc/group", "root:x:0:\nnogroup:x:65534:\n");
    addData("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n");

    const dirs = new Set<string>(["/dev", "/proc", "/sys", "/tmp", "/run", "/etc", "/nucleus"].map((d) => canonical(d, links)));
    for (const f of files) for (let d = dirname(f.path); d !== "/"; d = dirname(d)) dirs.add(d);
    for (const target of links.values()) dirs.add(target);
    const entries: CpioEntry[] = [
      ...[...dirs].sort().map((path): CpioEntry => ({ kind: "dir", path })),
      ...[...links].map(([path, target]): CpioEntry => ({ kind: "symlink", path, target: target.replace(/^\//, "") })),
      { kind: "chardev", path: "/dev/console", mode: 0o600, major: 5, minor: 1 },
      { kind: "chardev", path: "/dev/null", mode: 0o666, major: 1, minor: 3 },
      ...files,
    ];
    progress(`writing the initramfs (${files.length} files)`);
    const sink = createWriteStream(join(out, "initramfs.cpio"));
    const bytes = await writeCpio(sink, entries);
    sink.end();
    await finished(sink);

    const st = statSync(runtime);
    const manifest = await sealImage(out, {
      format: IMAGE_FORMAT,
      id,
      createdAt: new Date().toISOString(),
      kernel: { package: pkg, release, compression },
      runtime: { path: runtime, size: st.size, mtimeMs: st.mtimeMs },
      vsockBridge: socat === SOCAT ? SOCAT : null,
      agentHash: agentHash(agent),
      modules: guestModules,
      initramfsBytes: bytes,
    });
    const image = await publishImage(out, root, id);
    progress(`image ${id} built (kernel ${release}, initramfs ${(bytes / 1048576).toFixed(0)} MiB, sha256 ${manifest.files.initramfs.sha256.slice(0, 12)}…)`);
    return { image, cached: false };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function initScript(runtime: string): string {
  return [
    "#!/bin/busybox sh",
    "# Nucleus guest init: mount the kernel filesystems, then hand PID 1 to the guest agent.",
    "/bin/busybox mount -t proc -o nosuid,nodev,noexec proc /proc",
    "/bin/busybox mount -t sysfs -o nosuid,nodev,noexec sysfs /sys",
    "/bin/busybox mount -t devtmpfs -o nosuid,noexec devtmpfs /dev",
    "export UV_THREADPOOL_SIZE=8",
    `exec ${runtime} /nucleus/agent/main.js`,
    "",
  ].join("\n");
}
