// The table of CLI commands, in the order `nucleus --help` lists them.

import type { CliCommand } from "./command.js";
import { doctorCommand } from "./doctor.js";

export const commands: CliCommand[] = [doctorCommand];
