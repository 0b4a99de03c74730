// Warm starts without KVM: every new request body (PATCH /vm, PUT
// /snapshot/create, PUT /snapshot/load, PATCH /drives) validated against
// Firecracker's OpenAPI file, the cache key, the store (atomic install, files
// read-only and root-owned), and the start request every microVM gets (egress
// plan, proxy variables, fresh entropy, secrets only there).
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseHostRule } from "../../../src/policy/hosts.js";
import { guestEgressPlan } from "../../../src/sandbox/microvm/egress-plan.js";
import { createSnapshot, loadSnapshot, pauseVm, SnapshotStore, snapshotKey, updateDrive } from "../../../src/sandbox/microvm/firecracker/snapshot.js";
import { vmStartRequest } from "../../../src/sandbox/microvm/start-request.js";
import { bodySchema, FIRECRACKER_YAML, firecrackerYamlAbsent, loadFirecrackerSpec, validate } from "../../helpers/swagger.js";
import { makeSpec } from "../../helpers/spec.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "nucleus-fc-snap-"));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe("snapshot requests", () => {
  const requests = [pauseVm(), createSnapshot("/run/vmstate", "/run/mem"), loadSnapshot("/snapshot.vmstate", "/snapshot.mem"), updateDrive("d0", "/d0.ext4")];

  it("pause, a full snapshot, load-and-resume with the wall clock advanced, and a drive update", () => {
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual(["PATCH /vm", "PUT /snapshot/create", "PUT /snapshot/load", "PATCH /drives/d0"]);
    expect(requests[1]!.body).toEqual({ snapshot_type: "Full", snapshot_path: "/run/vmstate", mem_file_path: "/run/mem" });
    expect(requests[2]!.body).toMatchObject({ resume_vm: true, clock_realtime: true, mem_backend: { backend_type: "File", backend_path: "/snapshot.mem" } });
  });

  it.skipIf(firecrackerYamlAbsent)(`every body validates against Firecracker's OpenAPI definition (${FIRECRACKER_YAML})`, () => {
    const doc = loadFirecrackerSpec();
    for (const r of requests) {
      const schema = bodySchema(doc, r.method, r.path);
      expect(schema, `${r.method} ${r.path} exists in the API`).not.toBeNull();
      expect(validate(doc, schema!, r.body), `${r.method} ${r.path}`).toEqual([]);
    }
    // And the validator catches a wrong one (so the loop above can fail).
    expect(validate(doc, bodySchema(doc, "PATCH", "/vm")!, { state: "Running" })[0]).toMatch(/not one of/);
    expect(validate(doc, bodySchema(doc, "PUT", "/snapshot/create")!, { snapshot_path: "/x" }).join()).toMatch(/mem_file_path/);
  });
});

describe("snapshot cache", () => {
  const base = { imageId: "img1", firecracker: { path: "/usr/bin/firecracker", size: 100, mtimeMs: 5 }, memoryMiB: 512, cpus: 1, drives: 2 };

  it("keys by image, firecracker binary, memory, vCPUs and drive count", () => {
    const k = snapshotKey(base);
    expect(k).toMatch(/^img1-[0-9a-f]{24}$/);
    expect(() => snapshotKey({ ...base, imageId: "../x" })).toThrow(/invalid image id/);
    expect(snapshotKey({ ...base })).toBe(k);
    for (const v of [{ imageId: "img2" }, { memoryMiB: 1024 }, { cpus: 2 }, { drives: 3 }, { firecracker: { ...base.firecracker, mtimeMs: 6 } }]) {
      expect(snapshotKey({ ...base, ...v }), JSON.stringify(v)).not.toBe(k);
    }
  });

  it("installs a snapshot atomically, read-only (and root-owned when run as root); a second install keeps the first", () => {
    const store = new SnapshotStore(join(tmp(), "snaps"));
    expect(store.get("k")).toBeNull();
    const write = (tag: string) => {
      const st = store.staging("k");
      writeFileSync(join(st, "v.new"), `state-${tag}`);
      writeFileSync(join(st, "m.new"), `mem-${tag}`);
      return store.install("k", st, join(st, "v.new"), join(st, "m.new"));
    };
    const first = write("a");
    expect(store.get("k")).toEqual(first);
    for (const f of [first.vmstate, first.mem]) {
      expect(statSync(f).mode & 0o777).toBe(0o444);
      if (process.getuid?.() === 0) expect(statSync(f).uid).toBe(0);
    }
    write("b");
    expect(existsSync(first.vmstate)).toBe(true);
    expect(statSync(first.mem).size).toBe("mem-a".length);
    // No staging directories left behind.
    expect(readdirSync(store.root)).toEqual(["k"]);
    store.remove("k");
    expect(store.get("k")).toBeNull();
  });

  it("prunes snapshots of images that are gone and staging dirs of dead processes, nothing else", () => {
    const store = new SnapshotStore(join(tmp(), "snaps"));
    const keep = snapshotKey(base);
    const gone = snapshotKey({ ...base, imageId: "oldimg" });
    for (const k of [keep, gone]) {
      const st = store.staging(k);
      writeFileSync(join(st, "v"), "v");
      writeFileSync(join(st, "m"), "m");
      store.install(k, st, join(st, "v"), join(st, "m"));
    }
    const fresh = store.staging("x");
    expect(store.prune(new Set(["img1"]), Date.now())).toEqual([gone]);
    expect(store.get(keep)).not.toBeNull();
    expect(existsSync(fresh)).toBe(true);
    expect(store.prune(new Set(["img1"]), Date.now() + 2 * 3600_000)).toEqual([fresh.split("/").pop()]);
    expect(readdirSync(store.root)).toEqual([keep]);
  });
});

describe("the start request", () => {
  const rule = (t: string) => {
    const r = parseHostRule(t);
    if (!r.ok) throw new Error(r.error);
    return r.rule;
  };

  it("carries the egress plan and proxy variables for an allowlist server, secrets only in their field, and fresh entropy each time", () => {
    const spec = makeSpec({ name: "gh", argv: ["/usr/bin/node", "/srv/x.js"], network: { mode: "allowlist", hosts: [rule("api.github.com"), rule("db.example:5432")] } });
    const ctx = { secrets: new Map([["TOKEN", { value: "s3cret", as: "env" as const }]]), egressSocket: "/run/egress.sock" };
    const egress = guestEgressPlan(spec, ctx);
    const a = vmStartRequest(spec, ctx, [], egress);
    const b = vmStartRequest(spec, ctx, [], egress);
    expect(a.egress).toEqual(egress!.plan);
    expect(a.egress!.proxyPort).toBe(3128);
    expect(a.egress!.pins.map((p) => p.preamble)).toContain("NUCLEUS-PIN db.example 5432\n");
    expect(a.env.HTTPS_PROXY).toBe("http://127.0.0.1:3128");
    expect(a.secrets).toEqual([{ target: "TOKEN", as: "env", value: "s3cret" }]);
    expect(JSON.stringify({ ...a, secrets: [] })).not.toContain("s3cret");
    expect(Buffer.from(a.entropy!, "base64")).toHaveLength(32);
    expect(a.entropy).not.toBe(b.entropy);
  });

  it("sends egress: null and no proxy variables for network = none", () => {
    const spec = makeSpec({ name: "n", argv: ["/usr/bin/node"] });
    const msg = vmStartRequest(spec, { secrets: new Map() }, [], guestEgressPlan(spec, { egressSocket: null }));
    expect(msg.egress).toBeNull();
    expect(Object.keys(msg.env).filter((k) => /proxy/i.test(k))).toEqual([]);
  });
});
