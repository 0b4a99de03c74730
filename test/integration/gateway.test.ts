import { describe, expect, it } from "vitest";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  type ClientCapabilities,
} from "@modelcontextprotocol/sdk/types.js";
import { UnsandboxedBackend } from "../../src/sandbox/unsandboxed.js";
import { Logger } from "../../src/log.js";
import { connectToSandbox } from "../helpers/mcp.js";
import { makeSpec } from "../helpers/spec.js";
import { EVERYTHING, MEMORY, TINY, useGateways } from "../helpers/gateway.js";

const node = process.execPath;
const everything = (name = "everything") => makeSpec({ name, argv: [node, EVERYTHING], insecureUnsandboxed: true });
const memory = () => makeSpec({ name: "memory", argv: [node, MEMORY], insecureUnsandboxed: true });
const tiny = (name: string, mode = "normal") => makeSpec({ name, argv: [node, TINY, mode, name], insecureUnsandboxed: true });

const gw = useGateways();

/** The tool names a client sees talking to server-everything directly. */
async function directToolNames(caps: ClientCapabilities): Promise<string[]> {
  const backend = new UnsandboxedBackend();
  const sandbox = await backend.launch(everything(), { secrets: new Map(), log: new Logger({ level: "silent" }), egressSocket: null });
  try {
    const client = await connectToSandbox(sandbox, caps);
    // Conditional tools are registered after initialization: give list_changed a moment.
    await new Promise((r) => setTimeout(r, 300));
    const tools = await client.listTools();
    await client.close();
    return tools.tools.map((t) => t.name).sort();
  } finally {
    await sandbox.stop(2000);
  }
}

const FULL_CAPS: ClientCapabilities = { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } };

describe("gateway: aggregation", () => {
  it("offers the same tools as direct, prefixed, without client capabilities", async () => {
    const direct = await directToolNames({});
    const g = await gw([everything(), memory()]);
    const names = (await g.client.listTools()).tools.map((t) => t.name);
    expect(names.filter((n) => n.startsWith("everything__")).map((n) => n.slice(12)).sort()).toEqual(direct);
    expect(names.some((n) => n.startsWith("memory__"))).toBe(true);
    expect(names.every((n) => /^[A-Za-z0-9_-]{1,64}$/.test(n))).toBe(true);
  });

  it("offers the same tools as direct with sampling, elicitation and roots declared", async () => {
    const direct = await directToolNames(FULL_CAPS);
    expect(direct).toContain("trigger-sampling-request");
    const g = await gw([everything()], {
      capabilities: FULL_CAPS,
      setup: (c) => {
        c.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: "assistant", content: { type: "text", text: "x" }, model: "m" }));
        c.setRequestHandler(ElicitRequestSchema, async () => ({ action: "decline" }));
        c.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [] }));
      },
    });
    // server-everything registers its conditional tools after initialization and says list_changed.
    await expect.poll(async () => (await g.client.listTools()).tools.map((t) => t.name.slice(12)).sort(), { timeout: 10_000 }).toEqual(direct);
  });

  it("namespaces prompts, resources and templates and maps URIs back", async () => {
    const g = await gw([everything()]);
    const prompts = (await g.client.listPrompts()).prompts;
    expect(prompts.length).toBeGreaterThan(0);
    expect(prompts.every((p) => p.name.startsWith("everything__"))).toBe(true);
    const simple = prompts.find((p) => !p.arguments?.some((a) => a.required));
    const got = await g.client.getPrompt({ name: simple!.name });
    expect(got.messages.length).toBeGreaterThan(0);
    const templates = (await g.client.listResourceTemplates()).resourceTemplates;
    expect(templates.length).toBeGreaterThan(0);
    expect(templates.every((t) => t.uriTemplate.startsWith("nucleus://everything/"))).toBe(true);
    const resources = (await g.client.listResources()).resources;
    expect(resources.length).toBeGreaterThan(0);
    const r = resources[0]!;
    expect(r.uri.startsWith("nucleus://everything/")).toBe(true);
    const read = await g.client.readResource({ uri: r.uri });
    expect(read.contents[0]!.uri).toBe(r.uri);
  });

  it("passes names through unchanged in single-server mode (nucleus run)", async () => {
    const direct = await directToolNames({});
    const g = await gw([everything()], { prefix: false });
    expect((await g.client.listTools()).tools.map((t) => t.name).sort()).toEqual(direct);
    const res = await g.client.callTool({ name: "echo", arguments: { message: "plain" } });
    expect(JSON.stringify(res.content)).toContain("plain");
  });

  it("sanitises odd tool names reversibly and routes the call", async () => {
    const g = await gw([tiny("t1")]);
    const names = (await g.client.listTools()).tools.map((t) => t.name);
    const odd = names.find((n) => n.startsWith("t1__weird_name_with_chars"));
    expect(odd).toMatch(/^t1__weird_name_with_chars_[0-9a-f]{8}$/);
    const res = await g.client.callTool({ name: odd!, arguments: {} });
    expect(JSON.stringify(res.content)).toContain("ok");
  });

  it("applies tools.allow / tools.deny and refuses calls to hidden tools", async () => {
    const spec = makeSpec({ name: "t1", argv: [node, TINY, "normal", "t1"], insecureUnsandboxed: true, tools: { allow: ["e*", "s*"], deny: ["sleep"] } });
    const g = await gw([spec]);
    const names = (await g.client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(["t1__echo"]);
    await expect(g.client.callTool({ name: "t1__crash", arguments: {} })).rejects.toThrow(/not allowed by the policy of server "t1"/);
    expect(g.audit.some((a) => a.type === "policy.refused" && a.fields.what === `tool "crash"`)).toBe(true);
    expect(g.audit.some((a) => a.type === "tool.call" && a.fields.outcome === "refused")).toBe(true);
  });
});
