// `nucleus serve` run by an ordinary user, as most desktop users run it
// (CI runs as root): as root, the test creates the user `nucleus-test` when
// missing and runs the built CLI as that user through runuser; as an ordinary
// user, the other CLI tests already run unprivileged and this one is skipped.
import { spawnSync } from "node:child_process";
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { findBwrap } from "../../src/sandbox/bubblewrap/host.js";
import { EVERYTHING } from "../helpers/gateway.js";
import { NUCLEUS, REPO, ensureBuilt } from "../helpers/cli.js";
import { TEST_USER, ensureTestUser } from "../helpers/test-user.js";

const root = process.getuid?.() === 0;
const EGRESS_FIXTURE = join(REPO, "test/fixtures/egress/server-that-tries-egress.mjs");
const runuser = ["/usr/sbin/runuser", "/sbin/runuser"].find((p) => existsSync(p));
const canRun = root && runuser !== undefined && findBwrap() !== null;
const why = !root ? "not root: the other CLI tests already run unprivileged" : "runuser or bwrap missing";

/** Whether `user` can read `path` (every directory on the way must be searchable). */
function readableBy(user: string, path: string): boolean {
  return spawnSync(runuser!, ["-u", user, "--", "test", "-r", path], { stdio: "ignore" }).status === 0;
}

describe("nucleus serve as an ordinary user", () => {
  let dir = "";
  beforeAll(() => {
    if (canRun) ensureBuilt();
  }, 120_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!canRun)(`serves sandboxed servers when run as ${TEST_USER}${canRun ? "" : ` (skipped: ${why})`}`, async () => {
    ensureTestUser();
    // The repository must be readable by that user; a checkout under a private home is not.
    if (!readableBy(TEST_USER, join(REPO, "dist", "cli", "run-main.js")) || !readableBy(TEST_USER, EVERYTHING) || !readableBy(TEST_USER, EGRESS_FIXTURE)) {
      throw new Error(`${REPO} is not readable by ${TEST_USER}: clone it somewhere world-readable to run this test`);
    }
    dir = mkdtempSync(join(tmpdir(), "nucleus-unpriv-cli-"));
    chmodSync(dir, 0o755);
    const cfg = join(dir, "nucleus.toml");
    // "pinned": its rule's default ports 443 and 80 are pinned, below 1024, where no ordinary process may listen in
    // a fresh network namespace until the gateway lowers that namespace's start port (its helper runs as this user).
    // Never dialled: the names resolve nowhere here.
    writeFileSync(cfg, `[servers.everything]\ncommand = [${JSON.stringify(process.execPath)}, ${JSON.stringify(EVERYTHING)}]\nvm_profile = "locked"\n\n` +
      `[servers.pinned]\ncommand = [${JSON.stringify(process.execPath)}, ${JSON.stringify(EGRESS_FIXTURE)}]\nallowed_hosts = ["web.test"]\n`);
    chmodSync(cfg, 0o644);
    accessSync(cfg, constants.R_OK);
    let stderr = "";
    const transport = new StdioClientTransport({
      command: runuser!,
      args: ["-u", TEST_USER, "--", "env", `HOME=${dir}`, `PATH=${process.env.PATH}`, process.execPath, NUCLEUS, "--log-level", "debug", "-c", cfg, "serve"],
      stderr: "pipe",
    });
    transport.stderr?.on("data", (d) => (stderr += d));
    const client = new Client({ name: "unpriv", version: "1" });
    try {
      await client.connect(transport);
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain("everything__echo");
      const r = await client.callTool({ name: "everything__echo", arguments: { message: "as an ordinary user" } });
      expect(JSON.stringify(r.content)).toContain("as an ordinary user");
      expect(stderr).toMatch(/server "everything": backend bubblewrap/);
      // Not root: no "maps to host uid 0" situation, and the gateway says which limits it could not enforce, if any.
      expect(stderr).not.toMatch(/uid 0/);
      // Both pins below 1024 listened in the sandbox and went to the proxy.
      expect(names).toContain("pinned__tcp");
      expect(stderr).toMatch(/egress: the proxy accepts in the sandbox itself.*pins=2/);
      expect(stderr).not.toMatch(/cannot pin|cannot listen/);
      // doctor tries the same on a bare sandbox (bwrap without --dev: no uid 0 in its user namespace) as this user.
      const doctor = spawnSync(runuser!, ["-u", TEST_USER, "--", "env", `HOME=${dir}`, `PATH=${process.env.PATH}`, process.execPath, NUCLEUS, "doctor"], { encoding: "utf8", cwd: dir });
      expect(doctor.stdout).toMatch(/^OK +low-port pins /m);
    } finally {
      await client.close();
    }
  }, 60_000);

  it.skipIf(!canRun)(`a root gateway with [gateway] run_as starts its sandboxes as that user${canRun ? "" : ` (skipped: ${why})`}`, async () => {
    const { uid } = ensureTestUser();
    if (!readableBy(TEST_USER, EVERYTHING)) throw new Error(`${REPO} is not readable by ${TEST_USER}: clone it somewhere world-readable to run this test`);
    dir ||= mkdtempSync(join(tmpdir(), "nucleus-unpriv-cli-"));
    const cfg = join(dir, "run-as.toml");
    writeFileSync(cfg, `[gateway]\nrun_as = "${TEST_USER}"\n\n[servers.everything]\ncommand = [${JSON.stringify(process.execPath)}, ${JSON.stringify(EVERYTHING)}]\nvm_profile = "locked"\n`);
    let stderr = "";
    const transport = new StdioClientTransport({ command: process.execPath, args: [NUCLEUS, "--log-level", "debug", "-c", cfg, "serve"], stderr: "pipe", env: process.env as Record<string, string> });
    transport.stderr?.on("data", (d) => (stderr += d));
    const client = new Client({ name: "run-as", version: "1" });
    try {
      await client.connect(transport);
      const r = await client.callTool({ name: "everything__echo", arguments: { message: "as run_as" } });
      expect(JSON.stringify(r.content)).toContain("as run_as");
      const pid = Number(/server "everything" ready \(server=everything backend=bubblewrap pid=(\d+)/.exec(stderr)?.[1]);
      // The sandbox (bwrap, and so everything in it) runs as that user on the host, not as root.
      const uids = readFileSync(`/proc/${pid}/status`, "utf8").match(/^Uid:\s+(\d+)\s+(\d+)/m);
      expect([Number(uids?.[1]), Number(uids?.[2])]).toEqual([uid, uid]);
    } finally {
      await client.close();
    }
  }, 60_000);
});
