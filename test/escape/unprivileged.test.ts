// Runs the escape suite a second time as an unprivileged user (desktop users
// are not root; bubblewrap, cgroups and user namespaces behave differently for
// them). As root: creates the user `nucleus-test` when missing, delegates v1
// cgroup parents to it (as an administrator would), re-runs escape.test.ts
// under runuser and asserts every attack failed. Not root: the suite already
// ran unprivileged, so the root variant is skipped visibly.
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Controller, ControllerPlace } from "../../src/sandbox/cgroups/layout.js";
import { hostLayout } from "../../src/sandbox/cgroups/manager.js";
import { findBwrap } from "../../src/sandbox/bubblewrap/host.js";
import { TEST_USER, ensureTestUser } from "../helpers/test-user.js";

const root = process.getuid?.() === 0;
const hasRunuser = existsSync("/usr/sbin/runuser") || existsSync("/sbin/runuser");
const canRun = root && hasRunuser && findBwrap() !== null;
const repo = resolve(import.meta.dirname, "..", "..");
const cleanups: Array<() => void> = [];

afterAll(() => {
  for (const c of cleanups.reverse()) {
    try {
      c();
    } catch {
      /* best effort: listed in the test output if it matters */
    }
  }
});

/** Delegate a child of each v1 controller's parent to the user, the way an administrator would. */
function delegateCgroups(uid: number, gid: number): Partial<Record<Controller, ControllerPlace>> {
  const out: Partial<Record<Controller, ControllerPlace>> = {};
  const layout = hostLayout();
  for (const [c, place] of Object.entries(layout.places) as Array<[Controller, ControllerPlace]>) {
    if (place.version !== 1) continue;
    const dir = join(place.parent, `nucleus-deleg-${uid}-${process.pid}`);
    try {
      mkdirSync(dir);
      for (const f of [".", ...readdirSync(dir)]) chownSync(join(dir, f), uid, gid);
      out[c] = { version: 1, parent: dir };
      cleanups.push(() => rmdirSync(dir));
    } catch {
      /* this controller stays undelegated; the suite skips what needs it, visibly */
    }
  }
  return out;
}

describe("escape suite as an unprivileged user", () => {
  it.skipIf(!canRun)(
    `every attack fails when the gateway runs as ${TEST_USER}${canRun ? "" : root ? " (skipped: runuser or bwrap missing)" : " (skipped: not root; escape.test.ts already ran unprivileged)"}`,
    { timeout: 300_000 },
    () => {
      const { uid, gid } = ensureTestUser();
      const work = mkdtempSync(join(tmpdir(), "nucleus-unpriv-"));
      cleanups.push(() => rmSync(work, { recursive: true, force: true }));
      chmodSync(work, 0o755);
      chownSync(work, uid, gid);
      // A setuid-root binary the attacker may try (root-owned, in a root-owned directory).
      const suidDir = mkdtempSync(join(tmpdir(), "nucleus-suid-"));
      cleanups.push(() => rmSync(suidDir, { recursive: true, force: true }));
      chmodSync(suidDir, 0o755);
      copyFileSync("/usr/bin/id", join(suidDir, "suid-id"));
      chmodSync(join(suidDir, "suid-id"), 0o4755);
      const parents = delegateCgroups(uid, gid);
      const report = join(work, "report.json");
      const r = spawnSync(
        "runuser",
        ["-u", TEST_USER, "--", "env", `HOME=${work}`, `PATH=${process.env.PATH}`, `NUCLEUS_CGROUP_PARENTS=${JSON.stringify(parents)}`,
          `NUCLEUS_ESCAPE_SETUID=${join(suidDir, "suid-id")}`, process.execPath, join(repo, "node_modules", "vitest", "vitest.mjs"), "run",
          "test/escape/escape.test.ts", "--configLoader=runner", "--reporter=json", `--outputFile=${report}`],
        { cwd: repo, encoding: "utf8", timeout: 280_000 },
      );
      expect(existsSync(report), `no report from the unprivileged run:\n${r.stdout}\n${r.stderr}`).toBe(true);
      const json = JSON.parse(readFileSync(report, "utf8")) as {
        testResults: Array<{ assertionResults: Array<{ fullName: string; status: string; failureMessages: string[] }> }>;
      };
      const results = json.testResults.flatMap((t) => t.assertionResults);
      const failed = results.filter((t) => t.status === "failed").map((t) => `${t.fullName}: ${t.failureMessages.join(" ").slice(0, 400)}`);
      expect(failed).toEqual([]);
      expect(results.filter((t) => t.status === "passed").length).toBeGreaterThanOrEqual(24);
      expect(results.every((t) => t.fullName.includes(`uid ${uid}`))).toBe(true);
      // Where a controller was delegated, the attack it contains must really have run.
      if (parents.pids) expect(results.find((t) => t.fullName.includes("fork bomb"))?.status).toBe("passed");
      if (parents.memory) expect(results.find((t) => t.fullName.includes("memory bomb"))?.status).toBe("passed");
      const skipped = results.filter((t) => t.status !== "passed").map((t) => t.fullName);
      if (skipped.length > 0) console.log(`skipped in the unprivileged run: ${skipped.join("; ")}`);
    },
  );
});
