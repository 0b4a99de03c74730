// Test helper: config files in private temp directories.
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkConfig, type ConfigCheck } from "../../../src/config/load.js";

export class TempConfigDir {
  readonly dir: string;
  constructor() {
    this.dir = realpathSync(mkdtempSync(join(tmpdir(), "nucleus-config-")));
  }
  mkdir(rel: string): string {
    const p = join(this.dir, rel);
    mkdirSync(p, { recursive: true });
    return p;
  }
  file(rel: string, text: string): string {
    const p = join(this.dir, rel);
    writeFileSync(p, text);
    return p;
  }
  async check(toml: string): Promise<ConfigCheck> {
    return checkConfig(this.file("nucleus.toml", toml));
  }
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `path: message` lines of a check, for readable assertions. */
export function problemLines(res: ConfigCheck): string[] {
  return res.problems.map((p) => `${p.path}: ${p.message}`);
}
