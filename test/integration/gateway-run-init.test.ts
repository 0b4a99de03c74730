// `nucleus run` (one server, names unchanged) answers initialize as its server
// would: the server's instructions and only the capabilities it has. `serve`
// keeps the gateway's own answer. A lazy server is not waited for.
import { describe, expect, it } from "vitest";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { makeSpec } from "../helpers/spec.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { EVERYTHING, TINY, useGateways } from "../helpers/gateway.js";
import { Gateway } from "../../src/gateway/gateway.js";
import { Logger } from "../../src/log.js";
import { SecretRedactor } from "../../src/secrets/redactor.js";
import { UnsandboxedBackend } from "../../src/sandbox/unsandboxed.js";

const node = process.execPath;
const gw = useGateways();
const everything = () => makeSpec({ name: "everything", argv: [node, EVERYTHING], insecureUnsandboxed: true });
const tiny = (lazy = false) => makeSpec({ name: "tiny", argv: [node, TINY, "normal", "tiny"], insecureUnsandboxed: true, lazy });

async function direct(argv: string[]): Promise<{ instructions: string | undefined; capabilities: object | undefined }> {
  const client = new Client({ name: "direct", version: "1" });
  await client.connect(new StdioClientTransport({ command: argv[0]!, args: argv.slice(1), stderr: "ignore" }));
  try {
    return { instructions: client.getInstructions(), capabilities: client.getServerCapabilities() };
  } finally {
    await client.close();
  }
}

describe("nucleus run: initialize answered as the server would", () => {
  it("passes on server-everything's instructions and its capability kinds", async () => {
    const d = await direct([node, EVERYTHING]);
    expect(d.instructions?.length ?? 0).toBeGreaterThan(20);
    const g = await gw([everything()], { prefix: false });
    expect(g.client.getInstructions()).toBe(d.instructions);
    const kinds = (c: object | undefined) => Object.keys(c ?? {}).filter((k) => ["tools", "prompts", "resources", "logging", "completions"].includes(k)).sort();
    expect(kinds(g.client.getServerCapabilities())).toEqual(kinds(d.capabilities));
    // The server is already up: the first call needs no wait.
    expect(JSON.stringify((await g.client.callTool({ name: "echo", arguments: { message: "hi" } })).content)).toContain("hi");
  }, 60_000);

  it("declares only tools for a server that has only tools; serve keeps the gateway's own capabilities", async () => {
    const run = await gw([tiny()], { prefix: false });
    expect(Object.keys(run.client.getServerCapabilities() ?? {})).toEqual(["tools"]);
    expect(run.client.getServerCapabilities()?.tools?.listChanged).toBe(true);
    expect(run.client.getInstructions()).toBeUndefined();
    const serve = await gw([tiny()], { prefix: true });
    expect(Object.keys(serve.client.getServerCapabilities() ?? {}).sort()).toEqual(["completions", "logging", "prompts", "resources", "tools"]);
  }, 60_000);

  it("does not wait for a lazy server: it starts on first use", async () => {
    const g = await gw([tiny(true)], { prefix: false });
    expect(Object.keys(g.client.getServerCapabilities() ?? {}).sort()).toEqual(["completions", "logging", "prompts", "resources", "tools"]);
    expect(g.audit.filter((e) => e.type === "server.start")).toHaveLength(0);
    expect(JSON.stringify((await g.client.callTool({ name: "echo", arguments: { message: "lazy" } })).content)).toContain("lazy");
  }, 60_000);

  it("redacts a secret the server puts into its instructions", async () => {
    const value = "s3cr3t-instructions-value";
    const redactor = new SecretRedactor();
    redactor.add("TOKEN", value);
    const spec = makeSpec({ name: "tiny", argv: [node, TINY, "normal", "tiny"], insecureUnsandboxed: true, launch: { argv: [node, TINY, "normal", "tiny"], args: [], package: null, cwd: null, env: { TOKEN: value }, codeDirs: [] } });
    const log = new Logger({ level: "silent" });
    const backend = new UnsandboxedBackend();
    const gateway = new Gateway({
      servers: [spec],
      prefix: false,
      log,
      maxMessageBytes: 1024 * 1024,
      version: "test",
      outgoing: (_server, v) => redactor.redactJson(v),
      launch: (s) => backend.launch(s, { secrets: new Map(), log, egressSocket: null }),
    });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await gateway.connect(a);
    const client = new Client({ name: "t", version: "1" });
    try {
      await client.connect(b);
      expect(client.getInstructions()).toBe("careless instructions holding [REDACTED]");
    } finally {
      await client.close();
      await gateway.close();
    }
  }, 60_000);
});
