// The escape suite's attacks that mean something in a VM, against the QEMU microVM backend: the
// hostile fixture runs as root inside its own guest kernel, so what counts is the host afterwards —
// no host file read or written outside the grants, a read-only share stays read-only even after a
// remount, secrets only where delivered, and no network at all (no NIC). One VM boot.
import { randomBytes } from "node:crypto";
import * as dgram from "node:dgram";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildImage } from "../../src/sandbox/microvm/image/build.js";
import type { GuestImage } from "../../src/sandbox/microvm/image/store.js";
import { QemuBackend } from "../../src/sandbox/microvm/qemu/backend.js";
import { whichSync } from "../../src/sandbox/which.js";
import { alive, qemuUnder } from "../helpers/process.js";
import { launchHostile, makeEscapeTargets, type Hostile } from "./harness.js";

const noQemu = !whichSync("qemu-system-x86_64") || !whichSync("bwrap") || !whichSync("apt-get");
const CANARY = `canary-${randomBytes(8).toString("hex")}`;
const GATEWAY_CANARY = `gateway-secret-${randomBytes(8).toString("hex")}`;
const A_SECRET = `a-secret-${randomBytes(8).toString("hex")}`;
const F_SECRET = `f-secret-${randomBytes(8).toString("hex")}`;
let base: string, home: string, ro: string, rw: string, other: string;
let a: Hostile;
let image: GuestImage;
const received: string[] = [];
const servers: Array<net.Server | dgram.Socket> = [];
let tcpPort = 0, udpPort = 0;

function argvOfAll(): string {
  const out: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      out.push(readFileSync(`/proc/${pid}/cmdline`, "utf8"));
    } catch {
      /* gone */
    }
  }
  return out.join("\n");
}

describe.skipIf(noQemu)("escape suite against the QEMU microVM backend (needs qemu-system-x86_64, bwrap, apt-get)", () => {
  beforeAll(async () => {
    image = (await buildImage()).image;
    process.env.NUCLEUS_GATEWAY_CANARY = GATEWAY_CANARY;
    ({ base, home, ro, rw, other } = makeEscapeTargets("nucleus-qemu-escape-", CANARY));
    const t4 = net.createServer((s) => (received.push("tcp"), s.destroy()));
    await new Promise<void>((r) => t4.listen(0, "127.0.0.1", () => r()));
    tcpPort = (t4.address() as net.AddressInfo).port;
    servers.push(t4);
    const u = dgram.createSocket("udp4");
    u.on("message", () => received.push("udp"));
    await new Promise<void>((r) => u.bind(0, "127.0.0.1", () => r()));
    udpPort = u.address().port;
    servers.push(u);
    a = await launchHostile(new QemuBackend(), "attacker", {
      paths: [{ path: ro, writable: false }, { path: rw, writable: true }],
      secrets: new Map([
        ["A_SECRET", { value: A_SECRET, as: "env" }],
        ["F_SECRET", { value: F_SECRET, as: "file" }],
      ]),
    });
  }, 600_000);

  afterAll(async () => {
    const vmm = a ? qemuUnder(Number(a.sandbox.details.pid)) : [];
    await a?.sandbox.stop(2000);
    for (const s of servers) s.close();
    // Nothing of the VM is left on the host: its QEMU is gone, and no process names its writable share.
    if (a) {
      expect(vmm).toHaveLength(1);
      expect(vmm.filter(alive)).toEqual([]);
      expect(argvOfAll()).not.toContain(rw);
    }
    if (base) rmSync(base, { recursive: true, force: true });
  }, 60_000);

  it("cannot read a canary under a home that is not granted", async () => {
    const r = await a.attack("read-file", { path: join(home, ".ssh", "id_ed25519") });
    expect(r).toMatchObject({ escaped: false, detail: "ENOENT" });
    expect((await a.attack("list-dir", { path: home })).escaped).toBe(false);
    expect((await a.attack("list-dir", { path: base })).detail).toEqual(expect.not.arrayContaining(["home", "other"]));
  });

  it("cannot read the host's /etc/shadow nor another server's allowed directory", async () => {
    expect(await a.attack("read-file", { path: "/etc/shadow" })).toMatchObject({ escaped: false, detail: "ENOENT" });
    const r = await a.attack("read-file", { path: join(other, "secret.txt") });
    expect(r).toMatchObject({ escaped: false, detail: "ENOENT" });
  });

  it("sees only its guest's processes: no gateway environment or argv", async () => {
    const all = JSON.stringify([await a.attack("proc-of", { pid: process.pid }), await a.attack("scan-proc")]);
    expect(all).not.toContain(GATEWAY_CANARY);
    expect(all).not.toContain("vitest");
  });

  it("gets its secrets (env and file) but never on the kernel command line, in the image or in any argv", async () => {
    expect(JSON.stringify(await a.attack("whoami"))).toContain(A_SECRET);
    expect((await a.attack("read-file", { path: `/run/nucleus/secrets/F_SECRET` })).detail).toBe(F_SECRET);
    const cmdline = await a.attack("read-file", { path: "/proc/cmdline" });
    expect(cmdline.escaped).toBe(true); // the guest's own, readable
    expect(String(cmdline.detail)).not.toContain(A_SECRET);
    expect(String(cmdline.detail)).not.toContain(F_SECRET);
    const inside = (await a.attack("scan-proc")).detail as string[];
    expect(inside.filter((l) => l.includes("/cmdline:")).join("\n")).not.toMatch(new RegExp(`${A_SECRET}|${F_SECRET}`));
    const host = argvOfAll();
    expect(host).not.toContain(A_SECRET);
    expect(host).not.toContain(F_SECRET);
    for (const f of ["vmlinux", "initramfs.cpio"]) {
      const bytes = readFileSync(join(image.dir, f));
      expect([f, bytes.includes(A_SECRET), bytes.includes(F_SECRET)]).toEqual([f, false, false]);
    }
  });

  it("cannot write outside the allowed paths; a writable grant does write to the host", async () => {
    expect((await a.attack("write-file", { path: join(home, "pwned") })).escaped).toBe(false);
    await a.attack("write-file", { path: join(dirname(base), `pwned-${CANARY}`) }); // the guest's own /tmp
    await a.attack("write-file", { path: join(rw, "..", "dotdot-escape.txt") }); // the guest's rootfs
    await a.attack("symlink-write", { dir: rw, target: join(home, "via-symlink.txt") });
    expect(existsSync(join(home, "pwned"))).toBe(false);
    expect(existsSync(join(dirname(base), `pwned-${CANARY}`))).toBe(false);
    expect(existsSync(join(base, "dotdot-escape.txt"))).toBe(false);
    expect(existsSync(join(home, "via-symlink.txt"))).toBe(false);
    expect((await a.attack("write-file", { path: join(rw, "granted.txt") })).escaped).toBe(true);
    expect(readFileSync(join(rw, "granted.txt"), "utf8")).toBe("pwned");
  });

  it("cannot write into a read-only share, not even as root in the guest after remounting it", async () => {
    expect((await a.attack("write-file", { path: join(ro, "ro.txt") })).detail).toBe("EROFS");
    const r = await a.attack("remount-write", { dir: ro, file: "new.txt" });
    expect(r.escaped).toBe(false);
    expect(readFileSync(join(ro, "ro.txt"), "utf8")).toBe("original");
    expect(existsSync(join(ro, "new.txt"))).toBe(false);
  });

  it("has no network: no interface but lo; TCP, UDP and DNS to the host or beyond fail", async () => {
    expect((await a.attack("list-dir", { path: "/sys/class/net" })).detail).toEqual(["lo"]);
    for (const host of ["127.0.0.1", "10.0.2.2", "1.1.1.1"]) {
      const r = await a.attack("tcp", { host, port: tcpPort });
      expect([host, r.escaped]).toEqual([host, false]);
    }
    await a.attack("udp", { type: "udp4", host: "127.0.0.1", port: udpPort });
    await a.attack("udp", { type: "udp4", host: "10.0.2.2", port: udpPort });
    const dns = await a.attack("tcp", { host: "example.com", port: 443 });
    expect(dns.escaped).toBe(false);
    expect(dns.detail).toMatch(/ENOTFOUND|EAI_AGAIN/);
    await new Promise((r) => setTimeout(r, 200));
    expect(received).toEqual([]);
  });
});
