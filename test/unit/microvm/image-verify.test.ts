import { createHash } from "node:crypto";
import { chmodSync, closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { main } from "../../../src/cli/main.js";
import { NucleusError } from "../../../src/errors.js";
import { agentFiles, agentHash } from "../../../src/sandbox/microvm/image/agent.js";
import { planPrune } from "../../../src/sandbox/microvm/image/prune.js";
import { publishImage, sealImage } from "../../../src/sandbox/microvm/image/publish.js";
import { IMAGE_FORMAT, listImages } from "../../../src/sandbox/microvm/image/store.js";
import { sha256File, sha256Handle, type FileHasher } from "../../../src/sandbox/microvm/image/verify.js";
import { ImageLookup } from "../../../src/sandbox/microvm/image-lookup.js";
import { fakeImage, hostRuntime } from "../../helpers/fake-image.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function cache(): { cache: string; root: string; env: NodeJS.ProcessEnv } {
  const c = mkdtempSync(join(tmpdir(), "nucleus-img-verify-"));
  dirs.push(c);
  const root = join(c, "nucleus", "images");
  mkdirSync(root, { recursive: true });
  return { cache: c, root, env: { XDG_CACHE_HOME: c } };
}

async function ls(env: NodeJS.ProcessEnv): Promise<string> {
  const stdout = new PassThrough();
  let out = "";
  stdout.on("data", (d: Buffer) => (out += d));
  expect(await main(["image", "ls"], { stdout, stderr: new PassThrough(), env })).toBe(0);
  return out;
}

/** A hasher that counts the files it hashes. */
function counting(): { hash: FileHasher; count: () => number } {
  let n = 0;
  return { hash: (f) => (n++, sha256Handle(f)), count: () => n };
}

async function refusal(p: Promise<unknown>): Promise<NucleusError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NucleusError);
  return err as NucleusError;
}

const node = process.execPath;

describe("guest image verification", () => {
  it("refuses an initramfs whose bytes were overwritten (same size) at launch, and image ls shows it damaged", async () => {
    const { root, env } = cache();
    const agent = agentHash(await agentFiles());
    const dir = await fakeImage(root, { id: "1111000000000001", agentHash: agent });
    await fakeImage(root, { id: "1111000000000002", agentHash: agent, createdAt: "2025-01-01T00:00:00Z" }); // older, intact
    expect((await new ImageLookup(root).require("s", node)).dir).toBe(dir);

    const fd = openSync(join(dir, "initramfs.cpio"), "r+");
    writeSync(fd, Buffer.from("evil"), 0, 4, 100);
    closeSync(fd);
    const err = await refusal(new ImageLookup(root).require("s", node));
    expect(err.message).toMatch(/guest image 1111000000000001 for server "s" is damaged: initramfs.cpio does not match the SHA-256/);
    // Fail closed: the older intact image is not silently used instead.
    expect(err.hint).toMatch(/nucleus image rm 1111000000000001.*nucleus image build/);
    expect(await new ImageLookup(root).current()).toBeNull();

    const out = await ls(env);
    expect(out).toMatch(/^1111000000000001 {2}damaged: initramfs.cpio does not match/m);
    expect(out).toMatch(/^1111000000000002 {2}2025-01-01/m);
    expect(out).toMatch(/nucleus image rm ID/);
  });

  it("refuses a vmlinux truncated to 0 bytes, a group-writable one, and a symlink in its place", async () => {
    const { root } = cache();
    const agent = agentHash(await agentFiles());
    const dir = await fakeImage(root, { id: "2222000000000001", agentHash: agent });
    chmodSync(join(dir, "vmlinux"), 0o664);
    expect((await refusal(new ImageLookup(root).require("s", node))).message).toMatch(/vmlinux is writable by group or others \(mode 664\)/);
    chmodSync(join(dir, "vmlinux"), 0o644);
    truncateSync(join(dir, "vmlinux"), 0);
    expect((await refusal(new ImageLookup(root).require("s", node))).message).toMatch(/vmlinux has 0 bytes, not the \d+ recorded at build time/);
    // A link in place of the file (to a copy with the right bytes) is refused, not followed.
    const copy = join(root, "..", "vmlinux-copy");
    writeFileSync(copy, `kernel of 2222000000000001`);
    rmSync(join(dir, "vmlinux"));
    symlinkSync(copy, join(dir, "vmlinux"));
    expect((await refusal(new ImageLookup(root).require("s", node))).message).toMatch(/vmlinux is a symbolic link/);
  });

  it("ignores a symlinked image dir and a planted copy whose manifest is dated in the future; prune keeps the real image", async () => {
    const { cache: c, root, env } = cache();
    const agent = agentHash(await agentFiles());
    const real = await fakeImage(root, { id: "3333000000000001", agentHash: agent });
    // The review's attack: ffff… → a dir elsewhere holding a copied (intact) image with a later createdAt.
    const elsewhere = join(c, "elsewhere");
    await fakeImage(elsewhere, { id: "ffffffffffffffff", agentHash: agent, createdAt: "2026-06-01T00:00:00Z" });
    symlinkSync(join(elsewhere, "ffffffffffffffff"), join(root, "ffffffffffffffff"));
    // A real dir of ours, intact hashes, but dated a year ahead.
    const future = new Date(Date.now() + 365 * 86_400_000).toISOString();
    await fakeImage(root, { id: "eeeeeeeeeeeeeeee", agentHash: agent, createdAt: future });

    expect((await new ImageLookup(root).require("s", node)).dir).toBe(real);
    expect((await new ImageLookup(root).current())?.dir).toBe(real);
    const out = await ls(env);
    expect(out).toMatch(/^ffffffffffffffff {2}foreign: the image directory is a symbolic link$/m);
    expect(out).toMatch(/^eeeeeeeeeeeeeeee {2}damaged: its manifest's createdAt .* is in the future$/m);

    const plan = await planPrune(agent, root);
    expect(plan.keep.map((i) => i.dir)).toEqual([real]);
    expect(plan.remove.map((i) => i.id)).toEqual(["eeeeeeeeeeeeeeee"]);
    expect(plan.skipped.map((i) => i.name)).toEqual(["ffffffffffffffff"]);
    expect(existsSync(join(elsewhere, "ffffffffffffffff", "vmlinux"))).toBe(true);
  });

  it("refuses an image built by an older Nucleus (manifest without file hashes) and says to rebuild", async () => {
    const { root, env } = cache();
    const agent = agentHash(await agentFiles());
    const dir = join(root, "4444000000000001");
    mkdirSync(dir);
    writeFileSync(join(dir, "vmlinux"), "k");
    writeFileSync(join(dir, "initramfs.cpio"), "i");
    const manifest = { format: 1, id: "4444000000000001", createdAt: "2026-01-01T00:00:00Z", kernel: { package: "p", release: "r", compression: "xz" }, runtime: hostRuntime(), agentHash: agent, vsockBridge: null, modules: [], initramfsBytes: 1 };
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
    const err = await refusal(new ImageLookup(root).require("s", node));
    expect(err.message).toMatch(/no guest image for server "s" .*4444000000000001: an older Nucleus built it and recorded no file hashes.*rebuild it/);
    expect(err.hint).toMatch(/nucleus image build/);
    expect(await ls(env)).toMatch(/^4444000000000001 {2}needs a rebuild: an older Nucleus built it/m);
    // The same with the current format but the hashes missing.
    writeFileSync(join(dir, "manifest.json"), JSON.stringify({ ...manifest, format: IMAGE_FORMAT }));
    expect((await refusal(new ImageLookup(root).require("s", node))).message).toMatch(/recorded no file hashes/);
  });

  it("hashes an image's files once per process, and again once a file changed", async () => {
    const { root } = cache();
    const agent = agentHash(await agentFiles());
    const dir = await fakeImage(root, { id: "5555000000000001", agentHash: agent });
    const h = counting();
    const lookup = new ImageLookup(root, { hash: h.hash });
    await lookup.require("s", node);
    expect(h.count()).toBe(2); // vmlinux and initramfs.cpio
    await lookup.require("s", node);
    await new ImageLookup(root, { hash: h.hash }).require("t", node);
    await lookup.current();
    expect(h.count()).toBe(2);
    // Rewriting the same bytes changes ctime: the file is hashed again (and still matches).
    writeFileSync(join(dir, "vmlinux"), readFileSync(join(dir, "vmlinux")));
    await lookup.require("s", node);
    expect(h.count()).toBe(3);
  });

  it("a second build publishing the same id keeps the image already there and drops its own copy", async () => {
    const { cache: c, root } = cache();
    const agent = agentHash(await agentFiles());
    const first = await fakeImage(root, { id: "6666000000000001", agentHash: agent });
    const ino = statSync(join(first, "initramfs.cpio")).ino;
    const out = join(c, ".build-second", "out");
    mkdirSync(join(c, ".build-second"));
    cpSync(first, out, { recursive: true });
    const image = await publishImage(out, root, "6666000000000001");
    expect(image.dir).toBe(first);
    expect(statSync(join(first, "initramfs.cpio")).ino).toBe(ino);
    expect(existsSync(out)).toBe(false);

    // A damaged one in the way is replaced.
    truncateSync(join(first, "vmlinux"), 0);
    const third = await fakeImage(join(c, ".build-third"), { id: "6666000000000001", agentHash: agent });
    expect((await publishImage(third, root, "6666000000000001")).dir).toBe(first);
    expect(statSync(join(first, "vmlinux")).size).toBeGreaterThan(0);
    expect(existsSync(third)).toBe(false);
    expect((await new ImageLookup(root).require("s", node)).dir).toBe(first);
    expect(readdirSync(root)).toEqual(["6666000000000001"]);
  });

  it("the manifest writer records both files' size and SHA-256 and sets 0755/0644 whatever the modes were", async () => {
    const { root } = cache();
    const out = join(root, "out");
    mkdirSync(out);
    writeFileSync(join(out, "vmlinux"), "a kernel");
    writeFileSync(join(out, "initramfs.cpio"), Buffer.alloc(70_000, 1));
    for (const f of ["vmlinux", "initramfs.cpio"]) chmodSync(join(out, f), 0o666);
    chmodSync(out, 0o777);
    const base = { format: IMAGE_FORMAT, id: "7777000000000001", createdAt: new Date().toISOString(), kernel: { package: "p", release: "r", compression: "xz" }, runtime: hostRuntime(), agentHash: "a", vsockBridge: null, modules: [], initramfsBytes: 70_000 };
    const sealed = await sealImage(out, base);
    const sha = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");
    expect(sealed.files.vmlinux).toEqual({ size: 8, sha256: sha("a kernel") });
    expect(sealed.files.initramfs).toEqual({ size: 70_000, sha256: sha(Buffer.alloc(70_000, 1)) });
    expect(await sha256File(join(out, "initramfs.cpio"))).toBe(sha(Buffer.alloc(70_000, 1)));
    expect(JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"))).toEqual(sealed);
    expect(statSync(out).mode & 0o777).toBe(0o755);
    for (const f of ["vmlinux", "initramfs.cpio", "manifest.json"]) expect(statSync(join(out, f)).mode & 0o777).toBe(0o644);
    // And the store reads it back as an intact image.
    const published = await publishImage(out, root, "7777000000000001");
    const { images, unusable } = await listImages(root);
    expect(unusable).toEqual([]);
    expect(images.map((i) => i.dir)).toEqual([published.dir]);
  });
});
