// A root gateway whose sandboxes run as an unprivileged host user (runAs) still
// gives an allowlist server its egress proxy: the socket is handed to that user,
// and nothing else of the gateway's socket directory is.
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer as createHttp, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { startServerEgress } from "../../src/egress/launch.js";
import type { EgressProxy } from "../../src/egress/types.js";
import { Logger } from "../../src/log.js";
import { parseHostRule } from "../../src/policy/hosts.js";
import type { Sandbox } from "../../src/sandbox/backend.js";
import { BubblewrapBackend } from "../../src/sandbox/bubblewrap/backend.js";
import { findBwrap } from "../../src/sandbox/bubblewrap/host.js";
import { REPO, ensureBuilt } from "../helpers/cli.js";
import { connectToSandbox } from "../helpers/mcp.js";
import { makeSpec } from "../helpers/spec.js";
import { ensureTestUser } from "../helpers/test-user.js";

const root = process.getuid?.() === 0;
const canRun = root && findBwrap() !== null && existsSync("/usr/bin/setpriv");
const why = canRun ? "" : root ? " (skipped: bwrap or setpriv missing)" : " (skipped: runAs needs a root gateway)";
const FIXTURE_DIR = join(REPO, "test/fixtures/egress");
const log = new Logger({ level: "silent" });

let cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe("egress under runAs", () => {
  it.skipIf(!canRun)(`an allowlist server running as the runAs user reaches its allowed host through its proxy${why}`, async () => {
    ensureBuilt();
    const { uid, gid } = ensureTestUser();
    const web: Server = createHttp((req, res) => res.end(`hello ${req.url}`));
    await new Promise<void>((r) => web.listen(0, "127.0.0.17", r));
    cleanup.push(() => new Promise((r) => web.close(r)));
    const port = (web.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), "nucleus-egress-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const rule = parseHostRule(`127.0.0.17:${port}`);
    if (!rule.ok) throw new Error(rule.error);
    const argv = [process.execPath, join(FIXTURE_DIR, "server-that-tries-egress.mjs")];
    const base = makeSpec({ name: "runas-egress", argv });
    const spec = makeSpec({ name: "runas-egress", argv, launch: { ...base.launch, codeDirs: [FIXTURE_DIR] }, network: { mode: "allowlist", hosts: [rule.rule] } });
    const proxy = (await startServerEgress(spec, { socketDir: dir, index: 0, audit: () => undefined, log })) as EgressProxy;
    cleanup.push(() => proxy.close());

    const sandbox: Sandbox = await new BubblewrapBackend({ runAs: { uid, gid } }).launch(spec, { secrets: new Map(), log, egressSocket: proxy.socketPath });
    cleanup.push(() => sandbox.stop(2000));
    const client: Client = await connectToSandbox(sandbox);
    const res = await client.callTool({ name: "http_get", arguments: { url: `http://127.0.0.17:${port}/as-runas` } });
    expect(JSON.parse((res.content as Array<{ text: string }>)[0]!.text).out).toMatch(/^HTTP\/1\.1 200[\s\S]*hello \/as-runas$/);
    // SECURITY: the socket belongs to the runAs user alone (0600); the directory lists nothing to others.
    const st = statSync(proxy.socketPath);
    expect([st.uid, st.mode & 0o777]).toEqual([uid, 0o600]);
    expect(statSync(dir).mode & 0o777).toBe(0o711);
  });
});
