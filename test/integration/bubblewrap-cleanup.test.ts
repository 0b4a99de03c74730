// Nothing leaks: after stop(), and after the gateway itself is SIGKILLed,
// no sandboxed process, mount, cgroup or temp directory remains.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { findBwrap } from "../../src/sandbox/bubblewrap/host.js";
import { leafName, type CgroupLayout } from "../../src/sandbox/cgroups/layout.js";
import { hostLayout, probeControllers, sweepStaleCgroups } from "../../src/sandbox/cgroups/manager.js";
import { launchHostile, makeBackend } from "../escape/harness.js";
import { pidsWhere, procFile } from "../helpers/process.js";

const noBwrap = findBwrap() === null;
const skipNote = noBwrap ? " (skipped: bwrap is not installed)" : "";
const repo = resolve(import.meta.dirname, "..", "..");

const processesWith = (marker: string) => pidsWhere((p) => procFile(p, "cmdline").includes(marker));

async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

const mounts = () => readFileSync("/proc/self/mountinfo", "utf8");
const bwrapTemps = () => readdirSync(tmpdir()).filter((n) => /bwrap|nucleus-bw/.test(n));
const cgroupDirs = (details: Readonly<Record<string, string>>) => Object.entries(details).filter(([k]) => k.startsWith("cgroup.")).map(([, v]) => v);

describe("bubblewrap cleanup", () => {
  it.skipIf(noBwrap)(`leaves no process, mount, cgroup or temp dir after stop()${skipNote}`, async () => {
    const before = { mounts: mounts(), temps: bwrapTemps() };
    const h = await launchHostile(makeBackend(), "stopme");
    const inside = (await h.attack("whoami")) as { detail: { pid: number } };
    expect(inside.detail.pid).toBeLessThan(10); // its own pid namespace
    const cgroups = cgroupDirs(h.sandbox.details);
    const exit = await h.sandbox.stop(2000);
    expect(exit.cause).toBe("stopped");
    expect(() => process.kill(Number(h.sandbox.details.pid), 0)).toThrow();
    for (const d of cgroups) expect(existsSync(d)).toBe(false);
    expect(mounts()).toBe(before.mounts);
    expect(bwrapTemps()).toEqual(before.temps);
  });

  it.skipIf(noBwrap)(`leaves no process or mount when the gateway is SIGKILLed; its cgroups are swept${skipNote}`, async () => {
    const marker = `nucleus-orphan-${randomBytes(6).toString("hex")}`;
    const before = mounts();
    const gw = spawn(process.execPath, [join(repo, "node_modules", "vite-node", "vite-node.mjs"), "test/fixtures/gateway-like.ts", marker], { cwd: repo, stdio: ["ignore", "pipe", "inherit"] });
    const line = await new Promise<string>((res, rej) => {
      createInterface({ input: gw.stdout! }).once("line", res);
      gw.once("exit", (c) => rej(new Error(`gateway-like parent exited early (${c})`)));
    });
    const details = JSON.parse(line) as Record<string, string>;
    expect(await until(() => processesWith(marker).length > 0)).toBe(true);
    gw.kill("SIGKILL");
    // --die-with-parent: the sandbox and everything in it dies with the gateway.
    expect(await until(() => processesWith(marker).length === 0)).toBe(true);
    expect(mounts()).toBe(before);
    const cgroups = cgroupDirs(details);
    if (makeBackend().controllers().pids.usable) expect(cgroups.length).toBeGreaterThan(0);
    // (A process that was just killed can stay listed until it is reaped: wait for that, briefly.)
    const procsOf = (d: string) => (existsSync(d) ? readFileSync(join(d, "cgroup.procs"), "utf8").trim() : "");
    expect(await until(() => cgroups.every((d) => procsOf(d) === ""))).toBe(true);
    // Nobody was left to rmdir them; the next gateway's backend sweeps them.
    makeBackend().sweepStale();
    for (const d of cgroups) expect(existsSync(d)).toBe(false);
  });

  const layout = hostLayout();
  const usable = Object.entries(probeControllers(layout)).filter(([, st]) => st.usable).map(([c]) => c as keyof typeof layout.places);
  const noCgroups = usable.length === 0 ? " (skipped: no usable cgroup controller here)" : "";
  it.skipIf(usable.length === 0)(`kills a sandbox that outlived its gateway when it sweeps that gateway's cgroups${noCgroups}`, async () => {
    // A private parent per hierarchy (no other test's sweep looks there), holding the leaf of a gateway that no
    // longer runs: a process that has exited, its pid in the leaf's name as leafName puts it.
    const parents = [...new Set(usable.map((c) => layout.places[c]!.parent))].map((p) => ({ p, mine: join(p, `sweep-test-${randomBytes(3).toString("hex")}`) }));
    const own: CgroupLayout = { places: Object.fromEntries(usable.map((c) => [c, { ...layout.places[c]!, parent: parents.find((x) => x.p === layout.places[c]!.parent)!.mine }])), missing: {} };
    const deadPid = spawnSync("/bin/true").pid!;
    const dirs = parents.map((x) => join(x.mine, leafName(deadPid, "orphan", "t1")));
    // What outlived it: a harmless process, put in that leaf by hand.
    const orphan = spawn("/bin/sleep", ["300"], { stdio: "ignore", detached: true });
    const gone = new Promise((r) => orphan.once("exit", (_code, signal) => r(signal)));
    try {
      for (const d of dirs) {
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, "cgroup.procs"), String(orphan.pid));
      }
      expect(sweepStaleCgroups(own).killed).toEqual([orphan.pid]);
      expect(await gone).toBe("SIGKILL");
      // Empty now: this sweep or the next removes the leaf.
      expect(await until(() => (sweepStaleCgroups(own), dirs.every((d) => !existsSync(d))))).toBe(true);
    } finally {
      orphan.kill("SIGKILL");
      await until(() => orphan.exitCode !== null || orphan.signalCode !== null);
      for (const d of [...dirs, ...parents.map((x) => x.mine)]) if (existsSync(d)) spawnSync("rmdir", [d]);
    }
  });
});
