// `nucleus run NAME`: a stdio proxy for one server, names unchanged.
import { parseArgs } from "node:util";
import { NucleusError } from "../errors.js";
import type { CliCommand } from "./command.js";
import { runGatewaySession } from "./gateway-session.js";

export const runCommand: CliCommand = {
  name: "run",
  summary: "proxy one server on stdio, in its sandbox, without renaming",
  usage: `Usage: nucleus [-c FILE] run NAME

Runs the single server NAME from the config in its sandbox and proxies MCP on
stdin/stdout. Tool and prompt names and resource URIs are passed through
unchanged, so a client can have one entry per server:
  { "command": "/path/to/nucleus/bin/nucleus", "args": ["run", "github"] }`,
  async run(args, ctx) {
    const { positionals } = parseArgs({ args, options: {}, allowPositionals: true, strict: true });
    if (positionals.length !== 1) {
      throw new NucleusError("USAGE", "run takes exactly one server name", { hint: "nucleus run NAME (see `nucleus explain` for names)" });
    }
    return runGatewaySession(ctx, { only: positionals[0]! });
  },
};
