import { describe, expect, it } from "vitest";
import { detectLayout, leafName, leafOwner, limitWrites, parseOomKills, parseProcCgroup, preferDelegatedV2 } from "../../../src/sandbox/cgroups/layout.js";

const HYBRID_MOUNTS = [
  "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
  "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
  "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
].join("\n");
const HYBRID_SELF = "8:pids:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";

const V2_MOUNTS = "30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate";
const V2_SELF = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/nucleus.scope\n";

describe("cgroup layout", () => {
  it("uses v1 hierarchies on a hybrid host whose cgroup2 lacks memory", () => {
    const l = detectLayout(HYBRID_MOUNTS, HYBRID_SELF, () => "cpu io");
    expect(l.places).toEqual({
      memory: { version: 1, parent: "/sys/fs/cgroup/memory/process_api/abc" },
      pids: { version: 1, parent: "/sys/fs/cgroup/pids" },
      cpu: { version: 2, parent: "/sys/fs/cgroup/unified" },
    });
  });

  it("uses cgroup v2 where the controllers are delegated", () => {
    const l = detectLayout(V2_MOUNTS, V2_SELF, (d) => (d.endsWith("nucleus.scope") ? "memory pids cpu" : null));
    const dir = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/nucleus.scope";
    expect(l.places).toEqual({ memory: { version: 2, parent: dir }, pids: { version: 2, parent: dir }, cpu: { version: 2, parent: dir } });
  });

  it("says why a controller is missing", () => {
    const l = detectLayout(V2_MOUNTS, V2_SELF, () => "cpu");
    expect(l.places.memory).toBeUndefined();
    expect(l.missing.memory).toMatch(/memory controller is not enabled in cgroup v2/);
  });

  it("maps a cgroup path through a mount whose root is a sub-cgroup", () => {
    const mounts = "40 31 0:32 /docker/x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";
    const l = detectLayout(mounts, "4:memory:/docker/x/inner\n", () => null);
    expect(l.places.memory).toEqual({ version: 1, parent: "/sys/fs/cgroup/memory/inner" });
  });

  it("parses /proc/self/cgroup", () => {
    const p = parseProcCgroup("5:cpu,cpuacct:/a\n0::/b\n");
    expect(p.unified).toBe("/b");
    expect(p.v1.get("cpuacct")).toBe("/a");
  });

  it("writes v1 and v2 limit files", () => {
    const lim = { memoryMiB: 256, pids: 64, cpus: 1.5 };
    expect(limitWrites(1, "memory", lim).map((w) => [w.file, w.value, w.optional])).toEqual([
      ["memory.limit_in_bytes", "268435456", false],
      ["memory.memsw.limit_in_bytes", "268435456", true],
    ]);
    expect(limitWrites(2, "memory", lim).map((w) => [w.file, w.value])).toEqual([["memory.max", "268435456"], ["memory.swap.max", "0"]]);
    expect(limitWrites(2, "cpu", lim).map((w) => w.value)).toEqual(["150000 100000"]);
    expect(limitWrites(1, "cpu", lim).map((w) => [w.file, w.value])).toEqual([["cpu.cfs_period_us", "100000"], ["cpu.cfs_quota_us", "150000"]]);
    expect(limitWrites(1, "pids", lim).map((w) => [w.file, w.value])).toEqual([["pids.max", "64"]]);
  });

  it("names leaves after their owner so leftovers can be swept", () => {
    const n = leafName(4242, "My Server!", "ab12");
    expect(n).toBe("nucleus-4242-my-server--ab12");
    expect(leafOwner(n)).toBe(4242);
    expect(leafOwner("nucleus-probe-1-x")).toBeNull();
    expect(leafOwner("user.slice")).toBeNull();
  });

  it("reads OOM kills from memory.events and memory.oom_control", () => {
    expect(parseOomKills("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")).toBe(1);
    expect(parseOomKills("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")).toBe(2);
    expect(parseOomKills("oom_kill_disable 0\nunder_oom 0\n")).toBe(0);
  });
});

describe("cgroup v2 delegation", () => {
  const scope = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/term.scope";
  const layout = { places: { memory: { version: 2 as const, parent: scope }, cpu: { version: 2 as const, parent: scope }, pids: { version: 1 as const, parent: "/sys/fs/cgroup/pids" } }, missing: {} };

  it("moves the v2 places up to the nearest writable ancestor that delegates all of them", () => {
    const subtree: Record<string, string> = {
      [scope]: "memory cpu", // enabled, but the scope holds processes: no children allowed (not "writable" here)
      "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice": "memory pids", // no cpu: not all v2 controllers
      "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service": "cpu memory pids",
      "/sys/fs/cgroup/user.slice": "cpu memory pids",
    };
    const writable = (d: string) => d.includes("user@1000.service") && d !== scope;
    const out = preferDelegatedV2(layout, "/sys/fs/cgroup", (d) => subtree[d] ?? "", writable);
    const svc = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service";
    expect(out.places.memory).toEqual({ version: 2, parent: svc });
    expect(out.places.cpu).toEqual({ version: 2, parent: svc }); // one directory for every v2 controller
    expect(out.places.pids).toEqual({ version: 1, parent: "/sys/fs/cgroup/pids" }); // v1 untouched
  });

  it("keeps the own cgroup when no writable ancestor delegates the controller", () => {
    const out = preferDelegatedV2(layout, "/sys/fs/cgroup", () => "memory", () => false);
    expect(out.places.memory).toEqual({ version: 2, parent: scope });
  });
});
