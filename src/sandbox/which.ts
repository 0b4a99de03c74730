// PATH lookup without a shell. Not responsible for resolving symlinks (callers realpath).

import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";

export function whichSync(program: string, pathEnv = process.env.PATH ?? ""): string | null {
  if (program.includes("/")) {
    return isAbsolute(program) && isExecutable(program) ? program : null;
  }
  for (const dir of pathEnv.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, program);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

function isExecutable(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
