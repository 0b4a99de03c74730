import { spawnSync } from "node:child_process";
import { chmod, chown, link, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditLog } from "../../../src/audit/audit-log.js";
import { toolCall } from "../../../src/audit/events.js";
import { verifyAuditLog } from "../../../src/audit/verify.js";
import { checkConfigText } from "../../../src/config/load.js";
import { ExitCode, NucleusError } from "../../../src/errors.js";
import { createServices } from "../../../src/gateway/services.js";
import { Logger } from "../../../src/log.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nucleus-audit-open-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const call = toolCall({ server: "fs", tool: "t", arguments: {}, outcome: "ok", durationMs: 1, includeArguments: false });

async function refusal(log: AuditLog): Promise<NucleusError> {
  const err = await log.open().then(
    () => null,
    (e: unknown) => e,
  );
  await log.close();
  expect(err).toBeInstanceOf(NucleusError);
  return err as NucleusError;
}

describe("opening the audit file", () => {
  it("refuses a symlink at the path before touching its target (the review's experiment: a 0644 victim)", async () => {
    const victim = join(dir, "victim.txt");
    await writeFile(victim, "precious\n", { mode: 0o644 });
    await chmod(victim, 0o644);
    const path = join(dir, "audit.jsonl");
    await symlink(victim, path);
    const err = await refusal(new AuditLog(path));
    expect(err.message).toMatch(/cannot be opened for appending: it is a symbolic link/);
    expect(err.exitCode).toBe(ExitCode.usage);
    expect((await stat(victim)).mode & 0o777).toBe(0o644);
    expect(await readFile(victim, "utf8")).toBe("precious\n");
    // An append fails the same way: nothing is written through the link.
    const log = new AuditLog(path);
    await expect(log.append(call)).rejects.toThrow(/symbolic link/);
    await log.close();
    expect(await readFile(victim, "utf8")).toBe("precious\n");
  });

  it("refuses a directory, a FIFO (without hanging) and a file with a second name", async () => {
    await mkdir(join(dir, "d"));
    expect((await refusal(new AuditLog(join(dir, "d")))).message).toMatch(/cannot be opened for appending/);
    const fifo = join(dir, "fifo");
    expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
    expect((await refusal(new AuditLog(fifo))).message).toMatch(/not a regular file/);
    const other = join(dir, "other");
    await writeFile(other, "", { mode: 0o600 });
    await link(other, join(dir, "linked.jsonl"));
    expect((await refusal(new AuditLog(join(dir, "linked.jsonl")))).message).toMatch(/2 names \(hard links\)/);
  });

  it.skipIf(process.getuid?.() !== 0)("refuses a file of another user, without changing its mode (needs root to chown)", async () => {
    const path = join(dir, "audit.jsonl");
    await writeFile(path, "", { mode: 0o644 });
    await chmod(path, 0o644);
    await chown(path, 65534, 65534);
    expect((await refusal(new AuditLog(path))).message).toMatch(/owned by uid 65534, not by the gateway's user/);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
  });

  it("makes its own file 0600 and starts the chain at open()", async () => {
    const path = join(dir, "audit.jsonl");
    await writeFile(path, "", { mode: 0o644 });
    await chmod(path, 0o644);
    const log = new AuditLog(path);
    await log.open();
    await log.append(call);
    await log.close();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await verifyAuditLog([path])).toMatchObject({ ok: true, records: 2 });
  });

  it("makes the gateway fail at start (exit 2) when [gateway] audit_log cannot be opened", async () => {
    await mkdir(join(dir, "a-directory"));
    const check = checkConfigText(`[gateway]\naudit_log = "${join(dir, "a-directory")}"\n`, join(dir, "nucleus.toml"));
    expect(check.problems).toEqual([]);
    const err = await createServices(check.config!, [], { log: new Logger({ level: "silent" }), env: {} }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NucleusError);
    expect((err as NucleusError).exitCode).toBe(ExitCode.usage);
    expect((err as NucleusError).message).toMatch(/the audit log .*a-directory cannot be opened for appending/);
  });
});
