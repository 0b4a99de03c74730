// Parity: a client sees the same tools, prompts, resources and resource
// templates through `nucleus serve` (prefixed) and `nucleus run` (unchanged)
// as talking to server-everything, server-filesystem and server-memory
// directly — with and without the sampling/elicitation/roots capabilities.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema, type ClientCapabilities } from "@modelcontextprotocol/sdk/types.js";
import { EVERYTHING, FILESYSTEM, MEMORY } from "../helpers/gateway.js";
import { NUCLEUS, ensureBuilt } from "../helpers/cli.js";

const node = process.execPath;
const docs = mkdtempSync(join(tmpdir(), "nucleus-parity-docs-"));
writeFileSync(join(docs, "a.txt"), "parity");
const servers = {
  everything: { argv: [EVERYTHING], extra: `vm_profile = "locked"` },
  filesystem: { argv: [FILESYSTEM, docs], extra: `vm_profile = "filesystem-readonly"\nallowed_paths = [${JSON.stringify(docs)}]` },
  memory: { argv: [MEMORY], extra: `vm_profile = "locked"\nenv = { MEMORY_FILE_PATH = "/tmp/m.jsonl" }` },
} as const;
type Name = keyof typeof servers;
const cfgDir = mkdtempSync(join(tmpdir(), "nucleus-parity-"));
const cfg = join(cfgDir, "nucleus.toml");
writeFileSync(
  cfg,
  Object.entries(servers)
    .map(([n, s]) => `[servers.${n}]\ncommand = ${JSON.stringify([node, ...s.argv])}\n${s.extra}\n`)
    .join("\n"),
);

const NONE: ClientCapabilities = {};
const FULL: ClientCapabilities = { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } };

interface Catalog {
  tools: string[];
  prompts: string[];
  resources: string[];
  templates: string[];
}

async function catalogOf(command: string, args: string[], caps: ClientCapabilities): Promise<Catalog> {
  const transport = new StdioClientTransport({ command, args, env: process.env as Record<string, string>, stderr: "ignore" });
  const client = new Client({ name: "parity", version: "1" }, { capabilities: caps });
  if (caps.sampling) client.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: "assistant", content: { type: "text", text: "x" }, model: "m" }));
  if (caps.elicitation) client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "decline" }));
  if (caps.roots) client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: `file://${docs}`, name: "docs" }] }));
  await client.connect(transport);
  try {
    // Servers register capability-dependent tools after initialization (and say list_changed).
    await new Promise((r) => setTimeout(r, 500));
    const caps2 = client.getServerCapabilities() ?? {};
    const sorted = (xs: string[]) => [...xs].sort();
    return {
      tools: sorted((await client.listTools()).tools.map((t) => t.name)),
      prompts: caps2.prompts ? sorted((await client.listPrompts()).prompts.map((p) => p.name)) : [],
      resources: caps2.resources ? sorted((await client.listResources()).resources.map((r) => r.uri)) : [],
      templates: caps2.resources ? sorted((await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate)) : [],
    };
  } finally {
    await client.close();
  }
}

const direct = (n: Name, caps: ClientCapabilities) => catalogOf(node, [...servers[n].argv], caps);
const viaRun = (n: Name, caps: ClientCapabilities) => catalogOf(node, [NUCLEUS, "--log-level", "error", "-c", cfg, "run", n], caps);

beforeAll(() => ensureBuilt(), 120_000);
afterAll(() => {
  rmSync(docs, { recursive: true, force: true });
  rmSync(cfgDir, { recursive: true, force: true });
});

describe.each([
  ["without client capabilities", NONE],
  ["with sampling, elicitation and roots", FULL],
] as const)("parity %s", (_label, caps) => {
  it("nucleus serve offers every server's catalog, prefixed", async () => {
    const all = await catalogOf(node, [NUCLEUS, "--log-level", "error", "-c", cfg, "serve"], caps);
    for (const n of Object.keys(servers) as Name[]) {
      const d = await direct(n, caps);
      const pick = (xs: string[], p: string) => xs.filter((x) => x.startsWith(p)).map((x) => x.slice(p.length)).sort();
      expect(pick(all.tools, `${n}__`), `${n} tools`).toEqual(d.tools);
      expect(pick(all.prompts, `${n}__`), `${n} prompts`).toEqual(d.prompts);
      expect(pick(all.resources, `nucleus://${n}/`), `${n} resources`).toEqual(d.resources);
      expect(pick(all.templates, `nucleus://${n}/`), `${n} templates`).toEqual(d.templates);
    }
    expect(all.tools.length).toBeGreaterThan(20);
  }, 90_000);

  it.each(Object.keys(servers) as Name[])("nucleus run %s offers the same catalog unchanged", async (n) => {
    expect(await viaRun(n, caps)).toEqual(await direct(n, caps));
  }, 60_000);
});
