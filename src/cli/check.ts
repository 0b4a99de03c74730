// `nucleus check`: validates the config file and prints every problem at once.
// Holds no policy; the rules live in src/config/.

import { parseArgs } from "node:util";
import { ExitCode, NucleusError } from "../errors.js";
import { formatProblem } from "../config/config-error.js";
import { discoverConfig } from "../config/discover.js";
import { checkConfig, type ConfigCheck } from "../config/load.js";
import type { CliCommand, CliContext } from "./command.js";

export const checkCommand: CliCommand = {
  name: "check",
  summary: "validate the config file and list every problem",
  usage: [
    "Usage: nucleus [-c FILE] check [--json]",
    "",
    "Validates the config file (every key, path, host rule, profile and secret",
    "reference) without starting any server, and lists every problem at once.",
    "",
    "Options:",
    "  --json   print {ok, problems: [{path, line, message}], warnings: [...]}",
    "",
    "Exit codes: 0 valid, 2 invalid or not found.",
  ].join("\n"),

  async run(args: string[], ctx: CliContext): Promise<number> {
    const { values } = parseArgs({ args, strict: true, allowPositionals: false, options: { json: { type: "boolean" } } });
    let res: ConfigCheck;
    try {
      res = await checkConfig(discoverConfig({ flag: ctx.configPath, env: ctx.env }));
    } catch (err) {
      if (!(err instanceof NucleusError) || !values.json) throw err;
      ctx.stdout.write(JSON.stringify({ ok: false, problems: [{ path: "", line: null, message: err.describe() }], warnings: [] }, null, 2) + "\n");
      return err.exitCode;
    }
    if (values.json) {
      ctx.stdout.write(JSON.stringify({ ok: res.config !== null, source: res.source, problems: res.problems, warnings: res.warnings }, null, 2) + "\n");
      return res.config ? ExitCode.ok : ExitCode.usage;
    }
    for (const w of res.warnings) ctx.stderr.write(`warning: ${formatProblem(w)}\n`);
    if (!res.config) {
      const n = res.problems.length;
      ctx.stderr.write(`config ${res.source} has ${n} ${n === 1 ? "problem" : "problems"}:\n`);
      for (const p of res.problems) ctx.stderr.write(`  ${formatProblem(p)}\n`);
      return ExitCode.usage;
    }
    const names = res.config.servers.map((s) => s.name);
    ctx.stdout.write(`config OK: ${names.length} ${names.length === 1 ? "server" : "servers"}${names.length ? ` (${names.join(", ")})` : ""}\n`);
    return ExitCode.ok;
  },
};
