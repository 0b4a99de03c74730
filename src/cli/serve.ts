// `nucleus serve`: the stdio gateway for every configured server.
import type { CliCommand } from "./command.js";
import { runGatewaySession } from "./gateway-session.js";
import { parseArgs } from "node:util";

export const serveCommand: CliCommand = {
  name: "serve",
  summary: "run the MCP gateway on stdio for every configured server",
  usage: `Usage: nucleus [-c FILE] serve

Runs the MCP gateway on stdin/stdout. Every server in the config starts in its
own sandbox (lazily with lazy = true); its tools, prompts and resources are
offered as SERVER__NAME and nucleus://SERVER/URI. Logs go to stderr.

A server whose rules its backend cannot enforce is refused: nothing starts,
exit code 3, with the rule and what to do.

Stops on stdin EOF, SIGINT or SIGTERM, stopping every server.

Options:
  --http   serve MCP over Streamable HTTP instead of stdio, as [gateway.http]
           says (default 127.0.0.1:8787, bearer token required, each client
           session gets its own servers); see docs/http.md

Client config (e.g. Claude Desktop):
  { "command": "/path/to/nucleus/bin/nucleus", "args": ["-c", "/path/nucleus.toml", "serve"] }`,
  async run(args, ctx) {
    const { values } = parseArgs({ args, options: { http: { type: "boolean" } }, allowPositionals: false, strict: true });
    return runGatewaySession(ctx, { http: values.http ?? false });
  },
};
