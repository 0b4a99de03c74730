// The table of CLI commands, in the order `nucleus --help` lists them.

import type { CliCommand } from "./command.js";
import { imageCommand } from "./image.js";

export const commands: CliCommand[] = [imageCommand];
