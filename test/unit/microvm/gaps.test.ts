import { describe, expect, it } from "vitest";
import { commonVmGaps } from "../../../src/sandbox/microvm/gaps.js";
import { makeSpec } from "../../helpers/spec.js";

describe("microVM gaps", () => {
  it("accepts a plain node server with read-only paths", () => {
    const spec = makeSpec({ name: "s", argv: ["/usr/bin/node", "/srv/x.js"], paths: [{ path: "/home/u/docs", writable: false }] });
    expect(commonVmGaps(spec, "qemu", { runtime: "/usr/bin/node", initramfsBytes: 100 * 1048576 })).toEqual([]);
  });

  it("refuses a network allowlist, a foreign runtime, grants covering the guest's own dirs, explicit pids", () => {
    const spec = makeSpec({
      name: "s",
      argv: ["/usr/bin/python3", "x.py"],
      network: { mode: "allowlist", hosts: [] },
      paths: [
        { path: "/usr", writable: false },
        { path: "/", writable: false },
        { path: "/home/a,b", writable: false },
      ],
      limits: { memoryMiB: 200, cpus: 1, pids: 10, tmpMiB: 16, explicit: { memory: false, cpus: false, pids: true } },
    });
    const rules = commonVmGaps(spec, "qemu", { runtime: "/usr/bin/node", initramfsBytes: 100 * 1048576 }).map((g) => g.rule);
    expect(rules).toEqual([
      "servers.s.allowed_hosts",
      "servers.s.command",
      "servers.s.allowed_paths[0]",
      "servers.s.allowed_paths[1]",
      "servers.s.allowed_paths[2]",
      "servers.s.memory_mib",
      "servers.s.pids",
    ]);
  });
});
