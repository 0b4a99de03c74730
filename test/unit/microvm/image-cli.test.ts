import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { main } from "../../../src/cli/main.js";
import { IMAGE_FORMAT } from "../../../src/sandbox/microvm/image/store.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function run(args: string[], env: NodeJS.ProcessEnv) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d));
  stderr.on("data", (d: Buffer) => (err += d));
  const code = await main(args, { stdout, stderr, env });
  return { code, out, err };
}

describe("nucleus image", () => {
  it("lists, removes by prefix, and says how to build when there is nothing", async () => {
    const cache = mkdtempSync(join(tmpdir(), "nucleus-img-cli-"));
    dirs.push(cache);
    const env = { XDG_CACHE_HOME: cache };
    expect((await run(["image", "ls"], env)).out).toMatch(/nucleus image build/);
    const dir = join(cache, "nucleus", "images", "abcdef0123456789");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "vmlinux"), "");
    writeFileSync(join(dir, "initramfs.cpio"), "");
    const manifest = { format: IMAGE_FORMAT, id: "abcdef0123456789", createdAt: "2026-01-01T00:00:00Z", kernel: { package: "p", release: "6.1.0-test", compression: "xz" }, runtime: { path: "/usr/bin/node", size: 1, mtimeMs: 1 }, agentHash: "x", vsockBridge: null, modules: [], initramfsBytes: 1048576 };
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
    const ls = await run(["image", "ls"], env);
    expect(ls.out).toContain("abcdef0123456789");
    expect(ls.out).toContain("6.1.0-test");
    expect((await run(["image", "rm", "../etc"], env)).code).toBe(1);
    expect((await run(["image", "rm", "abcdef"], env)).code).toBe(0);
    expect((await run(["image", "ls"], env)).out).toMatch(/no images/);
  });

  it("rejects an unknown subcommand with usage (exit 2)", async () => {
    const r = await run(["image", "frobnicate"], {});
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/expected build, ls or rm/);
  });
});
