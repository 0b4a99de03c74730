import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { extractVmlinux, findPayload } from "../../../src/sandbox/microvm/image/kernel.js";

/** A minimal bzImage: boot header with setup_sects, protocol 2.15, payload offset/length, gzip payload. */
function fakeBzImage(payload: Buffer, setupSects = 3): Buffer {
  const setup = Buffer.alloc((setupSects + 1) * 512);
  setup[0x1f1] = setupSects;
  setup.write("HdrS", 0x202, "ascii");
  setup.writeUInt16LE(0x20f, 0x206);
  const pmPrefix = Buffer.alloc(100, 0xcc); // decompressor code before the payload
  const withSize = Buffer.concat([payload, Buffer.from([1, 2, 3, 4])]);
  setup.writeUInt32LE(pmPrefix.length, 0x248);
  setup.writeUInt32LE(withSize.length, 0x24c);
  return Buffer.concat([setup, pmPrefix, withSize, Buffer.alloc(64)]);
}

describe("vmlinux extraction from a bzImage", () => {
  it("finds a gzip payload through the boot header and decompresses it to the ELF", () => {
    const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(1000, 7)]);
    const bz = fakeBzImage(gzipSync(elf));
    expect(findPayload(bz).compression).toBe("gzip");
    const out = extractVmlinux(bz);
    expect(out.vmlinux.equals(elf)).toBe(true);
  });

  it("recognises xz and zstd payloads by magic", () => {
    expect(findPayload(fakeBzImage(Buffer.from("fd377a585a0000aa", "hex"))).compression).toBe("xz");
    expect(findPayload(fakeBzImage(Buffer.from("28b52ffd00aa", "hex"))).compression).toBe("zstd");
  });

  it("rejects what is not a bzImage or not an ELF inside", () => {
    expect(() => findPayload(Buffer.alloc(4096))).toThrow(/not an x86 bzImage/);
    expect(() => extractVmlinux(fakeBzImage(gzipSync(Buffer.from("not elf"))))).toThrow(/not an ELF/);
    expect(() => findPayload(fakeBzImage(Buffer.from("0000000000000000", "hex")))).toThrow(/unknown kernel compression/);
  });
});
