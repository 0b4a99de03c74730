// Where guest images live and how a backend finds one: a directory per image
// under $XDG_CACHE_HOME/nucleus/images (default ~/.cache/…), named by the
// content hash of its inputs, holding vmlinux, initramfs.cpio and manifest.json
// (which records both files' size and SHA-256). Not responsible for building.

import { existsSync, lstatSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { nucleusCacheDir } from "../../../cache-dir.js";
import { join } from "node:path";
import { fileProblem, ownershipProblem, sha256Handle, type FileDigest, type FileHasher } from "./verify.js";

/** 2: the manifest records the files' hashes (format 1 had none). Part of the image id. */
export const IMAGE_FORMAT = 2;
const ID = /^[0-9a-f]{16,}$/;
/** Clock skew tolerated before a createdAt counts as "in the future". */
const FUTURE_SKEW_MS = 5 * 60_000;
export const REBUILD_HINT = "remove it with `nucleus image rm ID` and run `nucleus image build` again";

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
  /** Size and SHA-256 of the two files a VM boots, checked before a launch uses them. */
  readonly files: { readonly vmlinux: FileDigest; readonly initramfs: FileDigest };
}

export interface GuestImage {
  readonly dir: string;
  readonly kernel: string;
  readonly initramfs: string;
  readonly manifest: ImageManifest;
}

/** A directory entry of the image root that is not a usable image, and why. */
export interface UnusableImage {
  readonly name: string;
  readonly dir: string;
  /** damaged: refuse it; outdated: an older Nucleus built it (no file hashes); foreign: not an image dir of ours (link, other owner). */
  readonly status: "damaged" | "outdated" | "foreign";
  readonly problem: string;
}

export interface ImageScan {
  /** Entries whose dir and manifest look right, newest first; their files are not hashed yet (verifyImage). */
  readonly images: GuestImage[];
  readonly unusable: UnusableImage[];
}

export function imageRoot(env: NodeJS.ProcessEnv = process.env): string {
  return join(nucleusCacheDir(env), "images");
}

function isDigest(d: unknown): d is FileDigest {
  const x = d as FileDigest | null;
  return typeof x === "object" && x !== null && Number.isSafeInteger(x.size) && typeof x.sha256 === "string" && /^[0-9a-f]{64}$/.test(x.sha256);
}

/** The image in `dir` if its dir and manifest look right (no hashing), else why not. */
export function readImage(dir: string, name: string, now = Date.now()): GuestImage | UnusableImage {
  const unusable = (status: UnusableImage["status"], problem: string): UnusableImage => ({ name, dir, status, problem });
  try {
    // SECURITY: lstat — a symlink planted in the cache (→ a dir elsewhere) is never followed.
    const foreign = ownershipProblem(lstatSync(dir), "the image directory", "dir");
    if (foreign) return unusable("foreign", foreign);
    const manifestPath = join(dir, "manifest.json");
    const bad = ownershipProblem(lstatSync(manifestPath), "manifest.json", "file");
    if (bad) return unusable("damaged", bad);
    const m = JSON.parse(readFileSync(manifestPath, "utf8")) as ImageManifest;
    if (m.format === 1 || (m.format === IMAGE_FORMAT && m.files === undefined)) {
      return unusable("outdated", "an older Nucleus built it and recorded no file hashes, so it cannot be checked: rebuild it");
    }
    if (m.format !== IMAGE_FORMAT) return unusable("damaged", `its manifest has format ${String(m.format)}, not ${IMAGE_FORMAT}`);
    if (m.id !== name) return unusable("damaged", `its manifest names image ${String(m.id)}, not ${name}`);
    if (!isDigest(m.files?.vmlinux) || !isDigest(m.files?.initramfs)) return unusable("damaged", "its manifest's file hashes are malformed");
    const created = Date.parse(m.createdAt);
    if (!Number.isFinite(created)) return unusable("damaged", "its manifest's createdAt is not a date");
    // SECURITY: a planted manifest dated in the future would otherwise always be "newest" and picked first.
    if (created > now + FUTURE_SKEW_MS) return unusable("damaged", `its manifest's createdAt (${m.createdAt}) is in the future`);
    return { dir, kernel: join(dir, "vmlinux"), initramfs: join(dir, "initramfs.cpio"), manifest: m };
  } catch (err) {
    return unusable("damaged", `it is incomplete or unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Every image-named entry of `root`: plausible images newest first (files not hashed), and the rest with why. */
export function scanImages(root = imageRoot()): ImageScan {
  const images: GuestImage[] = [];
  const unusable: UnusableImage[] = [];
  if (!existsSync(root)) return { images, unusable };
  const now = Date.now();
  for (const name of readdirSync(root).filter((n) => ID.test(n)).sort()) {
    const r = readImage(join(root, name), name, now);
    if ("manifest" in r) images.push(r);
    else unusable.push(r);
  }
  images.sort((a, b) => Date.parse(b.manifest.createdAt) - Date.parse(a.manifest.createdAt));
  return { images, unusable };
}

/** Why `image`'s files are not the ones built (hashing each file once per process), or null when they are. */
export async function verifyImage(image: GuestImage, hash: FileHasher = sha256Handle): Promise<string | null> {
  const f = image.manifest.files;
  return (await fileProblem(image.kernel, "vmlinux", f.vmlinux, hash)) ?? (await fileProblem(image.initramfs, "initramfs.cpio", f.initramfs, hash));
}

/** Every image-named entry, each image's files checked: usable images newest first, the rest with why. */
export async function listImages(root = imageRoot(), hash: FileHasher = sha256Handle): Promise<ImageScan> {
  const scan = scanImages(root);
  const images: GuestImage[] = [];
  const unusable = [...scan.unusable];
  for (const image of scan.images) {
    const problem = await verifyImage(image, hash);
    if (problem) unusable.push({ name: image.manifest.id, dir: image.dir, status: "damaged", problem });
    else images.push(image);
  }
  return { images, unusable };
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

export interface ImageChoice {
  /** The newest image that fits, its files checked; null when none fits. */
  readonly image: GuestImage | null;
  /** Set when the newest fitting image failed its check: it is refused, never replaced by an older one. */
  readonly damaged: UnusableImage | null;
  /** Why each other entry was passed over. */
  readonly rejected: string[];
}

/** The image a launch uses: the newest plausible one that fits, then its files checked (fail closed). */
export async function findImage(req: ImageRequirements, root = imageRoot(), hash: FileHasher = sha256Handle): Promise<ImageChoice> {
  const { images, unusable } = scanImages(root);
  const rejected = unusable.map((u) => `${u.name}: ${u.problem}`);
  for (const image of images) {
    const why = imageMismatch(image, req);
    if (why) {
      rejected.push(`${image.manifest.id}: ${why}`);
      continue;
    }
    const problem = await verifyImage(image, hash);
    if (!problem) return { image, damaged: null, rejected };
    return { image: null, damaged: { name: image.manifest.id, dir: image.dir, status: "damaged", problem }, rejected };
  }
  return { image: null, damaged: null, rejected };
}

/** Removes the entry whose name starts with `id` (a damaged one too; a symlink is removed as the link). */
export function removeImage(id: string, root = imageRoot()): boolean {
  if (!/^[0-9a-f]{4,}$/.test(id)) throw new Error(`"${id}" is not an image id (hex digits, as \`nucleus image ls\` prints them)`);
  const matches = existsSync(root) ? readdirSync(root).filter((n) => ID.test(n) && n.startsWith(id)) : [];
  if (matches.length > 1) throw new Error(`"${id}" matches ${matches.length} images; give more digits`);
  if (matches.length === 0) return false;
  // rm lstat()s: a symlinked entry goes as the link, and links inside a dir are never followed.
  rmSync(join(root, matches[0]!), { recursive: true, force: true });
  return true;
}
