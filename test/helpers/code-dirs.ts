// Test helper: the node_modules folder a resolved file lives in (a server's code dir).
import { realpathSync } from "node:fs";
import { basename, dirname } from "node:path";

export function nodeModulesOf(file: string): string {
  let d = dirname(realpathSync(file));
  while (basename(d) !== "node_modules") {
    const up = dirname(d);
    if (up === d) throw new Error(`${file} is not inside a node_modules folder`);
    d = up;
  }
  return d;
}
