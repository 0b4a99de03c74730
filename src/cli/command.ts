// The shape of one CLI command and the context every command receives.
// Commands parse their own flags (node:util parseArgs), call into the library
// and print; they hold no policy of their own.

import type { Logger } from "../log.js";

export interface CliContext {
  readonly log: Logger;
  /** Global -c/--config, if given. */
  readonly configPath: string | undefined;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
  readonly env: NodeJS.ProcessEnv;
}

export interface CliCommand {
  readonly name: string;
  /** One line for `nucleus --help`. */
  readonly summary: string;
  /** Full text for `nucleus NAME --help`. */
  readonly usage: string;
  /** Returns the exit code (0 ok, 1 failure, 2 usage/config, 3 refused by policy). */
  run(args: string[], ctx: CliContext): Promise<number>;
}
