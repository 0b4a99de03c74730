// End to end through a real Firecracker: only where /dev/kvm works and
// NUCLEUS_FIRECRACKER_BIN names the binary (never on the TCG-only CI hosts).
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { Logger } from "../../src/log.js";
import { FirecrackerBackend } from "../../src/sandbox/microvm/firecracker/backend.js";
import { chooseAccel } from "../../src/sandbox/microvm/qemu/host.js";
import { connectToSandbox } from "../helpers/mcp.js";
import { makeSpec } from "../helpers/spec.js";

const require = createRequire(import.meta.url);
const everything = require.resolve("@modelcontextprotocol/server-everything/dist/index.js");
const nodeModules = everything.slice(0, everything.indexOf("/node_modules/") + "/node_modules".length);
const log = new Logger({ level: "silent" });
const noFirecracker = chooseAccel({}).accel !== "kvm" || !process.env.NUCLEUS_FIRECRACKER_BIN;

describe("Firecracker backend", () => {
  it("probe says why it is unavailable without KVM or the binary", async () => {
    const p = await new FirecrackerBackend({ env: { PATH: "" } }).probe();
    expect(p.available).toBe(false);
    expect(p.reason).toMatch(/Firecracker needs .*the firecracker binary/);
  });

  it("refuses a writable granted path (no shared filesystem in Firecracker)", async () => {
    const spec = makeSpec({ name: "w", argv: [process.execPath, everything], paths: [{ path: "/tmp/x", writable: true }] });
    const gaps = await new FirecrackerBackend().gaps(spec);
    expect(gaps.find((g) => g.rule === "servers.w.allowed_paths[0]")?.message).toMatch(/read-only drive images/);
  });

  it.skipIf(noFirecracker)("runs server-everything in a Firecracker microVM (needs /dev/kvm with vmx/svm and NUCLEUS_FIRECRACKER_BIN)", async () => {
    const backend = new FirecrackerBackend();
    const spec = makeSpec({ name: "fc", argv: [process.execPath, everything], launch: { argv: [process.execPath, everything], args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] } });
    const sandbox = await backend.launch(spec, { secrets: new Map([["TOKEN", { value: "fc-secret", as: "env" }]]), log, egressSocket: null });
    try {
      const client = await connectToSandbox(sandbox);
      expect((await client.listTools()).tools.map((t) => t.name)).toContain("echo");
      const env = await client.callTool({ name: "get-env", arguments: {} });
      expect(JSON.stringify(env.content)).toContain("fc-secret");
    } finally {
      expect((await sandbox.stop(5000)).cause).toBe("stopped");
    }
  }, 120_000);
});
