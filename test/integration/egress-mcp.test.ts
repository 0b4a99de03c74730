// A real MCP server (server-everything) started by the egress agent inside a
// bubblewrap netns: the agent must leave the MCP stdio stream untouched and
// pass stop() (EOF, SIGTERM) through to the server.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { buildAgentPlan, SANDBOX_AGENT_PATHS as S } from "../../src/agent/plan.js";
import { startEgressProxy } from "../../src/egress/proxy.js";
import type { EgressProxy } from "../../src/egress/types.js";
import { spawnSandbox } from "../../src/sandbox/process.js";
import { whichSync } from "../../src/sandbox/which.js";
import { buildAgentInto } from "../fixtures/egress/build-agent.js";
import { connectToSandbox } from "../helpers/mcp.js";
import { makeSpec } from "../helpers/spec.js";
import { rules } from "../unit/policy/egress-rule-helper.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const everything = createRequire(import.meta.url).resolve("@modelcontextprotocol/server-everything/dist/index.js");
let tmp: string | null = null;
let proxy: EgressProxy | null = null;

afterEach(async () => {
  await proxy?.close();
  proxy = null;
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = null;
});

describe("an MCP server behind the egress agent", () => {
  it.skipIf(!whichSync("bwrap"))("speaks MCP through the agent in a netns and stops cleanly (needs bwrap)", async () => {
    tmp = mkdtempSync(join(tmpdir(), "nucleus-egress-mcp-"));
    const spec = makeSpec({ name: "everything", argv: [process.execPath, everything], network: { mode: "allowlist", hosts: rules("api.github.com") } });
    proxy = await startEgressProxy({ server: spec.name, rules: rules("api.github.com"), socketPath: join(tmp, "egress.sock") });
    const agentDir = join(tmp, "agent");
    buildAgentInto(join(root, "src/agent"), agentDir);
    const plan = buildAgentPlan(spec);
    writeFileSync(join(tmp, "hosts"), plan.hostsFile);
    const sandbox = await spawnSandbox({
      serverName: spec.name,
      backend: "bubblewrap",
      argv: [
        "bwrap", "--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session",
        "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run",
        // The repository (and its node_modules) may itself live under /tmp (a CI clone).
        "--ro-bind", root, root,
        "--ro-bind", proxy.socketPath, S.socket,
        "--ro-bind", agentDir, S.agentDir,
        "--ro-bind", join(tmp, "hosts"), S.hosts,
        ...plan.argvPrefix, ...spec.launch.argv,
      ],
      env: { PATH: "/usr/bin:/bin", HOME: "/tmp", ...plan.env },
      defaultGraceMs: 3000,
    });
    const client = await connectToSandbox(sandbox);
    const res = await client.callTool({ name: "echo", arguments: { message: "through the agent" } });
    expect(JSON.stringify(res.content)).toContain("through the agent");
    const exit = await sandbox.stop(3000);
    expect(exit.cause).toBe("stopped");
    expect(exit.message).not.toMatch(/SIGKILL/);
  });
});
