// The CLI's own surface: --version, --help everywhere, usage errors (exit 2),
// and log flags.
import { beforeAll, describe, expect, it } from "vitest";
import { commands } from "../../src/cli/commands.js";
import { ensureBuilt, runCli } from "../helpers/cli.js";

beforeAll(() => ensureBuilt(), 120_000);

describe("nucleus CLI basics", () => {
  it("prints its version from package.json", async () => {
    const r = await runCli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^nucleus \d+\.\d+\.\d+\n$/);
  });

  it("lists every command in --help, with the exit codes", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    for (const c of commands) expect(r.stdout).toContain(`  ${c.name} `);
    expect(r.stdout).toContain("3 refused by policy");
  });

  it.each(commands.map((c) => c.name))("`nucleus %s --help` prints its usage and exits 0", async (name) => {
    const r = await runCli([name, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage:/);
  });

  it("exits 2 for an unknown command, a bad global option or a bad log level", async () => {
    const unknown = await runCli(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    const badOpt = await runCli(["--frob", "check"]);
    expect(badOpt.code).toBe(2);
    const badLevel = await runCli(["--log-level", "loud", "check"]);
    expect(badLevel.code).toBe(2);
    expect(badLevel.stderr).toContain("--log-level must be one of");
    const noCmd = await runCli([]);
    expect(noCmd.code).toBe(2);
  });

  it("writes JSON log lines to stderr with --log-format json, nothing to stdout", async () => {
    // stdin ends at once: the gateway starts, logs, and shuts down.
    const r = await runCli(["--log-format", "json", "--log-level", "debug", "-c", "examples/nucleus.toml", "serve"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trim().split("\n").map((l) => JSON.parse(l) as { level: string; msg: string; time: string });
    expect(lines.length).toBeGreaterThan(3);
    expect(lines.every((l) => typeof l.time === "string" && typeof l.level === "string")).toBe(true);
    expect(lines.map((l) => l.msg)).toContain("shutting down: the client closed the connection");
  });
});
