import { describe, expect, it } from "vitest";
import { commonVmGaps } from "../../../src/sandbox/microvm/gaps.js";
import { makeSpec } from "../../helpers/spec.js";

describe("microVM gaps", () => {
  it("accepts a plain node server with read-only paths", () => {
    const argv = ["/usr/bin/node", "/srv/pkg/x.js"];
    const spec = makeSpec({ name: "s", argv, launch: { argv, args: [], package: null, cwd: null, env: {}, codeDirs: ["/srv/pkg"] }, paths: [{ path: "/home/u/docs", writable: false }] });
    expect(commonVmGaps(spec, "qemu", { runtime: "/usr/bin/node", initramfsBytes: 100 * 1048576 })).toEqual([]);
  });

  it("refuses a network allowlist, a foreign runtime, grants covering the guest's own dirs, explicit pids", () => {
    const spec = makeSpec({
      name: "s",
      argv: ["/usr/bin/python3", "/opt/unshared/x.py"],
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

  it("keeps an allowlist only for a backend that carries egress streams (QEMU and Firecracker do)", () => {
    const spec = makeSpec({ name: "s", argv: ["/usr/bin/node"], network: { mode: "allowlist", hosts: [] } });
    const facts = { runtime: "/usr/bin/node", initramfsBytes: 1 };
    expect(commonVmGaps(spec, "qemu", facts, { egress: true })).toEqual([]);
    expect(commonVmGaps(spec, "firecracker", facts, { egress: true })).toEqual([]);
    const gaps = commonVmGaps(spec, "some-vmm", facts, { egress: false });
    expect(gaps.map((g) => g.rule)).toEqual(["servers.s.allowed_hosts"]);
    expect(gaps[0]!.message).toMatch(/the some-vmm backend does not use yet/);
  });

  it("refuses a script that is not shared into the guest", () => {
    const spec = makeSpec({ name: "s", argv: ["/usr/bin/node", "/opt/mcp/index.js"] });
    const gaps = commonVmGaps(spec, "qemu", { runtime: "/usr/bin/node", initramfsBytes: 1 });
    expect(gaps.map((g) => g.rule)).toEqual(["servers.s.command"]);
    expect(gaps[0]!.message).toMatch(/\/opt\/mcp\/index.js, which is not shared into the microVM/);
  });
});
