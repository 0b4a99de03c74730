// A root gateway can run its sandboxes as an unprivileged host user (runAs):
// every sandboxed process then belongs to that user instead of host uid 0,
// and the cgroups still hold them.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { Sandbox } from "../../src/sandbox/backend.js";
import { BubblewrapBackend } from "../../src/sandbox/bubblewrap/backend.js";
import { findBwrap } from "../../src/sandbox/bubblewrap/host.js";
import { Logger } from "../../src/log.js";
import { launchHostile } from "../escape/harness.js";
import { ensureTestUser } from "../helpers/test-user.js";
import { makeSpec } from "../helpers/spec.js";

const root = process.getuid?.() === 0;
const canRun = root && findBwrap() !== null && existsSync("/usr/bin/setpriv");
const why = canRun ? "" : root ? " (skipped: bwrap or setpriv missing)" : " (skipped: runAs needs a root gateway)";
const running: Sandbox[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop(2000)));
});

/** pid and all its descendants. */
function tree(pid: number): number[] {
  const kids = new Map<number, number[]>();
  for (const p of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(p)]);
    } catch {
      /* exited */
    }
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(kids.get(p) ?? []));
  }
  return out;
}

const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);

describe("bubblewrap runAs", () => {
  it.skipIf(!canRun)(`runs every sandboxed process as the runAs user${why}`, async () => {
    const { uid, gid } = ensureTestUser();
    const backend = new BubblewrapBackend({ runAs: { uid, gid } });
    const h = await launchHostile(backend, "runas");
    running.push(h.sandbox);
    expect((await h.attack("whoami")).detail).toMatchObject({ uid: 1000 });
    const pids = tree(Number(h.sandbox.details.pid));
    expect(pids.length).toBeGreaterThanOrEqual(3); // bwrap, its pid-1 reaper, the server
    for (const p of pids) expect([p, uidOf(p)]).toEqual([p, uid]);
    const mem = h.sandbox.details["cgroup.memory"];
    if (mem) expect(readFileSync(`${mem}/cgroup.procs`, "utf8").trim().split("\n").map(Number)).toContain(Number(h.sandbox.details.pid));
  });

  it.skipIf(root)(`refuses runAs when the gateway is not root${root ? " (skipped: running as root)" : ""}`, async () => {
    const b = new BubblewrapBackend({ runAs: { uid: 65534, gid: 65534 } });
    const spec = makeSpec({ name: "x", argv: [process.execPath, "-e", "0"] });
    await expect(b.launch(spec, { secrets: new Map(), log: new Logger({ level: "silent" }), egressSocket: null })).rejects.toThrow(/runAs needs a gateway running as root/);
  });
});
