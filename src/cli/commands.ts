// The table of CLI commands, in the order `nucleus --help` lists them.

import { auditCommand } from "./audit.js";
import type { CliCommand } from "./command.js";

export const commands: CliCommand[] = [auditCommand];
