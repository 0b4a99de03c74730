// Where guest images live and how a backend finds one: a directory per image
// under $XDG_CACHE_HOME/nucleus/images (default ~/.cache/…), named by the
// content hash of its inputs, holding vmlinux, initramfs.cpio and manifest.json.
// Not responsible for building.

import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const IMAGE_FORMAT = 1;

export interface ImageManifest {
  readonly format: number;
  readonly id: string;
  readonly createdAt: string;
  readonly kernel: { readonly package: string; readonly release: string; readonly compression: string };
  /** The runtime copied in (e.g. node), with what identifies the host file it came from. */
  readonly runtime: { readonly path: string; readonly size: number; readonly mtimeMs: number };
  readonly agentHash: string;
  /** socat in the guest, bridging vsock for Firecracker; null when the host had none at build time. */
  readonly vsockBridge: string | null;
  /** Module paths (in the guest) the agent loads, in order. */
  readonly modules: readonly string[];
  readonly initramfsBytes: number;
}

export interface GuestImage {
  readonly dir: string;
  readonly kernel: string;
  readonly initramfs: string;
  readonly manifest: ImageManifest;
}

export function imageRoot(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith("/") ? env.XDG_CACHE_HOME : join(homedir(), ".cache");
  return join(cache, "nucleus", "images");
}

export function readImage(dir: string): GuestImage | null {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as ImageManifest;
    const kernel = join(dir, "vmlinux");
    const initramfs = join(dir, "initramfs.cpio");
    if (manifest.format !== IMAGE_FORMAT || !existsSync(kernel) || !existsSync(initramfs)) return null;
    return { dir, kernel, initramfs, manifest };
  } catch {
    return null;
  }
}

/** Complete images, newest first. */
export function listImages(root = imageRoot()): GuestImage[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => /^[0-9a-f]{16,}$/.test(n))
    .map((n) => readImage(join(root, n)))
    .filter((i): i is GuestImage => i !== null)
    .sort((a, b) => b.manifest.createdAt.localeCompare(a.manifest.createdAt));
}

export interface ImageRequirements {
  /** The runtime the server's argv[0] names (absolute host path). */
  readonly runtime: string;
  /** The agent this gateway speaks to. */
  readonly agentHash: string;
}

/** Why an image does not fit, or null when it does. */
export function imageMismatch(image: GuestImage, req: ImageRequirements): string | null {
  const m = image.manifest;
  if (m.agentHash !== req.agentHash) return "it holds another version of the guest agent";
  if (m.runtime.path !== req.runtime) return `its runtime is ${m.runtime.path}, not ${req.runtime}`;
  try {
    const st = statSync(req.runtime);
    if (st.size !== m.runtime.size || Math.trunc(st.mtimeMs) !== Math.trunc(m.runtime.mtimeMs)) return `${req.runtime} changed since the image was built`;
  } catch {
    return `${req.runtime} does not exist on this host`;
  }
  return null;
}

export function findImage(req: ImageRequirements, root = imageRoot()): { image: GuestImage | null; rejected: string[] } {
  const rejected: string[] = [];
  for (const image of listImages(root)) {
    const why = imageMismatch(image, req);
    if (!why) return { image, rejected };
    rejected.push(`${image.manifest.id}: ${why}`);
  }
  return { image: null, rejected };
}

export function removeImage(id: string, root = imageRoot()): boolean {
  if (!/^[0-9a-f]{4,}$/.test(id)) throw new Error(`"${id}" is not an image id (hex digits, as \`nucleus image ls\` prints them)`);
  const matches = listImages(root).filter((i) => i.manifest.id.startsWith(id));
  if (matches.length > 1) throw new Error(`"${id}" matches ${matches.length} images; give more digits`);
  if (matches.length === 0) return false;
  rmSync(matches[0]!.dir, { recursive: true, force: true });
  return true;
}
