import { describe, expect, it } from "vitest";
import type { BackendName } from "../../../src/config/spec.js";
import type { Backend, Gap } from "../../../src/sandbox/backend.js";
import { selectBackend } from "../../../src/sandbox/select.js";
import { BubblewrapBackend } from "../../../src/sandbox/bubblewrap/backend.js";
import { findBwrap } from "../../../src/sandbox/bubblewrap/host.js";
import { UnsandboxedBackend } from "../../../src/sandbox/unsandboxed.js";
import { makeSpec } from "../../helpers/spec.js";

// Minimal backends with scripted probe/gaps answers: select.ts only reads those two.
function fake(name: BackendName, available: boolean, gaps: Gap[] = []): Backend {
  return {
    name,
    probe: async () => ({ available, reason: available ? "ok" : `${name} missing`, hints: [`install ${name}`] }),
    gaps: async () => gaps,
    launch: async () => {
      throw new Error("not launched in selection tests");
    },
  };
}
const spec = makeSpec({ name: "s", argv: ["/usr/bin/node"] });
const gap: Gap = { rule: "servers.s.allowed_hosts", message: "m", hint: "h" };

describe("selectBackend", () => {
  it("auto prefers firecracker, then qemu with KVM, then bubblewrap", async () => {
    const all = [fake("unsandboxed", true), fake("bubblewrap", true), fake("qemu", true), fake("firecracker", true)];
    expect((await selectBackend(spec, "auto", all, { kvm: true })).backend.name).toBe("firecracker");
    const noFc = [fake("bubblewrap", true), fake("qemu", true), fake("firecracker", false)];
    expect((await selectBackend(spec, "auto", noFc, { kvm: true })).backend.name).toBe("qemu");
    const sel = await selectBackend(spec, "auto", noFc, { kvm: false });
    expect(sel.backend.name).toBe("bubblewrap");
    expect(sel.reason).toMatch(/firecracker unavailable.*qemu skipped \(no KVM/);
  });

  it("auto never picks unsandboxed", async () => {
    await expect(selectBackend(spec, "auto", [fake("unsandboxed", true), fake("bubblewrap", false)], { kvm: false })).rejects.toMatchObject({
      code: "BACKEND_UNAVAILABLE",
      exitCode: 3,
    });
  });

  it("auto skips a backend with gaps when a later one has none, else keeps the strongest to refuse", async () => {
    const sel = await selectBackend(spec, "auto", [fake("firecracker", true, [gap]), fake("bubblewrap", true)], { kvm: true });
    expect(sel.backend.name).toBe("bubblewrap");
    const both = await selectBackend(spec, "auto", [fake("firecracker", true, [gap]), fake("bubblewrap", true, [gap])], { kvm: true });
    expect(both.backend.name).toBe("firecracker");
    expect(both.reason).toMatch(/will refuse/);
  });

  it("a named backend is used as named, and refused (not replaced) when it cannot run", async () => {
    const all = [fake("bubblewrap", true), fake("qemu", false)];
    expect((await selectBackend(spec, "bubblewrap", all)).backend.name).toBe("bubblewrap");
    await expect(selectBackend(spec, "qemu", all)).rejects.toThrow(/backend "qemu" \(from gateway.backend\) cannot run here: qemu missing/);
    const own = makeSpec({ name: "s", argv: ["/usr/bin/node"], backend: "qemu" });
    await expect(selectBackend(own, "bubblewrap", all)).rejects.toThrow(/servers\.s\.backend/);
    await expect(selectBackend(spec, "firecracker", all)).rejects.toThrow(/not built into this gateway/);
  });
});

describe("selectBackend with the real backends", () => {
  const hasBwrap = findBwrap() !== null;
  it.skipIf(!hasBwrap)(`auto picks bubblewrap over unsandboxed${hasBwrap ? "" : " (skipped: bwrap is not installed)"}`, async () => {
    const sel = await selectBackend(spec, "auto", [new UnsandboxedBackend(), new BubblewrapBackend()]);
    expect(sel.backend.name).toBe("bubblewrap");
    expect(sel.reason).toMatch(/bubblewrap available and enforces every rule/);
  });
});
