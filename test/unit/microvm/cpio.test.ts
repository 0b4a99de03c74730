import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { cpioHeader, writeCpio } from "../../../src/sandbox/microvm/image/cpio.js";
import { whichSync } from "../../../src/sandbox/which.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function archive(entries: Parameters<typeof writeCpio>[1]): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  await writeCpio(out, entries);
  out.end();
  return Buffer.concat(chunks);
}

describe("cpio newc writer", () => {
  it("pads header+name to 4 bytes and writes hex fields", () => {
    const h = cpioHeader({ ino: 1, mode: 0o100644, nlink: 1, size: 5, name: "ab" });
    expect(h.length % 4).toBe(0);
    expect(h.subarray(0, 6).toString()).toBe("070701");
    expect(h.toString("ascii", 6, 14)).toBe("00000001");
    expect(h.toString("ascii", 14, 22)).toBe((0o100644).toString(16).padStart(8, "0"));
  });

  it("is deterministic", async () => {
    const e = [{ kind: "data" as const, path: "/a", mode: 0o644, data: Buffer.from("x") }];
    expect((await archive(e)).equals(await archive(e))).toBe(true);
  });

  it.skipIf(!whichSync("cpio"))("is read back by GNU cpio (files, dirs, symlinks, modes)", async () => {
    const src = mkdtempSync(join(tmpdir(), "nucleus-cpio-"));
    dirs.push(src);
    writeFileSync(join(src, "payload"), "hello from a file\n");
    const bytes = await archive([
      { kind: "dir", path: "/etc" },
      { kind: "data", path: "/etc/hosts", mode: 0o644, data: Buffer.from("127.0.0.1 localhost\n") },
      { kind: "file", path: "/init", mode: 0o755, source: join(src, "payload"), size: 18 },
      { kind: "symlink", path: "/bin", target: "usr/bin" },
    ]);
    const out = join(src, "out");
    execFileSync("mkdir", [out]);
    execFileSync("cpio", ["-i", "--quiet", "-D", out], { input: bytes });
    expect(readFileSync(join(out, "etc/hosts"), "utf8")).toBe("127.0.0.1 localhost\n");
    expect(readFileSync(join(out, "init"), "utf8")).toBe("hello from a file\n");
    expect(statSync(join(out, "init")).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(out, "bin"))).toBe("usr/bin");
  });
});
