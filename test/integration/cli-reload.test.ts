// Config reload: SIGHUP makes `nucleus serve` read its config again; added
// servers start, removed ones stop, unchanged ones keep running, a broken
// config is refused while the running one stays, and each reload is audited.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { TINY } from "../helpers/gateway.js";
import { NUCLEUS, ensureBuilt, tempConfig } from "../helpers/cli.js";
import { alive } from "../helpers/process.js";

const node = process.execPath;
const server = (name: string) => `[servers.${name}]\ncommand = [${JSON.stringify(node)}, ${JSON.stringify(TINY)}, "normal", "${name}"]\nvm_profile = "locked"\n`;
const cfg = tempConfig("");
const audit = join(cfg.dir, "audit.jsonl");
const write = (body: string) => writeFileSync(cfg.path, `[gateway]\naudit_log = ${JSON.stringify(audit)}\n\n${body}`);

beforeAll(() => ensureBuilt(), 120_000);
afterAll(() => cfg.cleanup());

describe("nucleus serve reloads its config on SIGHUP", () => {
  it("adds, removes and keeps servers, refuses a broken config, and audits each reload", async () => {
    write(server("one") + server("two"));
    let stderr = "";
    const transport = new StdioClientTransport({ command: node, args: [NUCLEUS, "--log-level", "debug", "-c", cfg.path, "serve"], stderr: "pipe", env: process.env as Record<string, string> });
    transport.stderr?.on("data", (d) => (stderr += d));
    const client = new Client({ name: "reload", version: "1" });
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => void changed++);
    await client.connect(transport);
    try {
      const names = async () => (await client.listTools()).tools.map((t) => t.name).sort();
      expect(await names()).toContain("two__echo");
      const pidOf = (n: string) => Number(new RegExp(`server "${n}" ready \\(server=${n} backend=\\w+ pid=(\\d+)`).exec(stderr)?.[1]);
      // (The "ready" log lines travel on stderr, which may arrive after the list's answer on stdout.)
      await expect.poll(() => pidOf("one") > 0 && pidOf("two") > 0, { timeout: 10_000 }).toBe(true);
      const onePid = pidOf("one");
      const twoPid = pidOf("two");
      expect(alive(onePid) && alive(twoPid)).toBe(true);
      const before = changed;

      write(server("one") + server("three"));
      process.kill(transport.pid!, "SIGHUP");
      await expect.poll(() => stderr, { timeout: 15_000 }).toMatch(/config reloaded: added \[three\], removed \[two\], changed \[\]/);
      await expect.poll(() => changed, { timeout: 10_000 }).toBeGreaterThan(before);
      await expect.poll(names, { timeout: 10_000 }).toContain("three__echo");
      expect((await names()).some((n) => n.startsWith("two__"))).toBe(false);
      expect(alive(onePid)).toBe(true); // unchanged: not restarted
      await expect.poll(() => alive(twoPid), { timeout: 10_000 }).toBe(false);

      write("[servers.broken]\nallowed_host = []\n");
      process.kill(transport.pid!, "SIGHUP");
      await expect.poll(() => stderr, { timeout: 15_000 }).toMatch(/config reload refused, the running config stays/);
      expect(JSON.stringify((await client.callTool({ name: "three__echo", arguments: { message: "still serving" } })).content)).toContain("still serving");
    } finally {
      await client.close();
    }
    const records = readFileSync(audit, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { type: string; fields: { changed?: string[] } });
    expect(records.filter((r) => r.type === "config.reload").map((r) => r.fields.changed?.sort())).toEqual([["three", "two"]]);
  }, 90_000);
});
