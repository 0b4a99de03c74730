// Escape-suite harness: launches the hostile fixture under the bubblewrap
// backend and calls its attack tools through the official SDK client.
import { mkdirSync, mkdtempSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { PathGrant, ResourceLimits } from "../../src/config/spec.js";
import type { Backend, Sandbox } from "../../src/sandbox/backend.js";
import { BubblewrapBackend } from "../../src/sandbox/bubblewrap/backend.js";
import type { PlaceOverrides } from "../../src/sandbox/cgroups/manager.js";
import { Logger } from "../../src/log.js";
import { connectToSandbox } from "../helpers/mcp.js";
import { makeSpec } from "../helpers/spec.js";

export const FIXTURE_DIR = realpathSync(join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "hostile"));
export const FIXTURE = join(FIXTURE_DIR, "hostile-server.mjs");
const log = new Logger({ level: "silent" });

/** Delegated cgroup parents for a non-root run, handed over by the root test (JSON in NUCLEUS_CGROUP_PARENTS). */
export function delegatedParents(): PlaceOverrides {
  const raw = process.env.NUCLEUS_CGROUP_PARENTS;
  return raw ? (JSON.parse(raw) as PlaceOverrides) : {};
}

export function makeBackend(): BubblewrapBackend {
  return new BubblewrapBackend({ cgroupParents: delegatedParents() });
}

export interface Hostile {
  readonly sandbox: Sandbox;
  readonly client: Client;
  attack(name: string, args?: Record<string, unknown>): Promise<{ escaped: boolean; detail: unknown; [k: string]: unknown }>;
}

export async function launchHostile(
  backend: Backend,
  name: string,
  opts: { paths?: PathGrant[]; secrets?: Map<string, { value: string; as: "env" | "file" }>; limits?: Partial<ResourceLimits> } = {},
): Promise<Hostile> {
  const argv = [process.execPath, FIXTURE];
  const base = makeSpec({ name, argv });
  const spec = makeSpec({
    name,
    argv,
    launch: { ...base.launch, codeDirs: [FIXTURE_DIR] },
    paths: opts.paths ?? [],
    limits: { ...base.limits, ...opts.limits },
  });
  const sandbox = await backend.launch(spec, { secrets: opts.secrets ?? new Map(), log, egressSocket: null });
  const client = await connectToSandbox(sandbox);
  return {
    sandbox,
    client,
    async attack(tool, args = {}) {
      const res = await client.callTool({ name: tool, arguments: args }, undefined, { timeout: 120_000 });
      const text = (res.content as Array<{ type: string; text: string }>)[0]!.text;
      return JSON.parse(text);
    },
  };
}

/** The private targets every escape test attacks: a fake home with a canary key, ro/rw grants, another server's dir. */
export interface EscapeTargets {
  readonly base: string;
  readonly home: string;
  readonly ro: string;
  readonly rw: string;
  readonly other: string;
}

export function makeEscapeTargets(prefix: string, canary: string): EscapeTargets {
  const base = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  const home = join(base, "home");
  mkdirSync(join(home, ".ssh"), { recursive: true });
  writeFileSync(join(home, ".ssh", "id_ed25519"), canary);
  const [ro, rw, other] = ["ro", "rw", "other"].map((d) => join(base, d)) as [string, string, string];
  for (const d of [ro, rw, other]) mkdirSync(d);
  writeFileSync(join(ro, "ro.txt"), "original");
  writeFileSync(join(other, "secret.txt"), canary);
  return { base, home, ro, rw, other };
}
