// Extracting the uncompressed ELF vmlinux from an x86 bzImage: read the boot
// protocol header, find the compressed payload, decompress it (gzip in-process;
// xz, zstd, lz4 through their CLIs). Booting the ELF saves TCG guests the 2–4 s
// of in-guest decompression. Not responsible for fetching the kernel.

import { spawnSync } from "node:child_process";
import { gunzipSync } from "node:zlib";

export type KernelCompression = "gzip" | "xz" | "zstd" | "lz4";

export interface Payload {
  readonly compression: KernelCompression;
  readonly data: Buffer;
}

/** Locate the compressed kernel inside a bzImage (boot protocol ≥ 2.08). */
export function findPayload(bz: Buffer): Payload {
  if (bz.length < 0x250 || bz.toString("ascii", 0x202, 0x206) !== "HdrS") {
    throw new Error("not an x86 bzImage (no \"HdrS\" boot header)");
  }
  const protocol = bz.readUInt16LE(0x206);
  if (protocol < 0x208) throw new Error(`bzImage boot protocol ${protocol.toString(16)} is older than 2.08 and has no payload offset`);
  const setupSects = bz[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + bz.readUInt32LE(0x248);
  const length = bz.readUInt32LE(0x24c);
  // The build appends the uncompressed size (4 bytes) to the compressed stream.
  const data = bz.subarray(start, start + length - 4);
  const magic = data.subarray(0, 6);
  let compression: KernelCompression;
  if (magic[0] === 0x1f && magic[1] === 0x8b) compression = "gzip";
  else if (magic.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) compression = "xz";
  else if (magic.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) compression = "zstd";
  else if (magic.subarray(0, 4).equals(Buffer.from([0x02, 0x21, 0x4c, 0x18]))) compression = "lz4";
  else throw new Error(`unknown kernel compression (payload starts with ${magic.toString("hex")})`);
  return { compression, data };
}

/** Decompress a bzImage into its ELF vmlinux. */
export function extractVmlinux(bz: Buffer): { vmlinux: Buffer; compression: KernelCompression } {
  const { compression, data } = findPayload(bz);
  let out: Buffer;
  if (compression === "gzip") {
    out = gunzipSync(data);
  } else {
    const argv: Record<Exclude<KernelCompression, "gzip">, string[]> = {
      xz: ["xz", "-dc", "--single-stream"],
      zstd: ["zstd", "-dc"],
      lz4: ["lz4", "-dc"],
    };
    const [cmd, ...args] = argv[compression];
    const r = spawnSync(cmd!, args, { input: data, maxBuffer: 512 * 1024 * 1024 });
    if (r.error) throw new Error(`the kernel is ${compression}-compressed and \`${cmd}\` could not run: ${r.error.message}. Hint: install it (scripts/setup.sh does).`);
    if (r.status !== 0) throw new Error(`${cmd} could not decompress the kernel: ${r.stderr.toString().trim()}`);
    out = r.stdout;
  }
  if (!out.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
    throw new Error("the decompressed kernel is not an ELF file");
  }
  return { vmlinux: out, compression };
}
