// Run dirs left by earlier QEMU backends: a sweep removes only ours (name, directory, owner) whose gateway is
// dead — or, for the older naming without a pid, that are 0700, hold nothing but our two sockets and are a day
// old — and never follows a symlink. Real temp dirs, real sockets and real pids.
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LEGACY_MIN_AGE_MS, sweepStaleRunDirs } from "../../../src/sandbox/microvm/qemu/run-dir.js";

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

/** A unix socket file at `path` whose listener is gone (as a killed gateway leaves it). */
function leftSocket(path: string): void {
  const r = spawnSync(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`]);
  expect(r.status).toBe(0);
  expect(lstatSync(path).isSocket()).toBe(true);
}

/** A dir of the older naming as an old gateway left it: 0700, its two sockets, untouched for `ageMs`. */
function legacyDir(parent: string, name: string, ageMs = 2 * LEGACY_MIN_AGE_MS, entries = ["ctl.sock", "con.sock"]): string {
  const dir = join(parent, name);
  mkdirSync(dir, { mode: 0o700 });
  chmodSync(dir, 0o700);
  for (const e of entries) leftSocket(join(dir, e));
  const then = new Date(Date.now() - ageMs);
  for (const e of entries) utimesSync(join(dir, e), then, then);
  utimesSync(dir, then, then);
  return dir;
}

describe("QEMU run dir sweep", () => {
  it("sweeps a dead gateway's dir (contents too), keeps a live one's, this process's, and foreign names", () => {
    const parent = tmp();
    const dead = deadPid();
    const stale = join(parent, `nucleus-qemu-${dead}-abc123`);
    mkdirSync(join(stale, "sub"), { recursive: true });
    writeFileSync(join(stale, "sub", "f"), "x");
    const live = join(parent, `nucleus-qemu-1-abcdef`); // pid 1 is always alive
    mkdirSync(live);
    const mine = join(parent, `nucleus-qemu-${process.pid}-mine00`);
    mkdirSync(mine);
    const foreign = [`nucleus-qemu-abcdefg`, `nucleus-qemu-${dead}-abc`, `other-${dead}-abc123`, `nucleus-qemu-${dead}-abc123.bak`].map((n) => join(parent, n));
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

  it("sweeps a day-old dir of the older naming holding only our sockets (or nothing), owned by us and 0700", () => {
    const parent = tmp();
    const both = legacyDir(parent, "nucleus-qemu-Ab12cD");
    const one = legacyDir(parent, "nucleus-qemu-oneSck", 2 * LEGACY_MIN_AGE_MS, ["ctl.sock"]);
    const empty = legacyDir(parent, "nucleus-qemu-empty0", 2 * LEGACY_MIN_AGE_MS, []);
    expect(sweepStaleRunDirs(parent, () => true).sort()).toEqual([both, empty, one].sort());
    for (const d of [both, one, empty]) expect(existsSync(d)).toBe(false);
  });

  it("keeps a dir of the older naming that is recent, holds anything else, is not 0700, or has a socket name that is no socket", () => {
    const parent = tmp();
    const recent = legacyDir(parent, "nucleus-qemu-recent", 60_000);
    const extra = legacyDir(parent, "nucleus-qemu-extra0");
    writeFileSync(join(extra, "notes.txt"), "someone else's");
    utimesSync(extra, new Date(0), new Date(0));
    const sub = legacyDir(parent, "nucleus-qemu-subdir", 2 * LEGACY_MIN_AGE_MS, ["con.sock"]);
    mkdirSync(join(sub, "ctl.sock"));
    utimesSync(join(sub, "ctl.sock"), new Date(0), new Date(0));
    utimesSync(sub, new Date(0), new Date(0));
    const plain = legacyDir(parent, "nucleus-qemu-plain0", 2 * LEGACY_MIN_AGE_MS, []);
    writeFileSync(join(plain, "con.sock"), "not a socket");
    utimesSync(join(plain, "con.sock"), new Date(0), new Date(0));
    utimesSync(plain, new Date(0), new Date(0));
    const open = legacyDir(parent, "nucleus-qemu-open00");
    chmodSync(open, 0o755);
    // A socket touched recently in an old dir: the dir is in use.
    const busy = legacyDir(parent, "nucleus-qemu-busy00");
    utimesSync(join(busy, "ctl.sock"), new Date(), new Date());
    utimesSync(busy, new Date(0), new Date(0));
    expect(sweepStaleRunDirs(parent, () => true)).toEqual([]);
    for (const d of [recent, extra, sub, plain, open, busy]) expect(existsSync(d)).toBe(true);
    expect(existsSync(join(extra, "notes.txt"))).toBe(true);
    // The age is measured from `now`: a day later, the recent one is stale too.
    expect(sweepStaleRunDirs(parent, () => true, Date.now() + LEGACY_MIN_AGE_MS + 60_000)).toEqual([recent, busy].sort());
  });

  it("never follows a symlink of the older naming, whatever it points to", () => {
    const parent = tmp();
    const target = legacyDir(tmp(), "nucleus-qemu-target");
    const link = join(parent, "nucleus-qemu-lnk999");
    symlinkSync(target, link);
    expect(sweepStaleRunDirs(parent, () => true)).toEqual([]);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(existsSync(join(target, "ctl.sock"))).toBe(true);
  });

  it.skipIf(!root)(`keeps a dir of the older naming owned by another uid${root ? "" : " (skipped: chown needs root)"}`, () => {
    const parent = tmp();
    const other = legacyDir(parent, "nucleus-qemu-uid999");
    chownSync(other, 65534, 65534);
    expect(sweepStaleRunDirs(parent, () => true)).toEqual([]);
    expect(existsSync(other)).toBe(true);
  });
});
