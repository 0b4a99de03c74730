// The built CLI with a server in a QEMU microVM: `nucleus image build` (from dist/, whose agent
// differs from the source tree's, so it is its own image), then `nucleus serve` driven by the
// official SDK client over stdio; after the client leaves, no QEMU process remains. One VM boot.
import { dirname } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { whichSync } from "../../src/sandbox/which.js";
import { NUCLEUS, ensureBuilt, runCli, tempConfig } from "../helpers/cli.js";
import { TINY } from "../helpers/gateway.js";
import { alive, qemuUnder } from "../helpers/process.js";

const noQemu = !whichSync("qemu-system-x86_64") || !whichSync("bwrap") || !whichSync("apt-get");
const node = process.execPath;
const cfg = tempConfig(`
[servers.tiny]
command = [${JSON.stringify(node)}, ${JSON.stringify(TINY)}, "normal", "tiny"]
code_dir = [${JSON.stringify(dirname(TINY))}]
backend = "qemu"
vm_profile = "locked"
`);

describe.skipIf(noQemu)("nucleus serve with a server in a QEMU microVM (needs qemu-system-x86_64, bwrap, apt-get)", () => {
  beforeAll(() => ensureBuilt(), 120_000);
  afterAll(() => cfg.cleanup());

  it("builds the CLI's guest image, then lists and calls the server's tools through its VM; nothing left after the client leaves", async () => {
    const build = await runCli(["image", "build"], { timeoutMs: 600_000 });
    expect(build.code, build.stderr).toBe(0);
    expect(build.stderr + build.stdout).toMatch(/image [0-9a-f]{16}/);

    let stderr = "";
    const transport = new StdioClientTransport({ command: node, args: [NUCLEUS, "-c", cfg.path, "--log-level", "debug", "serve"], stderr: "pipe", env: process.env as Record<string, string> });
    transport.stderr?.on("data", (d) => (stderr += d));
    const client = new Client({ name: "qemu-cli-test", version: "1" });
    await client.connect(transport);
    let gateway = 0;
    let vms: number[] = [];
    try {
      gateway = transport.pid!;
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain("tiny__echo");
      const r = await client.callTool({ name: "tiny__echo", arguments: { message: "from the CLI's VM" } });
      expect(JSON.stringify(r.content)).toContain("tiny: from the CLI's VM");
      expect(stderr).toMatch(/server "tiny": backend qemu/);
      expect(stderr).toMatch(/server started in a QEMU microVM/);
      vms = qemuUnder(gateway);
      expect(vms).toHaveLength(1);
    } finally {
      await client.close();
    }
    await expect.poll(() => [gateway, ...vms].filter(alive), { timeout: 20_000 }).toEqual([]);
  }, 300_000);
});
