import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildAgentInto } from "../../fixtures/egress/build-agent.js";
import { REPO } from "../../helpers/cli.js";
import { limitEnforcement, limitGaps } from "../../../src/sandbox/bubblewrap/enforcement.js";
import { BubblewrapBackend } from "../../../src/sandbox/bubblewrap/backend.js";
import { findBwrap } from "../../../src/sandbox/bubblewrap/host.js";
import { Logger } from "../../../src/log.js";
import { makeSpec } from "../../helpers/spec.js";

const usable = { usable: true, detail: "cgroup v1 under /sys/fs/cgroup/x" };
const missing = { usable: false, detail: "cannot create a memory cgroup under /sys/fs/cgroup/memory (EACCES; cgroup v1)" };

describe("limit enforcement", () => {
  it("a default limit that cannot be enforced is reported, not a gap", () => {
    const spec = makeSpec({ name: "s", argv: ["/usr/bin/node"] });
    const e = limitEnforcement(spec, { memory: missing, pids: usable, cpu: usable });
    expect(e.find((x) => x.limit === "memory")).toMatchObject({ enforced: false, explicit: false, value: "512 MiB" });
    expect(limitGaps(spec, e)).toEqual([]);
  });

  it("an explicit limit that cannot be enforced is a gap naming the rule, with a hint", () => {
    const spec = makeSpec({ name: "s", argv: ["/usr/bin/node"], limits: { memoryMiB: 256, cpus: 1, pids: 64, tmpMiB: 64, explicit: { memory: true, cpus: false, pids: true } } });
    const gaps = limitGaps(spec, limitEnforcement(spec, { memory: missing, pids: usable, cpu: missing }));
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({ rule: "servers.s.memory_mib" });
    expect(gaps[0]!.message).toMatch(/sets memory_mib = 256 MiB, which bubblewrap cannot enforce here: cannot create a memory cgroup/);
    expect(gaps[0]!.hint).toMatch(/delegated/);
  });
});

describe("bubblewrap gaps", () => {
  it.skipIf(!findBwrap())(`an allowlist is enforceable once the agent is built, and refused without it or without a proxy socket (exit 3)${findBwrap() ? "" : " (skipped: bwrap is not installed)"}`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "nucleus-agent-gap-"));
    try {
      const spec = makeSpec({ name: "gh", argv: ["/usr/bin/node"], network: { mode: "allowlist", hosts: [] } });
      const notBuilt = new BubblewrapBackend({ agent: { dir: join(dir, "agent"), packageJson: join(dir, "package.json") } });
      const gap = (await notBuilt.gaps(spec)).find((g) => g.rule === "servers.gh.allowed_hosts");
      expect(gap?.message).toMatch(/needs the egress agent, and it is not built at/);
      expect(gap?.hint).toMatch(/npm run build/);

      buildAgentInto(join(REPO, "src/agent"), join(dir, "agent"));
      writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
      const built = new BubblewrapBackend({ agent: { dir: join(dir, "agent"), packageJson: join(dir, "package.json") } });
      expect((await built.gaps(spec)).map((g) => g.rule)).not.toContain("servers.gh.allowed_hosts");
      // SECURITY: fail closed: launched without its proxy socket, an allowlist server does not start.
      await expect(built.launch(spec, { secrets: new Map(), log: new Logger({ level: "silent" }), egressSocket: null })).rejects.toMatchObject({ code: "POLICY_REFUSED", exitCode: 3, message: expect.stringMatching(/no egress proxy socket/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!findBwrap())(`an explicit limit with no delegated controller refuses the start${findBwrap() ? "" : " (skipped: bwrap is not installed)"}`, async () => {
    // A parent that does not exist stands for a hierarchy this user may not write.
    const b = new BubblewrapBackend({ cgroupParents: { pids: { version: 1, parent: "/nonexistent/nucleus-cgroup" } } });
    const spec = makeSpec({ name: "p", argv: ["/usr/bin/node"], limits: { memoryMiB: 512, cpus: 1, pids: 32, tmpMiB: 64, explicit: { memory: false, cpus: false, pids: true } } });
    expect((await b.gaps(spec)).map((g) => g.rule)).toEqual(["servers.p.pids"]);
    expect(b.enforcement(spec).find((e) => e.limit === "pids")).toMatchObject({ enforced: false, explicit: true });
    await expect(b.launch(spec, { secrets: new Map(), log: new Logger({ level: "silent" }), egressSocket: null })).rejects.toMatchObject({ exitCode: 3 });
  });
});
