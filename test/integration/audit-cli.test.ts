import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AuditLog } from "../../src/audit/audit-log.js";
import { egress, policyRefused, serverStart, toolCall } from "../../src/audit/events.js";
import { auditFileSet } from "../../src/audit/files.js";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
const bin = join(root, "bin", "nucleus");

async function nucleus(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { cwd: root });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let dir: string;
let path: string;
let follower: ChildProcess | null = null;

beforeAll(async () => {
  await run("npm", ["run", "build"], { cwd: root });
  dir = await mkdtemp(join(tmpdir(), "nucleus-audit-cli-"));
  path = join(dir, "audit.jsonl");
  const log = new AuditLog(path, { maxBytes: 4000, keep: 10 });
  await log.append(serverStart({ server: "fs", backend: "bubblewrap", policyDigest: "sha256:aa" }));
  await log.append(serverStart({ server: "gh", backend: "qemu", policyDigest: "sha256:bb" }));
  for (let i = 0; i < 30; i++) {
    await log.append(toolCall({ server: i % 2 ? "fs" : "gh", tool: `t${i}`, arguments: { i }, outcome: i % 10 === 9 ? "refused" : "ok", durationMs: i, includeArguments: false }));
  }
  await log.append(policyRefused({ server: "fs", what: "tool delete_everything", rule: "servers.fs.tools.deny" }));
  await log.append(egress({ server: "gh", decision: "deny", host: "169.254.169.254", port: 80 }));
  await log.close();
}, 120_000);

afterEach(() => {
  follower?.kill("SIGKILL");
  follower = null;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("nucleus audit verify", () => {
  it("passes a rotated log given by its current file, and prints the head to anchor", async () => {
    const r = await nucleus("audit", "verify", path);
    expect(r.stdout).toMatch(/^ok: \d+ records in [2-9] files, from the chain's first record, chain [0-9a-f]{32}\nhead: seq \d+ hash [0-9a-f]{64}\n$/);
    expect(r.code).toBe(0);
  });

  it("orders several files given in any order, and prints JSON with --json", async () => {
    const set = await auditFileSet(path);
    const r = await nucleus("audit", "verify", "--json", ...[...set].reverse());
    const v = JSON.parse(r.stdout);
    expect(v.files).toEqual(set);
    expect(v).toMatchObject({ ok: true, startsAtGenesis: true, firstSeq: 1 });
    expect(r.code).toBe(0);
  });

  it("exits 1 naming file:line and why when one byte was changed", async () => {
    const copy = join(dir, "copy.jsonl");
    const lines = (await readFile(path, "utf8")).split("\n");
    lines[2] = lines[2]!.replace('"server":"', '"server":"x');
    await writeFile(copy, lines.join("\n"));
    const r = await nucleus("audit", "verify", copy);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(`${copy}:3: broken: the record does not match its own hash (it was changed after it was written)\n2 records before it verified (last good: seq ${lines[1] && JSON.parse(lines[1]).seq}).\n`);
  });

  it("exits 2 without a file", async () => {
    const r = await nucleus("audit", "verify");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("needs at least one FILE");
  });
});

describe("nucleus audit tail", () => {
  it("prints the last N records across rotated files, filtered by server and refusals", async () => {
    const r = await nucleus("audit", "tail", path, "-n", "3", "--server", "fs");
    const out = r.stdout.trimEnd().split("\n");
    expect(out).toHaveLength(3);
    expect(out.at(-1)).toMatch(/#\d+  policy\.refused  server=fs what="tool delete_everything" rule=servers\.fs\.tools\.deny$/);
    const refused = await nucleus("audit", "tail", path, "--refused", "-n", "100");
    const types = refused.stdout.trimEnd().split("\n").map((l) => l.split("  ")[2]);
    expect(types).toEqual(["tool.call", "tool.call", "tool.call", "policy.refused", "egress"]);
    const starts = await nucleus("audit", "tail", path, "--type", "server", "--json", "-n", "100");
    expect(starts.stdout.trimEnd().split("\n").map((l) => JSON.parse(l).fields.server)).toEqual(["fs", "gh"]);
  });

  it("reads the config's [gateway] audit_log when no FILE is given", async () => {
    const cfg = join(dir, "nucleus.toml");
    await writeFile(cfg, `[gateway]\naudit_log = ${JSON.stringify(path)}\n[servers.a]\ncommand = [${JSON.stringify(process.execPath)}, "-e", "0"]\n`);
    const r = await nucleus("-c", cfg, "audit", "tail", "-n", "1", "--server", "fs");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/policy\.refused  server=fs/);
    const none = join(dir, "none.toml");
    await writeFile(none, `[servers.a]\ncommand = [${JSON.stringify(process.execPath)}, "-e", "0"]\n`);
    const r2 = await nucleus("-c", none, "audit", "tail");
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain("no [gateway] audit_log is configured");
  });

  it("follows new records, across a rotation", async () => {
    follower = spawn(process.execPath, [bin, "audit", "tail", path, "-n", "0", "--follow", "--type", "tool.call"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    follower.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    follower.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    await new Promise((r) => setTimeout(r, 1000));
    const log = new AuditLog(path, { maxBytes: 4000, keep: 10 });
    for (let i = 0; i < 40; i++) {
      await log.append(toolCall({ server: "fs", tool: `follow${i}`, arguments: {}, outcome: "ok", durationMs: 1, includeArguments: false }));
    }
    await log.close();
    try {
      await expect.poll(() => out.trimEnd().split("\n").length, { timeout: 10_000 }).toBe(40);
    } catch (e) {
      throw new Error(`${(e as Error).message}; the follower said: ${err || "nothing"}`);
    }
    expect(out).toContain("tool=follow0 ");
    expect(out).toContain("tool=follow39 ");
    expect((await nucleus("audit", "verify", path)).code).toBe(0);
  });
});
