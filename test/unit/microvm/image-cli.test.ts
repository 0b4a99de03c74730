import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { main } from "../../../src/cli/main.js";
import { agentFiles, agentHash } from "../../../src/sandbox/microvm/image/agent.js";
import { fakeImage, hostRuntime } from "../../helpers/fake-image.js";

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
    await fakeImage(join(cache, "nucleus", "images"), { id: "abcdef0123456789", agentHash: "x", runtime: { path: "/usr/bin/node", size: 1, mtimeMs: 1 } });
    const ls = await run(["image", "ls"], env);
    expect(ls.out).toContain("abcdef0123456789");
    expect(ls.out).toContain("6.1.0-test");
    expect((await run(["image", "rm", "../etc"], env)).code).toBe(1);
    expect((await run(["image", "rm", "abcdef"], env)).code).toBe(0);
    expect((await run(["image", "ls"], env)).out).toMatch(/no images/);
  });

  it("prune keeps, per runtime, the newest image this nucleus would launch and removes the rest; --dry-run removes nothing", async () => {
    const cache = mkdtempSync(join(tmpdir(), "nucleus-img-prune-"));
    dirs.push(cache);
    const env = { XDG_CACHE_HOME: cache };
    const root = join(cache, "nucleus", "images");
    const current = agentHash(await agentFiles());
    const fake = (id: string, createdAt: string, agentHash: string, runtime: { path: string; size: number; mtimeMs: number }, initramfsBytes: number) =>
      fakeImage(root, { id, createdAt, agentHash, runtime, initramfsBytes });
    const here = hostRuntime();
    await fake("aaaa000000000001", "2026-03-01T00:00:00Z", current, here, 2 * 1048576); // newest fitting: kept
    await fake("aaaa000000000002", "2026-02-01T00:00:00Z", current, here, 1048576); // older, same runtime: never picked
    await fake("aaaa000000000003", "2026-04-01T00:00:00Z", "another-agent", here, 1048576);
    await fake("aaaa000000000004", "2026-04-01T00:00:00Z", current, { ...here, size: here.size + 1 }, 1048576); // runtime changed since
    await fake("aaaa000000000005", "2026-04-01T00:00:00Z", current, { path: join(cache, "gone-node"), size: 1, mtimeMs: 1 }, 1048576);
    mkdirSync(join(root, "downloads"));
    writeFileSync(join(root, "downloads", "linux.deb"), "deb");
    mkdirSync(join(root, ".build-xyz"));
    const all = readdirSync(root).sort();

    const dry = await run(["image", "prune", "--dry-run"], env);
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/^keep\s+aaaa000000000001 .*\(current\)$/m);
    for (const id of ["2", "3", "4", "5"]) expect(dry.out).toMatch(new RegExp(`^would remove\\s+aaaa00000000000${id}\\s`, "m"));
    expect(dry.out).toMatch(/would free 4 MiB/);
    expect(readdirSync(root).sort()).toEqual(all);

    const real = await run(["image", "prune"], env);
    expect(real.code).toBe(0);
    expect(real.out).toMatch(/^removed\s+aaaa000000000002\s/m);
    expect(real.out).toMatch(/freed 4 MiB/);
    expect(readdirSync(root).sort()).toEqual([".build-xyz", "aaaa000000000001", "downloads"]);
    expect(existsSync(join(root, "downloads", "linux.deb"))).toBe(true);
    expect((await run(["image", "prune"], env)).out).toMatch(/nothing to prune/);
  });

  it("rejects an unknown subcommand with usage (exit 2)", async () => {
    const r = await run(["image", "frobnicate"], {});
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/expected build, ls, rm or prune/);
  });
});
