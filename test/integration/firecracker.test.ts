// End to end through a real Firecracker: only where /dev/kvm works and
// NUCLEUS_FIRECRACKER_BIN names the binary (never on the TCG-only CI hosts).
// Under the jailer when this runs as root and a jailer is found (the normal
// path, and the only one with warm starts); else explicitly without it.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Logger } from "../../src/log.js";
import type { Sandbox } from "../../src/sandbox/backend.js";
import { FirecrackerBackend, type FirecrackerBackendOptions } from "../../src/sandbox/microvm/firecracker/backend.js";
import { findFirecracker } from "../../src/sandbox/microvm/firecracker/host.js";
import { buildImage } from "../../src/sandbox/microvm/image/build.js";
import { chooseAccel } from "../../src/sandbox/microvm/qemu/host.js";
import { connectToSandbox } from "../helpers/mcp.js";
import { makeSpec } from "../helpers/spec.js";
import { ensureTestUser } from "../helpers/test-user.js";

const require = createRequire(import.meta.url);
const everything = require.resolve("@modelcontextprotocol/server-everything/dist/index.js");
const nodeModules = everything.slice(0, everything.indexOf("/node_modules/") + "/node_modules".length);
const log = new Logger({ level: "silent" });
const noFirecracker = chooseAccel({}).accel !== "kvm" || !process.env.NUCLEUS_FIRECRACKER_BIN;
const isRoot = process.getuid?.() === 0;
const jailerFound = !noFirecracker && isRoot && findFirecracker({ runAs: { uid: 1, gid: 1 } }, { uid: 0, gid: 0 }, tmpdir()).ok;

const dirs: string[] = [];
const sandboxes: Sandbox[] = [];
afterEach(async () => {
  for (const s of sandboxes.splice(0)) await s.stop(2000);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "nucleus-fc-it-"));
  dirs.push(d);
  return d;
}
/** The jailer when available (run as the test user), else Firecracker bare, by explicit choice. */
function backendOptions(extra: Partial<FirecrackerBackendOptions> = {}): FirecrackerBackendOptions {
  return jailerFound ? { runAs: ensureTestUser(), chrootBase: tmp(), snapshotRoot: tmp(), ...extra } : { insecureNoJailer: true, ...extra };
}
const spec = () => makeSpec({ name: "fc", argv: [process.execPath, everything], launch: { argv: [process.execPath, everything], args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] } });

describe("Firecracker backend", () => {
  it("probe says why it is unavailable without KVM or the binary", async () => {
    const p = await new FirecrackerBackend({ env: { PATH: "" } }).probe();
    expect(p.available).toBe(false);
    expect(p.reason).toMatch(/Firecracker needs .*the firecracker binary/);
  });

  it("refuses a writable granted path (no shared filesystem in Firecracker)", async () => {
    const s = makeSpec({ name: "w", argv: [process.execPath, everything], paths: [{ path: "/tmp/x", writable: true }] });
    const gaps = await new FirecrackerBackend().gaps(s);
    expect(gaps.find((g) => g.rule === "servers.w.allowed_paths[0]")?.message).toMatch(/read-only drive images/);
  });

  it.skipIf(noFirecracker)("runs server-everything in a Firecracker microVM, booted cold (needs /dev/kvm with vmx/svm and NUCLEUS_FIRECRACKER_BIN)", async () => {
    await buildImage();
    const opts = backendOptions({ warmStart: false });
    const sandbox = await new FirecrackerBackend(opts).launch(spec(), { secrets: new Map([["TOKEN", { value: "fc-secret", as: "env" }]]), log, egressSocket: null });
    sandboxes.push(sandbox);
    expect(sandbox.details.start).toBe("cold");
    expect(sandbox.details.jailer).toBe(jailerFound ? "yes" : "no");
    const client = await connectToSandbox(sandbox);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("echo");
    const env = await client.callTool({ name: "get-env", arguments: {} });
    expect(JSON.stringify(env.content)).toContain("fc-secret");
    expect((await sandbox.stop(5000)).cause).toBe("stopped");
    // Nothing left behind: the chroot (or run dir) is gone once Firecracker is.
    if (opts.chrootBase) expect(readdirSync(join(opts.chrootBase, basename(process.env.NUCLEUS_FIRECRACKER_BIN!)))).toEqual([]);
  }, 180_000);

  it.skipIf(!jailerFound)(
    "warm start: both starts restore one snapshot taken before any secret; the secret is in neither snapshot file; nothing left behind (needs KVM, NUCLEUS_FIRECRACKER_BIN, root and the jailer)",
    async () => {
      await buildImage();
      const opts = backendOptions();
      const backend = new FirecrackerBackend(opts);
      const secret = `warm-secret-${process.pid}-${Date.now()}`;
      let snapMtime = 0;
      for (let i = 0; i < 2; i++) {
        const sandbox = await backend.launch(spec(), { secrets: new Map([["TOKEN", { value: secret, as: "env" }]]), log, egressSocket: null });
        sandboxes.push(sandbox);
        expect(sandbox.details.start).toBe("restored");
        const client = await connectToSandbox(sandbox);
        expect((await client.listTools()).tools.map((t) => t.name)).toContain("echo");
        // The restored guest mounted this server's drive (its code) and got this start's secret.
        expect(JSON.stringify((await client.callTool({ name: "get-env", arguments: {} })).content)).toContain(secret);
        expect((await sandbox.stop(5000)).cause).toBe("stopped");
        const keys = readdirSync(opts.snapshotRoot!);
        expect(keys).toHaveLength(1);
        const mtime = statSync(join(opts.snapshotRoot!, keys[0]!, "mem")).mtimeMs;
        if (i === 1) expect(mtime).toBe(snapMtime); // restored from the same snapshot, not taken again
        snapMtime = mtime;
        expect(readdirSync(join(opts.chrootBase!, basename(process.env.NUCLEUS_FIRECRACKER_BIN!)))).toEqual([]);
      }
      const key = readdirSync(opts.snapshotRoot!)[0]!;
      for (const f of ["vmstate", "mem"]) {
        const bytes = readFileSync(join(opts.snapshotRoot!, key, f));
        expect(bytes.length).toBeGreaterThan(0);
        expect(bytes.includes(Buffer.from(secret)), `${f} holds the secret`).toBe(false);
        expect(statSync(join(opts.snapshotRoot!, key, f)).uid).toBe(0);
      }
    },
    300_000,
  );
});
