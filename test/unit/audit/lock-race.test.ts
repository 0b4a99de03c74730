// Several writer processes meet a stale lock (its owner is gone) at the same
// moment: exactly one may break it, and the chain they write together must
// verify. Before the break lock, two breakers could both end up writing.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditLog } from "../../../src/audit/verify.js";

const WRITERS = 4;
const RECORDS = 5;
const ROUNDS = 20;

let dir: string;
let writer: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nucleus-lock-race-"));
  // The writers are plain node processes: bundle the audit log once for them.
  const bundle = join(dir, "audit-log.mjs");
  await build({ entryPoints: [resolve(import.meta.dirname, "../../../src/audit/audit-log.ts")], bundle: true, platform: "node", format: "esm", outfile: bundle, logLevel: "silent" });
  writer = join(dir, "writer.mjs");
  // Waits for "go" on stdin so that every writer reaches the stale lock together.
  await writeFile(
    writer,
    [
      `import { AuditLog } from ${JSON.stringify(bundle)};`,
      `const [path, name, n] = process.argv.slice(2);`,
      `process.stdout.write("ready\\n");`,
      `process.stdin.once("data", async () => {`,
      `  process.stdin.pause();`,
      `  const log = new AuditLog(path, { lockTimeoutMs: 60_000 });`,
      `  await Promise.all(Array.from({ length: Number(n) }, (_, i) => log.append({ type: "tool.call", fields: { server: name, i } })));`,
      `  await log.close();`,
      `});`,
    ].join("\n"),
  );
}, 60_000);

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

function startWriter(path: string, name: string): Promise<{ child: ChildProcess; done: Promise<number | null> }> {
  const child = spawn(process.execPath, [writer, path, name, String(RECORDS)], { stdio: ["pipe", "pipe", "inherit"] });
  children.add(child);
  const done = new Promise<number | null>((r) => child.once("exit", (code) => (children.delete(child), r(code))));
  return new Promise((ready, fail) => {
    child.once("error", fail);
    child.stdout!.once("data", () => ready({ child, done }));
  });
}

describe("the audit log lock", () => {
  it(`lets exactly one of ${WRITERS} writer processes break a stale lock (${ROUNDS} rounds), and the chain verifies`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const roundDir = join(dir, `r${round}`);
      await mkdir(roundDir);
      const path = join(roundDir, "audit.jsonl");
      const dead = spawnSync(process.execPath, ["-e", "0"]).pid!;
      await writeFile(`${path}.lock`, String(dead));
      const writers = await Promise.all(Array.from({ length: WRITERS }, (_, i) => startWriter(path, `w${i}`)));
      for (const w of writers) w.child.stdin!.end("go\n");
      expect(await Promise.all(writers.map((w) => w.done))).toEqual(Array(WRITERS).fill(0));
      const v = await verifyAuditLog([path]);
      expect({ round, ok: v.ok, firstBad: v.firstBad }).toEqual({ round, ok: true, firstBad: undefined });
      expect(v.records).toBe(1 + WRITERS * RECORDS);
      const lines = (await readFile(path, "utf8")).trimEnd().split("\n").slice(1).map((l) => JSON.parse(l).fields.server as string);
      for (let i = 0; i < WRITERS; i++) expect(lines.filter((s) => s === `w${i}`)).toHaveLength(RECORDS);
      expect(await readdir(roundDir)).toEqual(["audit.jsonl"]); // neither lock file left behind
    }
  }, 180_000);
});
