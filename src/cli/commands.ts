// The table of CLI commands, in the order `nucleus --help` lists them.

import { auditCommand } from "./audit.js";
import { checkCommand } from "./check.js";
import type { CliCommand } from "./command.js";
import { doctorCommand } from "./doctor.js";
import { explainCommand } from "./explain.js";
import { imageCommand } from "./image.js";
import { runCommand } from "./run.js";
import { serveCommand } from "./serve.js";

export const commands: CliCommand[] = [serveCommand, runCommand, checkCommand, explainCommand, doctorCommand, imageCommand, auditCommand];
