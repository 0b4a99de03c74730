import { mkdtempSync, mkdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Sandbox } from "../../src/sandbox/backend.js";
import { BubblewrapBackend } from "../../src/sandbox/bubblewrap/backend.js";
import { findBwrap } from "../../src/sandbox/bubblewrap/host.js";
import { Logger } from "../../src/log.js";
import { connectToSandbox } from "../helpers/mcp.js";
import { makeSpec } from "../helpers/spec.js";
import { nodeModulesOf } from "../helpers/code-dirs.js";

const require = createRequire(import.meta.url);
const everything = require.resolve("@modelcontextprotocol/server-everything/dist/index.js");
const filesystem = require.resolve("@modelcontextprotocol/server-filesystem/dist/index.js");
const nodeModules = nodeModulesOf(everything);
const log = new Logger({ level: "silent" });
const noBwrap = findBwrap() === null;
const skipNote = noBwrap ? " (skipped: bwrap is not installed)" : "";

const sandboxes: Sandbox[] = [];
const temps: string[] = [];
afterEach(async () => {
  await Promise.all(sandboxes.splice(0).map((s) => s.stop(2000)));
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});

describe("bubblewrap backend with real MCP servers", () => {
  it.skipIf(noBwrap)(`runs server-everything${skipNote}`, async () => {
    const backend = new BubblewrapBackend();
    const spec = makeSpec({ name: "everything", argv: [process.execPath, everything], launch: { argv: [process.execPath, everything], args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] } });
    const sandbox = await backend.launch(spec, { secrets: new Map(), log, egressSocket: null });
    sandboxes.push(sandbox);
    const client = await connectToSandbox(sandbox);
    const res = await client.callTool({ name: "echo", arguments: { message: "inside" } });
    expect(JSON.stringify(res.content)).toContain("inside");
    const exit = await sandbox.stop(2000);
    expect(exit.cause).toBe("stopped");
  });

  it.skipIf(noBwrap)(`server-filesystem sees only its allowed directory${skipNote}`, async () => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), "nucleus-fs-")));
    temps.push(root);
    const allowed = join(root, "allowed");
    const other = join(root, "other");
    mkdirSync(allowed);
    mkdirSync(other);
    writeFileSync(join(allowed, "hello.txt"), "hello from allowed");
    writeFileSync(join(other, "secret.txt"), "not for the server");
    const backend = new BubblewrapBackend();
    const argv = [process.execPath, filesystem, allowed];
    const spec = makeSpec({ name: "fs", argv, launch: { argv, args: [allowed], package: null, cwd: null, env: {}, codeDirs: [nodeModules] }, paths: [{ path: allowed, writable: false }] });
    const sandbox = await backend.launch(spec, { secrets: new Map(), log, egressSocket: null });
    sandboxes.push(sandbox);
    const client = await connectToSandbox(sandbox);
    const ok = await client.callTool({ name: "read_text_file", arguments: { path: join(allowed, "hello.txt") } });
    expect(JSON.stringify(ok.content)).toContain("hello from allowed");
    const denied = await client.callTool({ name: "read_text_file", arguments: { path: join(other, "secret.txt") } });
    expect(denied.isError).toBe(true);
    expect(JSON.stringify(denied.content)).not.toContain("not for the server");
    const write = await client.callTool({ name: "write_file", arguments: { path: join(allowed, "new.txt"), content: "x" } });
    expect(write.isError).toBe(true);
  });
});
