#!/usr/bin/env node
// The quick start's demo: starts `nucleus serve` with examples/nucleus.toml,
// connects as an MCP client (the official SDK, as Claude Desktop or an agent
// would), and shows each server answering from inside its own sandbox — and
// what it cannot see. Run it with `bash scripts/quickstart.sh` (which installs
// and builds first), or `node examples/demo.mjs` once built.
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const repo = fileURLToPath(new URL("..", import.meta.url));
const config = fileURLToPath(new URL("nucleus.toml", import.meta.url));
const bold = (s) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const say = (s = "") => console.log(s);
const text = (r) => (r.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
const indent = (s, n = 4) => s.split("\n").map((l) => " ".repeat(n) + l).join("\n");

async function call(client, name, args = {}) {
  say(`  ${bold("→")} ${name} ${dim(JSON.stringify(args))}`);
  try {
    const r = await client.callTool({ name, arguments: args });
    say(indent((r.isError ? "(tool error) " : "") + text(r).trim().split("\n").slice(0, 14).join("\n")));
  } catch (err) {
    say(indent(`(refused) ${err.message}`));
  }
}

say(bold("Nucleus demo: four MCP servers, each in its own sandbox, behind one gateway"));
say(dim(`config: ${config}`));
say(dim("gateway log (stderr):"));
const transport = new StdioClientTransport({
  command: process.execPath,
  args: [fileURLToPath(new URL("../bin/nucleus", import.meta.url)), "-c", config, "serve"],
  cwd: repo,
  env: process.env, // npm (for the `package` server) needs the proxy/CA settings of this environment
  stderr: "pipe",
});
transport.stderr?.on("data", (d) => process.stdout.write(dim(indent(String(d).trimEnd(), 2)) + "\n"));
const client = new Client({ name: "nucleus-demo", version: "1.0.0" });
await client.connect(transport);

const tools = (await client.listTools()).tools;
const byServer = new Map();
for (const t of tools) {
  const [server, name] = t.name.split("__");
  byServer.set(server, [...(byServer.get(server) ?? []), name]);
}
say();
say(bold(`The client sees ${tools.length} tools, named SERVER__TOOL:`));
for (const [server, names] of byServer) say(`  ${server.padEnd(11)} ${names.join(", ")}`);

say();
say(bold("1. Each server answers from its sandbox"));
await call(client, "everything__echo", { message: "hello from inside a sandbox" });
await call(client, "filesystem__read_text_file", { path: `${repo}examples/shared-docs/README.md` });

say();
say(bold("2. A server's environment holds nothing of the host's (no tokens, no keys)"));
await call(client, "everything__get-env");

say();
say(bold("3. A server told it may read \"/\" still sees only what its policy grants"));
await call(client, "explorer__list_directory", { path: "/" });
await call(client, "explorer__list_directory", { path: "/home" });
await call(client, "explorer__read_text_file", { path: "/etc/passwd" });
await call(client, "explorer__list_directory", { path: "/root" });

say();
say(bold("4. Policy: tools a server's config denies are hidden and refused"));
await call(client, "filesystem__write_file", { path: `${repo}examples/shared-docs/x.txt`, content: "no" });

say();
say(bold("5. A server installed from the npm registry (install scripts never run), started lazily"));
await call(client, "memory__create_entities", { entities: [{ name: "Nucleus", entityType: "project", observations: ["runs MCP servers in sandboxes"] }] });
await call(client, "memory__read_graph");

await client.close();
say();
say(bold("Done.") + " Every server was stopped with the gateway. Next: `bin/nucleus -c examples/nucleus.toml explain explorer`,");
say("`bin/nucleus doctor`, and README.md for using Nucleus from Claude Desktop or another MCP client.");
