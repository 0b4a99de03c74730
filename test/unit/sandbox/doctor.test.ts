import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { doctorCommand } from "../../../src/cli/doctor.js";
import { Logger } from "../../../src/log.js";
import { findBwrap } from "../../../src/sandbox/bubblewrap/host.js";
import { anyBackendUsable, firecrackerCheck } from "../../../src/sandbox/host-checks.js";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

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
    for (const name of ["bubblewrap", "user namespaces", "gateway user", "cgroup memory", "cgroup pids", "cgroup cpu", "seccomp", "low-port pins", "landlock", "qemu", "kvm", "firecracker"]) {
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

describe("doctor's firecracker line", () => {
  const asRoot = process.getuid?.() === 0;
  const withBins = (names: string[], fn: (dir: string) => void) => {
    const dir = mkdtempSync(join(tmpdir(), "nucleus-fc-doctor-"));
    try {
      for (const n of names) {
        writeFileSync(join(dir, n), "#!/bin/sh\nexit 1\n");
        chmodSync(join(dir, n), 0o755);
      }
      fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it("names what is missing: the binary, KVM, the jailer", () => {
    expect(firecrackerCheck(true, { PATH: "/nonexistent" })).toMatchObject({ status: "info", detail: "not installed" });
    withBins(["firecracker"], (dir) => {
      const env = { PATH: "/nonexistent", NUCLEUS_FIRECRACKER_BIN: join(dir, "firecracker") };
      expect(firecrackerCheck(false, env)).toMatchObject({ status: "info", detail: "installed, but needs KVM" });
      const noJailer = firecrackerCheck(true, env);
      expect(noJailer.status).toBe("info");
      expect(noJailer.detail).toBe("needs the jailer binary");
      expect(noJailer.fix).toMatch(/NUCLEUS_JAILER_BIN/);
      expect(firecrackerCheck(true, { ...env, NUCLEUS_FIRECRACKER_INSECURE_NO_JAILER: "1" })).toMatchObject({ status: "ok", detail: expect.stringMatching(/WITHOUT the jailer/) });
    });
  });

  it.skipIf(!asRoot)("with its jailer next to it, as root: usable once the config names run_as", () => {
    withBins(["firecracker", "jailer"], (dir) => {
      const check = firecrackerCheck(true, { PATH: "/nonexistent", NUCLEUS_FIRECRACKER_BIN: join(dir, "firecracker") });
      expect(check).toMatchObject({ status: "ok", detail: "installed with its jailer; needs [gateway] run_as in the config" });
    });
  });
});
