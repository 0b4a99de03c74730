// A writer for the cpio "newc" format the Linux kernel unpacks as its initramfs.
// Deterministic output (uid/gid 0, mtime 0, inode numbers in order), so the same
// inputs give the same bytes. Not responsible for choosing what goes in.

import { createReadStream } from "node:fs";
import type { Writable } from "node:stream";
import { once } from "node:events";

export type CpioEntry =
  | { readonly kind: "dir"; readonly path: string; readonly mode?: number }
  | { readonly kind: "file"; readonly path: string; readonly mode: number; readonly source: string; readonly size: number }
  | { readonly kind: "data"; readonly path: string; readonly mode: number; readonly data: Buffer }
  | { readonly kind: "symlink"; readonly path: string; readonly target: string }
  | { readonly kind: "chardev"; readonly path: string; readonly mode: number; readonly major: number; readonly minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** The 110-byte header plus the NUL-terminated name, padded to a multiple of 4. */
export function cpioHeader(f: {
  ino: number;
  mode: number;
  nlink: number;
  size: number;
  rdevMajor?: number;
  rdevMinor?: number;
  name: string;
}): Buffer {
  const name = Buffer.from(f.name + "\0", "utf8");
  const fields = [f.ino, f.mode, 0, 0, f.nlink, 0, f.size, 0, 0, f.rdevMajor ?? 0, f.rdevMinor ?? 0, name.length, 0];
  const head = Buffer.from("070701" + fields.map(hex8).join(""), "ascii");
  return Buffer.concat([head, name, Buffer.alloc(pad4(head.length + name.length))]);
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** Write `entries` (paths absolute or relative; written without the leading "/") and the trailer. */
export async function writeCpio(out: Writable, entries: readonly CpioEntry[]): Promise<number> {
  let written = 0;
  const put = async (buf: Buffer) => {
    written += buf.length;
    if (!out.write(buf)) await once(out, "drain");
  };
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, "");
    if (!name) continue;
    switch (e.kind) {
      case "dir":
        await put(cpioHeader({ ino: ino++, mode: S_IFDIR | (e.mode ?? 0o755), nlink: 2, size: 0, name }));
        break;
      case "symlink": {
        const data = Buffer.from(e.target, "utf8");
        await put(cpioHeader({ ino: ino++, mode: S_IFLNK | 0o777, nlink: 1, size: data.length, name }));
        await put(Buffer.concat([data, Buffer.alloc(pad4(data.length))]));
        break;
      }
      case "chardev":
        await put(cpioHeader({ ino: ino++, mode: S_IFCHR | e.mode, nlink: 1, size: 0, rdevMajor: e.major, rdevMinor: e.minor, name }));
        break;
      case "data":
        await put(cpioHeader({ ino: ino++, mode: S_IFREG | e.mode, nlink: 1, size: e.data.length, name }));
        await put(Buffer.concat([e.data, Buffer.alloc(pad4(e.data.length))]));
        break;
      case "file": {
        await put(cpioHeader({ ino: ino++, mode: S_IFREG | e.mode, nlink: 1, size: e.size, name }));
        let n = 0;
        for await (const chunk of createReadStream(e.source)) {
          n += (chunk as Buffer).length;
          await put(chunk as Buffer);
        }
        if (n !== e.size) throw new Error(`${e.source} changed size while the image was written (${e.size} → ${n} bytes)`);
        await put(Buffer.alloc(pad4(e.size)));
        break;
      }
    }
  }
  await put(cpioHeader({ ino: 0, mode: 0, nlink: 1, size: 0, name: "TRAILER!!!" }));
  return written;
}
