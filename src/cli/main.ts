// Entry of the `nucleus` command: global flags, command dispatch, exit codes.
// Each command lives in its own file; this file only routes.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ExitCode, NucleusError, errorMessage } from "../errors.js";
import { Logger, parseLogLevel, type LogFormat } from "../log.js";
import type { CliCommand, CliContext } from "./command.js";
import { commands } from "./commands.js";

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

function globalHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "nucleus — run every MCP server in its own sandbox, behind one MCP gateway",
    "",
    "Usage: nucleus [global options] <command> [options]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Global options:",
    "  -c, --config FILE     config file (default ./nucleus.toml, then ~/.config/nucleus/nucleus.toml)",
    "  --log-level LEVEL     debug | info | warn | error | silent (default info)",
    "  --log-format FORMAT   text | json (default text); logs go to stderr",
    "  -V, --version         print the version",
    "  -h, --help            this help; `nucleus <command> --help` for a command",
    "",
    "Exit codes: 0 ok, 1 failure, 2 usage or config error, 3 refused by policy.",
  ].join("\n");
}

export async function main(argv: string[], io: Partial<CliContext> = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  // Global options come before the command name; the rest belongs to the command.
  let parsed;
  const firstPositional = argv.findIndex((a, i) => !a.startsWith("-") && !isOptionValue(argv, i));
  const globalArgs = firstPositional === -1 ? argv : argv.slice(0, firstPositional);
  const rest = firstPositional === -1 ? [] : argv.slice(firstPositional);
  try {
    parsed = parseArgs({
      args: globalArgs,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: "string", short: "c" },
        "log-level": { type: "string" },
        "log-format": { type: "string" },
        version: { type: "boolean", short: "V" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    stderr.write(`nucleus: ${(err as Error).message}\nRun \`nucleus --help\` for usage.\n`);
    return ExitCode.usage;
  }
  const g = parsed.values;
  if (g.version) {
    stdout.write(`nucleus ${version()}\n`);
    return ExitCode.ok;
  }
  const [name, ...args] = rest;
  if (g.help || !name) {
    (name || g.help ? stdout : stderr).write(globalHelp() + "\n");
    return g.help ? ExitCode.ok : ExitCode.usage;
  }
  const level = parseLogLevel(g["log-level"] ?? io.env?.NUCLEUS_LOG_LEVEL ?? process.env.NUCLEUS_LOG_LEVEL ?? "info");
  if (!level) {
    stderr.write(`nucleus: --log-level must be one of debug, info, warn, error, silent; got "${g["log-level"]}"\n`);
    return ExitCode.usage;
  }
  const format = (g["log-format"] ?? "text") as LogFormat;
  if (format !== "text" && format !== "json") {
    stderr.write(`nucleus: --log-format must be text or json; got "${format}"\n`);
    return ExitCode.usage;
  }
  const command: CliCommand | undefined = commands.find((c) => c.name === name);
  if (!command) {
    stderr.write(`nucleus: unknown command "${name}"\nRun \`nucleus --help\` for the list of commands.\n`);
    return ExitCode.usage;
  }
  if (args.includes("--help") || args.includes("-h")) {
    stdout.write(command.usage.trimEnd() + "\n");
    return ExitCode.ok;
  }
  const log = new Logger({ level, format, sink: { write: (l) => void stderr.write(l) } });
  const ctx: CliContext = {
    log,
    configPath: g.config,
    stdout,
    stderr,
    stdin: io.stdin ?? process.stdin,
    env: io.env ?? process.env,
  };
  try {
    return await command.run(args, ctx);
  } catch (err) {
    // SECURITY: whatever a failure says passes the secrets' redactor (set on the logger once secrets were loaded).
    if (err instanceof NucleusError) {
      stderr.write(`nucleus: ${log.redact(err.describe())}\n`);
      return err.exitCode;
    }
    if (err instanceof TypeError && (err as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS")) {
      stderr.write(`nucleus ${name}: ${err.message}\nRun \`nucleus ${name} --help\` for usage.\n`);
      return ExitCode.usage;
    }
    stderr.write(`nucleus: ${log.redact(errorMessage(err))}\n`);
    if (level === "debug" && err instanceof Error && err.stack) stderr.write(log.redact(err.stack) + "\n");
    return ExitCode.failure;
  }
}

function isOptionValue(argv: string[], i: number): boolean {
  const prev = argv[i - 1];
  return prev === "-c" || prev === "--config" || prev === "--log-level" || prev === "--log-format";
}
