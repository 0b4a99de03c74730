import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { doctorCommand } from "../../../src/cli/doctor.js";
import { Logger } from "../../../src/log.js";
import { findBwrap } from "../../../src/sandbox/bubblewrap/host.js";
import { anyBackendUsable } from "../../../src/sandbox/host-checks.js";

function ctx() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  stdout.on("data", (d) => (out += d));
  return { c: { log: new Logger({ level: "silent" }), configPath: undefined, stdout, stderr, stdin: new PassThrough(), env: {} }, out: () => out };
}

describe("nucleus doctor", () => {
  it("prints one line per check and reports bubblewrap's state", async () => {
    const { c, out } = ctx();
    const code = await doctorCommand.run([], c);
    const text = out();
    for (const name of ["bubblewrap", "user namespaces", "gateway user", "cgroup memory", "cgroup pids", "cgroup cpu", "seccomp", "landlock", "qemu", "kvm", "firecracker"]) {
      expect(text).toMatch(new RegExp(`^(OK|WARN|FAIL|INFO)\\s+${name}\\s`, "m"));
    }
    if (findBwrap()) expect(text).toMatch(/^OK\s+bubblewrap/m);
    expect(code === 0).toBe(/At least one sandbox backend is usable/.test(text));
  });

  it("emits JSON with --json and rejects unknown flags", async () => {
    const { c, out } = ctx();
    await doctorCommand.run(["--json"], c);
    const parsed = JSON.parse(out()) as { usable: boolean; checks: Array<{ name: string }> };
    expect(parsed.checks.map((x) => x.name)).toContain("seccomp");
    expect(await doctorCommand.run(["--bogus"], ctx().c)).toBe(2);
  });
});

describe("anyBackendUsable", () => {
  const c = (name: string, status: "ok" | "fail" | "info" | "warn") => ({ name, status, detail: "", fix: "" });
  it("needs bubblewrap with user namespaces and seccomp, or a VM backend", () => {
    expect(anyBackendUsable([c("bubblewrap", "ok"), c("user namespaces", "ok"), c("seccomp", "ok")])).toBe(true);
    expect(anyBackendUsable([c("bubblewrap", "ok"), c("user namespaces", "fail"), c("seccomp", "ok"), c("qemu", "info")])).toBe(false);
    expect(anyBackendUsable([c("bubblewrap", "fail"), c("qemu", "ok")])).toBe(true);
  });
});
