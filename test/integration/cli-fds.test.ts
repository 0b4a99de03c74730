// A gateway handed open file descriptors without close-on-exec (by a careless
// shell, IDE or supervisor) closes them at start-up: no sandboxed server
// inherits them. The inherited fd here is a private temp file, the canary.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamTransport } from "../../src/gateway/stream-transport.js";
import { findBwrap } from "../../src/sandbox/bubblewrap/host.js";
import { TINY } from "../helpers/gateway.js";
import { NUCLEUS, ensureBuilt, tempConfig } from "../helpers/cli.js";

const node = process.execPath;
const hasBwrap = findBwrap() !== null;
const dir = mkdtempSync(join(tmpdir(), "nucleus-fds-"));
const canary = join(dir, "canary-fd");

beforeAll(() => ensureBuilt(), 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function fdsSeenByServer(backendLines: string): Promise<{ fds: Record<string, string>; stderr: string }> {
  const cfg = tempConfig(`[servers.tiny]\ncommand = [${JSON.stringify(node)}, ${JSON.stringify(TINY)}, "normal", "tiny"]\n${backendLines}\n`);
  // fd 20 of the gateway: the canary file, opened by bash without close-on-exec as a careless
  // parent would. (fds that Node's spawn sets up are close-on-exec in a Node child already.)
  const child = spawn("/bin/bash", ["-c", 'exec 20>"$1"; shift; exec "$@"', "bash", canary, node, NUCLEUS, "--log-level", "info", "-c", cfg.path, "run", "tiny"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const client = new Client({ name: "fds-test", version: "1" });
  let fds: Record<string, string>;
  try {
    await client.connect(new StreamTransport(child.stdout!, child.stdin!, { role: "client", peer: "nucleus" }));
    const r = await client.callTool({ name: "fds", arguments: {} });
    fds = JSON.parse((r.content as Array<{ text: string }>)[0]!.text) as Record<string, string>;
  } finally {
    await client.close().catch(() => undefined);
    child.kill("SIGTERM");
    await new Promise((r) => child.once("close", r));
    cfg.cleanup();
  }
  // (Read once the gateway has exited: all of its stderr is in.)
  return { fds, stderr };
}

describe("file descriptors the gateway inherited", () => {
  it.skipIf(!hasBwrap)("are closed at start-up: a bubblewrap server sees only its own", async () => {
    const { fds, stderr } = await fdsSeenByServer('vm_profile = "locked"');
    expect(Object.keys(fds)).toContain("0");
    expect(JSON.stringify(fds)).not.toContain("canary-fd");
    expect(stderr).toMatch(/closed file descriptors inherited without close-on-exec.*fds=([0-9]+,)*20\b/);
    expect(stderr).not.toMatch(/every sandbox inherits them/);
  }, 60_000);

  it("are closed at start-up for an unsandboxed server too", async () => {
    const { fds } = await fdsSeenByServer('insecure_unsandboxed = true\nbackend = "unsandboxed"');
    expect(Object.keys(fds).length).toBeGreaterThan(2);
    expect(JSON.stringify(fds)).not.toContain("canary-fd");
  }, 60_000);
});
