import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { UnsandboxedBackend } from "../../src/sandbox/unsandboxed.js";
import { Logger } from "../../src/log.js";
import { connectToSandbox } from "../helpers/mcp.js";
import { makeSpec } from "../helpers/spec.js";

const require = createRequire(import.meta.url);
const everything = require.resolve("@modelcontextprotocol/server-everything/dist/index.js");
const log = new Logger({ level: "silent" });

describe("unsandboxed backend", () => {
  it("refuses a server that did not opt in", async () => {
    const backend = new UnsandboxedBackend();
    const spec = makeSpec({ name: "e", argv: [process.execPath, everything] });
    const gaps = await backend.gaps(spec);
    expect(gaps.map((g) => g.rule)).toEqual(["servers.e.backend"]);
    await expect(backend.launch(spec, { secrets: new Map(), log, egressSocket: null })).rejects.toThrow(/without any sandbox/);
  });

  it("runs server-everything with a cleared environment and stops it", async () => {
    process.env.NUCLEUS_TEST_LEAK = "gateway-only";
    const backend = new UnsandboxedBackend();
    const spec = makeSpec({ name: "e", argv: [process.execPath, everything], insecureUnsandboxed: true });
    const sandbox = await backend.launch(spec, { secrets: new Map([["TOKEN", { value: "s3cret", as: "env" }]]), log, egressSocket: null });
    const client = await connectToSandbox(sandbox);
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toContain("echo");
    const res = await client.callTool({ name: "echo", arguments: { message: "hi" } });
    expect(JSON.stringify(res.content)).toContain("hi");
    const exit = await sandbox.stop(2000);
    expect(exit.cause).toBe("stopped");
    expect(() => process.kill(Number(sandbox.details.pid), 0)).toThrow();
  });

  it("refuses a file secret it could not deliver privately", async () => {
    const spec = makeSpec({ name: "e", argv: [process.execPath, everything], insecureUnsandboxed: true, secrets: [{ name: "K", target: "key.pem", as: "file" }] });
    const gaps = await new UnsandboxedBackend().gaps(spec);
    expect(gaps).toEqual([expect.objectContaining({ rule: "servers.e.secrets[0]", message: expect.stringContaining("needs a sandbox's private tmpfs") })]);
  });
});
