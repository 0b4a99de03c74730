// Small fake guest images on disk for the image store's tests: real dirs and
// files sealed by the real manifest writer (sealImage), but a few bytes instead
// of a kernel. Not a bootable image.

import { mkdirSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sealImage } from "../../src/sandbox/microvm/image/publish.js";
import { IMAGE_FORMAT, type ImageManifest } from "../../src/sandbox/microvm/image/store.js";

/** The runtime entry of an image built for the Node.js running the tests, as it is on disk now. */
export function hostRuntime(): ImageManifest["runtime"] {
  const path = realpathSync(process.execPath);
  const st = statSync(path);
  return { path, size: st.size, mtimeMs: st.mtimeMs };
}

export interface FakeImage {
  readonly id: string;
  readonly createdAt?: string;
  readonly agentHash: string;
  readonly runtime?: ImageManifest["runtime"];
  readonly initramfsBytes?: number;
}

/** Writes `root`/`id` with a few-byte vmlinux, an initramfs of `initramfsBytes` and a sealed manifest. */
export async function fakeImage(root: string, f: FakeImage): Promise<string> {
  const dir = join(root, f.id);
  mkdirSync(dir, { recursive: true });
  const bytes = f.initramfsBytes ?? 4096;
  writeFileSync(join(dir, "vmlinux"), `kernel of ${f.id}`);
  writeFileSync(join(dir, "initramfs.cpio"), Buffer.alloc(bytes, 7));
  await sealImage(dir, {
    format: IMAGE_FORMAT,
    id: f.id,
    createdAt: f.createdAt ?? "2026-01-01T00:00:00Z",
    kernel: { package: "p", release: "6.1.0-test", compression: "xz" },
    runtime: f.runtime ?? hostRuntime(),
    agentHash: f.agentHash,
    vsockBridge: null,
    modules: [],
    initramfsBytes: bytes,
  });
  return dir;
}
