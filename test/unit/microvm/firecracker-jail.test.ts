// Running Firecracker under the jailer, without KVM: finding the binaries and
// the user (fail closed without a jailer unless explicitly waived), staging
// real files into a real chroot directory (hard links on one filesystem,
// copies across), the run dir only the jail user may write, the cold-boot and
// restore request sequences against a fake API socket, and nothing left behind.
import { chmodSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FirecrackerBackend } from "../../../src/sandbox/microvm/firecracker/backend.js";
import { findFirecracker } from "../../../src/sandbox/microvm/firecracker/host.js";
import { directLayout, jailedLayout, linkOrCopy } from "../../../src/sandbox/microvm/firecracker/layout.js";
import { FirecrackerApi } from "../../../src/sandbox/microvm/firecracker/api.js";
import { coldBoot, restoreBoot, type FcVm } from "../../../src/sandbox/microvm/firecracker/vm.js";
import type { Sandbox } from "../../../src/sandbox/backend.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "nucleus-fc-jail-"));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}
/** Executable files standing in for the binaries (only looked up, never run). */
function fakeBins(dir: string, names: string[]): void {
  for (const n of names) {
    writeFileSync(join(dir, n), "#!/bin/sh\nexit 1\n");
    chmodSync(join(dir, n), 0o755);
  }
}
const root = { uid: 0, gid: 0 };
const isRoot = process.getuid?.() === 0;

describe("finding Firecracker and its jailer", () => {
  it("takes the jailer next to the firecracker binary, runs it as the run_as user, and builds the chroot under the cache", () => {
    const bin = tmp();
    fakeBins(bin, ["firecracker", "jailer"]);
    const h = findFirecracker({ env: { NUCLEUS_FIRECRACKER_BIN: join(bin, "firecracker"), PATH: "" }, runAs: { uid: 990, gid: 991 } }, root, "/var/cache/n");
    expect(h).toEqual({ ok: true, firecracker: join(bin, "firecracker"), jail: { jailer: join(bin, "jailer"), uid: 990, gid: 991, chrootBase: "/var/cache/n/jail", cgroupVersion: expect.any(Number) } });
  });

  it("resolves a symlinked firecracker to the real file, since the jailer names the chroot after it", () => {
    const bin = tmp();
    fakeBins(bin, ["firecracker-v1.12.0-x86_64", "jailer"]);
    symlinkSync(join(bin, "firecracker-v1.12.0-x86_64"), join(bin, "firecracker"));
    const h = findFirecracker({ env: { PATH: bin }, runAs: { uid: 5, gid: 5 } }, root, "/c");
    expect(h.ok && h.firecracker).toBe(join(realpathSync(bin), "firecracker-v1.12.0-x86_64"));
    expect(h.ok && h.jail?.jailer).toBe(join(bin, "jailer"));
  });

  it("takes NUCLEUS_JAILER_BIN and NUCLEUS_JAILER_CHROOT_BASE when set", () => {
    const a = tmp();
    const b = tmp();
    fakeBins(a, ["firecracker"]);
    fakeBins(b, ["jailer-1.12"]);
    const h = findFirecracker({ env: { PATH: a, NUCLEUS_JAILER_BIN: join(b, "jailer-1.12"), NUCLEUS_JAILER_CHROOT_BASE: "/srv/j" }, runAs: { uid: 5, gid: 5 } }, root, "/c");
    expect(h.ok && h.jail).toMatchObject({ jailer: join(b, "jailer-1.12"), chrootBase: "/srv/j" });
  });

  it("fails closed without a jailer, without root, or without an unprivileged user — and runs bare only when explicitly waived", () => {
    const bin = tmp();
    fakeBins(bin, ["firecracker"]);
    const env = { PATH: bin };
    const noJailer = findFirecracker({ env, runAs: { uid: 5, gid: 5 } }, root, "/c");
    expect(noJailer).toMatchObject({ ok: false, missing: "the jailer binary" });
    expect(!noJailer.ok && noJailer.hint).toMatch(/NUCLEUS_JAILER_BIN.*NUCLEUS_FIRECRACKER_INSECURE_NO_JAILER=1/);
    fakeBins(bin, ["jailer"]);
    expect(findFirecracker({ env, runAs: { uid: 5, gid: 5 } }, { uid: 1000, gid: 1000 }, "/c")).toMatchObject({ ok: false, missing: "root privileges for the jailer" });
    expect(findFirecracker({ env }, root, "/c")).toMatchObject({ ok: false, missing: "an unprivileged user for the jailer" });
    expect(findFirecracker({ env: { ...env, NUCLEUS_FIRECRACKER_INSECURE_NO_JAILER: "1" } }, { uid: 1000, gid: 1000 }, "/c")).toEqual({ ok: true, firecracker: join(bin, "firecracker"), jail: null });
    expect(findFirecracker({ env: { PATH: "" } }, root, "/c")).toMatchObject({ ok: false, missing: "the firecracker binary" });
  });

  it("probe reports the missing jailer, so `auto` passes Firecracker over", async () => {
    const bin = tmp();
    fakeBins(bin, ["firecracker"]);
    const p = await new FirecrackerBackend({ env: { PATH: bin }, imageRoot: join(tmp(), "images") }).probe();
    expect(p.available).toBe(false);
    expect(p.reason).toMatch(/the jailer binary|root privileges for the jailer/);
    expect(p.hints.join(" ")).toMatch(/jailer/);
  });
});

describe("staging into the jailer's chroot", () => {
  it("hard-links on the same filesystem and copies across filesystems", () => {
    const d = tmp();
    writeFileSync(join(d, "src"), "kernel bytes");
    expect(linkOrCopy(join(d, "src"), join(d, "linked"))).toBe("linked");
    expect(statSync(join(d, "linked")).ino).toBe(statSync(join(d, "src")).ino);
    // /dev/shm is a tmpfs: another filesystem than the temp dir here.
    const other = existsSync("/dev/shm") && statSync("/dev/shm").dev !== statSync(d).dev ? mkdtempSync("/dev/shm/nucleus-fc-") : null;
    if (other) {
      cleanups.push(() => rmSync(other, { recursive: true, force: true }));
      expect(linkOrCopy(join(d, "src"), join(other, "copied"))).toBe("copied");
      expect(readFileSync(join(other, "copied"), "utf8")).toBe("kernel bytes");
    }
    expect(() => linkOrCopy(join(d, "missing"), join(d, "x"))).toThrow(/ENOENT/);
  });

  it.skipIf(!isRoot)("builds the chroot with read-only staged files, a run dir owned by the jail user, and removes all of it (needs root, as the jailer does)", () => {
    const src = tmp();
    const base = tmp();
    for (const f of ["vmlinux", "initramfs.cpio"]) writeFileSync(join(src, f), f);
    const lay = jailedLayout({ jailer: "/usr/bin/jailer", uid: 10001, gid: 10002, chrootBase: base, cgroupVersion: 2 }, "/opt/fc/firecracker", "vm-1", { memoryMiB: 256, cpus: 1 });
    const chroot = join(base, "firecracker", "vm-1", "root");
    expect(lay.dir).toBe(chroot);
    expect(lay.stage(join(src, "vmlinux"), "vmlinux")).toBe("/vmlinux");
    // Readable by the jail's user, writable by nobody: a hard link shares the cached file's inode.
    const st = statSync(join(chroot, "vmlinux"));
    expect(st.ino).toBe(statSync(join(src, "vmlinux")).ino);
    expect(st.uid).toBe(0);
    expect(st.mode & 0o777).toBe(0o444);
    // The only directory the jailed Firecracker may write: sockets and snapshot output.
    const run = statSync(join(chroot, "run"));
    expect([run.uid, run.gid, run.mode & 0o777]).toEqual([10001, 10002, 0o700]);
    expect(lay.apiSocket).toBe(join(chroot, "run", "firecracker.socket"));
    expect([lay.vsockHost, lay.vsockInVm, lay.runInVm("mem")]).toEqual([join(chroot, "run", "vsock.sock"), "/run/vsock.sock", "/run/mem"]);
    expect(lay.argv.slice(0, 5)).toEqual(["/usr/bin/jailer", "--id", "vm-1", "--exec-file", "/opt/fc/firecracker"]);
    // A second VM with the same id would share the chroot: refused.
    expect(() => jailedLayout({ jailer: "/usr/bin/jailer", uid: 10001, gid: 10002, chrootBase: base, cgroupVersion: 2 }, "/opt/fc/firecracker", "vm-1", { memoryMiB: 256, cpus: 1 })).toThrow(/EEXIST/);
    lay.cleanup();
    expect(existsSync(join(base, "firecracker", "vm-1"))).toBe(false);
    // The cached file is untouched.
    expect(readFileSync(join(src, "vmlinux"), "utf8")).toBe("vmlinux");
  });

  it("without the jailer (explicit opt-out), uses the run dir and host paths and removes the run dir", () => {
    const run = tmp();
    const lay = directLayout("/usr/bin/firecracker", run);
    expect(lay.argv).toEqual(["/usr/bin/firecracker", "--api-sock", join(run, "api.sock")]);
    expect(lay.stage("/img/vmlinux", "vmlinux")).toBe("/img/vmlinux");
    expect(lay.inVm("d0.ext4")).toBe(join(run, "d0.ext4"));
    lay.cleanup();
    expect(existsSync(run)).toBe(false);
  });
});

/** A fake Firecracker API on a unix socket: records requests, answers 204 (or 400 for `refuse`). */
async function fakeApi(path: string, refuse: string | null = null) {
  const seen: { method: string; url: string; body: Record<string, unknown> | null }[] = [];
  const server = createHttpServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c));
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, body: body ? (JSON.parse(body) as Record<string, unknown>) : null });
      if (req.url === refuse) res.writeHead(400, { "Content-Type": "application/json" }).end(JSON.stringify({ fault_message: "no such snapshot version" }));
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  cleanups.push(() => server.close());
  return seen;
}

describe("bringing the guest up through the API", () => {
  const fakeVm = (dir: string, apiSock: string): FcVm => ({ layout: directLayout("/usr/bin/firecracker", dir), vmm: null as unknown as Sandbox, api: new FirecrackerApi(apiSock), consoleLines: [], id: "t" });

  it("cold: boot source, drives at the layout's paths, vsock, start", async () => {
    const dir = tmp();
    const seen = await fakeApi(join(dir, "api.sock"));
    await coldBoot(fakeVm(dir, join(dir, "api.sock")), { kernel: "/img/vmlinux", initramfs: "/img/initramfs.cpio" }, { memoryMiB: 256, cpus: 1 }, ["d0", "d1"]);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(["PUT /machine-config", "PUT /boot-source", "PUT /drives/d0", "PUT /drives/d1", "PUT /vsock", "PUT /actions"]);
    expect(seen[2]!.body).toMatchObject({ path_on_host: join(dir, "d0.ext4"), is_read_only: true });
    expect(seen[4]!.body).toEqual({ guest_cid: 3, uds_path: join(dir, "vsock.sock") });
  });

  it("restored: load the snapshot and resume, then point every drive at this server's image so the guest re-reads its size", async () => {
    const dir = tmp();
    const seen = await fakeApi(join(dir, "api.sock"));
    await restoreBoot(fakeVm(dir, join(dir, "api.sock")), { dir: "/snap", vmstate: "/snap/vmstate", mem: "/snap/mem" }, ["d0", "d1"]);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(["PUT /snapshot/load", "PATCH /drives/d0", "PATCH /drives/d1"]);
    expect(seen[0]!.body).toEqual({ snapshot_path: "/snap/vmstate", mem_backend: { backend_type: "File", backend_path: "/snap/mem" }, resume_vm: true, clock_realtime: true });
    expect(seen[2]!.body).toEqual({ drive_id: "d1", path_on_host: join(dir, "d1.ext4") });
  });

  it("a refused load surfaces Firecracker's fault message", async () => {
    const dir = tmp();
    await fakeApi(join(dir, "api.sock"), "/snapshot/load");
    await expect(restoreBoot(fakeVm(dir, join(dir, "api.sock")), { dir: "/s", vmstate: "/s/vmstate", mem: "/s/mem" }, [])).rejects.toThrow(/PUT \/snapshot\/load \(HTTP 400\): no such snapshot version/);
  });
});

describe("Firecracker gaps", () => {
  it("keeps a network allowlist now (egress streams over vsock), and still refuses writable paths", async () => {
    const { makeSpec } = await import("../../helpers/spec.js");
    const spec = makeSpec({ name: "n", argv: ["/usr/bin/node"], network: { mode: "allowlist", hosts: [] }, paths: [{ path: "/srv/data", writable: true }] });
    const gaps = await new FirecrackerBackend({ imageRoot: join(tmp(), "images") }).gaps(spec);
    expect(gaps.map((g) => g.rule)).toEqual(["servers.n.allowed_paths[0]"]);
  });
});
