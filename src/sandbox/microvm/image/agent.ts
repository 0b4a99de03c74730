// The guest agent's JavaScript, as it goes into the image: the compiled files
// next to this module (dist/) or, when running from source (tests), the
// TypeScript transpiled on the fly with the `typescript` dev dependency.
// Not responsible for the agent's behaviour (src/agent/guest).

import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export interface AgentFile {
  readonly name: string;
  readonly data: Buffer;
}

export function agentDir(): string {
  return fileURLToPath(new URL("../../../agent/guest/", import.meta.url));
}

/** The agent's files as ES modules (`main.js` is the entry). */
export async function agentFiles(dir = agentDir()): Promise<AgentFile[]> {
  const names = readdirSync(dir);
  const js = names.filter((n) => n.endsWith(".js"));
  if (js.length > 0) return js.sort().map((name) => ({ name, data: readFileSync(join(dir, name)) }));
  const ts = names.filter((n) => n.endsWith(".ts") && !n.endsWith(".d.ts")).sort();
  if (ts.length === 0 || !existsSync(join(dir, "main.ts"))) throw new Error(`no guest agent in ${dir}`);
  let transpile: (src: string) => string;
  try {
    const mod = (await import("typescript")) as unknown as { default: typeof import("typescript") };
    const t = mod.default;
    transpile = (src) =>
      t.transpileModule(src, { compilerOptions: { target: t.ScriptTarget.ES2022, module: t.ModuleKind.ES2022 } }).outputText;
  } catch {
    throw new Error(`the guest agent in ${dir} is not compiled. Hint: run \`npm run build\` first.`);
  }
  return ts.map((name) => ({
    name: name.replace(/\.ts$/, ".js"),
    data: Buffer.from(transpile(readFileSync(join(dir, name), "utf8")), "utf8"),
  }));
}

export function agentHash(files: readonly AgentFile[]): string {
  const h = createHash("sha256");
  for (const f of files) h.update(f.name).update("\0").update(f.data).update("\0");
  return h.digest("hex");
}
