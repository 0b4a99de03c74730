// The last two steps of an image build: sealing a finished image dir (the
// manifest with its files' SHA-256, explicit modes) and publishing it under its
// id without ever removing a good image another build published first.
// Not responsible for making the files (build.ts) or reading them (store.ts).

import { chmodSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readImage, verifyImage, type GuestImage, type ImageManifest } from "./store.js";
import { sha256File, type FileDigest } from "./verify.js";

async function digest(path: string): Promise<FileDigest> {
  return { size: statSync(path).size, sha256: await sha256File(path) };
}

/** Writes `out`/manifest.json with the hashes of `out`/vmlinux and initramfs.cpio; dir 0755, files 0644 whatever the umask. */
export async function sealImage(out: string, manifest: Omit<ImageManifest, "files">): Promise<ImageManifest> {
  for (const f of ["vmlinux", "initramfs.cpio"]) chmodSync(join(out, f), 0o644);
  const sealed: ImageManifest = { ...manifest, files: { vmlinux: await digest(join(out, "vmlinux")), initramfs: await digest(join(out, "initramfs.cpio")) } };
  writeFileSync(join(out, "manifest.json"), JSON.stringify(sealed, null, 2) + "\n", { mode: 0o644 });
  chmodSync(join(out, "manifest.json"), 0o644);
  // SECURITY: the launch refuses image files writable by group/other; set the modes rather than trust the umask.
  chmodSync(out, 0o755);
  return sealed;
}

/**
 * Moves the sealed `out` to `root`/`id`. When that exists already (another build of the same inputs won the
 * race) and checks out, it is kept and `out` removed, so a launch never sees the image disappear; a damaged
 * or outdated one is replaced.
 */
export async function publishImage(out: string, root: string, id: string): Promise<GuestImage> {
  const dest = join(root, id);
  for (let attempt = 0; ; attempt++) {
    try {
      renameSync(out, dest);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== "EEXIST" && code !== "ENOTEMPTY") || attempt > 0) throw err;
      const existing = readImage(dest, id);
      if ("manifest" in existing && (await verifyImage(existing)) === null) {
        rmSync(out, { recursive: true, force: true });
        return existing;
      }
      rmSync(dest, { recursive: true, force: true });
    }
  }
  const image = readImage(dest, id);
  if (!("manifest" in image)) throw new Error(`the image just built in ${dest} cannot be read back: ${image.problem}`);
  return image;
}
