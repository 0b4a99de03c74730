// QEMU run dirs: named after the gateway's pid; a sweep removes only ours (name, directory, owner) whose
// gateway is dead, and never follows a symlink. Real temp dirs and real pids.
import { spawnSync } from "node:child_process";
import { chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createRunDir, sweepStaleRunDirs } from "../../../src/sandbox/microvm/qemu/run-dir.js";

const temps: string[] = [];
afterEach(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "nucleus-run-dir-test-"));
  temps.push(d);
  return d;
};

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  const pid = Number(r.stdout);
  expect(() => process.kill(pid, 0)).toThrow();
  return pid;
}

const root = process.getuid?.() === 0;

describe("QEMU run dirs", () => {
  it("are named after this gateway's pid and private (0700)", () => {
    const parent = tmp();
    const dir = createRunDir(parent);
    expect(basename(dir)).toMatch(new RegExp(`^nucleus-qemu-${process.pid}-[A-Za-z0-9]{6}$`));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it("sweeps a dead gateway's dir (contents too), keeps a live one's, this process's, and foreign names", () => {
    const parent = tmp();
    const dead = deadPid();
    const stale = join(parent, `nucleus-qemu-${dead}-abc123`);
    mkdirSync(join(stale, "sub"), { recursive: true });
    writeFileSync(join(stale, "sub", "f"), "x");
    const live = join(parent, `nucleus-qemu-1-abcdef`); // pid 1 is always alive
    mkdirSync(live);
    const mine = createRunDir(parent);
    const foreign = [`nucleus-qemu-abcdef`, `nucleus-qemu-${dead}-abc`, `other-${dead}-abc123`, `nucleus-qemu-${dead}-abc123.bak`].map((n) => join(parent, n));
    for (const f of foreign) mkdirSync(f);
    expect(sweepStaleRunDirs(parent)).toEqual([stale]);
    expect(existsSync(stale)).toBe(false);
    for (const kept of [live, mine, ...foreign]) expect(existsSync(kept)).toBe(true);
  });

  it("never follows a symlink: a link named like a dead gateway's dir stays, and so does its target", () => {
    const parent = tmp();
    const target = tmp();
    writeFileSync(join(target, "canary"), "keep me");
    const link = join(parent, `nucleus-qemu-${deadPid()}-lnk123`);
    symlinkSync(target, link);
    expect(sweepStaleRunDirs(parent)).toEqual([]);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(existsSync(join(target, "canary"))).toBe(true);
  });

  it("asks whether the named pid is alive, and a plain file named like ours stays", () => {
    const parent = tmp();
    const asked: number[] = [];
    mkdirSync(join(parent, "nucleus-qemu-4242-aaaaaa"));
    writeFileSync(join(parent, "nucleus-qemu-4243-bbbbbb"), "");
    expect(sweepStaleRunDirs(parent, (pid) => (asked.push(pid), true))).toEqual([]);
    expect(asked.sort()).toEqual([4242, 4243]);
    expect(sweepStaleRunDirs(parent, () => false)).toEqual([join(parent, "nucleus-qemu-4242-aaaaaa")]);
    expect(existsSync(join(parent, "nucleus-qemu-4243-bbbbbb"))).toBe(true);
  });

  it.skipIf(!root)(`keeps a dead gateway's dir owned by another uid${root ? "" : " (skipped: chown needs root)"}`, () => {
    const parent = tmp();
    const other = join(parent, `nucleus-qemu-${deadPid()}-uid999`);
    mkdirSync(other);
    chownSync(other, 65534, 65534);
    expect(sweepStaleRunDirs(parent)).toEqual([]);
    expect(existsSync(other)).toBe(true);
  });
});
