// The table of CLI commands, in the order `nucleus --help` lists them.

import type { CliCommand } from "./command.js";
import { checkCommand } from "./check.js";
import { explainCommand } from "./explain.js";

export const commands: CliCommand[] = [checkCommand, explainCommand];
