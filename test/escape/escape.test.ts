// The escape suite: a hostile MCP server tries each attack from issue 3 inside
// the bubblewrap sandbox; every test checks the host afterwards, not only the
// reply. Runs as whoever runs vitest (root, or the unprivileged variant).
import { randomBytes } from "node:crypto";
import { copyFileSync, chmodSync, existsSync, readFileSync, rmSync } from "node:fs";
import * as dgram from "node:dgram";
import * as net from "node:net";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findBwrap } from "../../src/sandbox/bubblewrap/host.js";
import { everyCmdline } from "../helpers/process.js";
import { launchHostile, makeBackend, makeEscapeTargets, type Hostile } from "./harness.js";

const noBwrap = findBwrap() === null;
const root = process.getuid?.() === 0;
const who = root ? "root" : `uid ${process.getuid?.()}`;
const backend = noBwrap ? null : makeBackend();
const controllers = backend?.controllers();
const noPids = !controllers?.pids.usable;
const noMemory = !controllers?.memory.usable;
const hasIpv6Loopback = existsSync("/proc/net/if_inet6") && / lo$/m.test(readFileSync("/proc/net/if_inet6", "utf8"));

const CANARY = `canary-${randomBytes(8).toString("hex")}`;
const GATEWAY_CANARY = `gateway-secret-${randomBytes(8).toString("hex")}`;
const A_SECRET = `a-secret-${randomBytes(8).toString("hex")}`;
const B_SECRET = `b-secret-${randomBytes(8).toString("hex")}`;
let base: string, home: string, ro: string, rw: string, other: string;
let a: Hostile, b: Hostile;
const received: string[] = [];
const servers: Array<net.Server | dgram.Socket> = [];
let tcpPort = 0, tcp6Port = 0, udpPort = 0;
const abstractName = `\0nucleus-escape-${randomBytes(6).toString("hex")}`;

function listen(server: net.Server, opts: net.ListenOptions): Promise<number> {
  return new Promise((res, rej) => {
    server.once("error", rej);
    server.listen(opts, () => res((server.address() as net.AddressInfo | null)?.port ?? 0));
  });
}

beforeAll(async () => {
  if (noBwrap) return;
  process.env.NUCLEUS_GATEWAY_CANARY = GATEWAY_CANARY;
  ({ base, home, ro, rw, other } = makeEscapeTargets("nucleus-escape-", CANARY));
  if (root) {
    copyFileSync("/usr/bin/id", join(ro, "suid-id"));
    chmodSync(join(ro, "suid-id"), 0o4755);
  }
  const onConn = (tag: string) => (s: net.Socket) => {
    received.push(tag);
    s.destroy();
  };
  const t4 = net.createServer(onConn("tcp4"));
  tcpPort = await listen(t4, { host: "127.0.0.1", port: 0 });
  servers.push(t4);
  const t6 = net.createServer(onConn("tcp6"));
  if (hasIpv6Loopback) tcp6Port = await listen(t6, { host: "::1", port: 0 });
  servers.push(t6);
  const ab = net.createServer(onConn("abstract"));
  await listen(ab, { path: abstractName } as net.ListenOptions);
  servers.push(ab);
  const u = dgram.createSocket("udp4");
  u.on("message", () => received.push("udp"));
  await new Promise<void>((r) => u.bind(0, "127.0.0.1", () => r()));
  udpPort = u.address().port;
  servers.push(u);
  a = await launchHostile(backend!, "attacker", {
    paths: [{ path: ro, writable: false }, { path: rw, writable: true }],
    secrets: new Map([["A_SECRET", { value: A_SECRET, as: "env" }]]),
  });
  b = await launchHostile(backend!, "victim", {
    paths: [{ path: other, writable: true }],
    secrets: new Map([["B_SECRET", { value: B_SECRET, as: "env" }]]),
  });
});

afterAll(async () => {
  await Promise.all([a?.sandbox.stop(2000), b?.sandbox.stop(2000)]);
  for (const s of servers) s.close();
  if (base) rmSync(base, { recursive: true, force: true });
});

const test = it.skipIf(noBwrap);
const why = noBwrap ? " (skipped: bwrap is not installed)" : "";

describe(`escape suite as ${who}${why}`, () => {
  test("cannot read a canary under the host's home (~/.ssh/id_ed25519)", async () => {
    const r = await a.attack("read-file", { path: join(home, ".ssh", "id_ed25519") });
    expect(r.escaped).toBe(false);
    expect(JSON.stringify(r)).not.toContain(CANARY);
    expect((await a.attack("list-dir", { path: home })).escaped).toBe(false);
  });

  test("sees neither the real /root nor anyone's /home", async () => {
    const r = await a.attack("real-homes");
    expect(r.escaped).toBe(false);
  });

  test("cannot read /etc/shadow", async () => {
    const r = await a.attack("read-file", { path: "/etc/shadow" });
    expect(r).toMatchObject({ escaped: false, detail: "ENOENT" });
  });

  test("cannot read the gateway's /proc/<pid>/environ or cmdline", async () => {
    const direct = await a.attack("proc-of", { pid: process.pid });
    const scan = await a.attack("scan-proc");
    const all = JSON.stringify([direct, scan]);
    expect(all).not.toContain(GATEWAY_CANARY);
    expect(all).not.toContain("vitest");
    expect(all).not.toContain(B_SECRET);
  });

  test("cannot read another server's allowed directory", async () => {
    const r = await a.attack("read-file", { path: join(other, "secret.txt") });
    expect(r.escaped).toBe(false);
    expect(JSON.stringify(r)).not.toContain(CANARY);
  });

  test("cannot read another server's environment", async () => {
    const mine = await b.attack("whoami");
    expect(JSON.stringify(mine)).toContain(B_SECRET); // the victim really holds the canary
    const scan = await a.attack("scan-proc");
    expect(JSON.stringify(scan)).not.toContain(B_SECRET);
  });

  test("secret values appear in no process's argv, on the host or inside", async () => {
    const inside = await a.attack("scan-proc");
    const cmdlines = (inside.detail as string[]).filter((l) => l.includes("/cmdline:"));
    expect(cmdlines.join("\n")).not.toContain(A_SECRET);
    expect(JSON.stringify(inside)).toContain(A_SECRET); // in its own environ, as intended
    const cmdlinesOnHost = everyCmdline();
    expect(cmdlinesOnHost).not.toContain(A_SECRET);
    expect(cmdlinesOnHost).not.toContain(B_SECRET);
  });

  test("cannot write outside the allowed paths", async () => {
    expect((await a.attack("write-file", { path: join(home, "pwned") })).escaped).toBe(false);
    await a.attack("write-file", { path: join(dirname(base), `pwned-${CANARY}`) }); // lands in the private /tmp
    expect(existsSync(join(home, "pwned"))).toBe(false);
    expect(existsSync(join(dirname(base), `pwned-${CANARY}`))).toBe(false);
    // Real system paths are only probed with access(W_OK), never written.
    for (const path of ["/", "/usr/bin", "/etc", "/etc/passwd", "/home"]) {
      expect([path, (await a.attack("writable", { path })).escaped]).toEqual([path, false]);
    }
  });

  test("cannot write kernel settings through /proc (sysctl, sysrq)", async () => {
    for (const path of ["/proc/sys/kernel/core_pattern", "/proc/sys/vm/drop_caches", "/proc/sys/fs/file-max", "/proc/sysrq-trigger"]) {
      expect([path, (await a.attack("writable", { path })).escaped]).toEqual([path, false]);
    }
  });

  test("cannot write into a read-only allowed path", async () => {
    expect((await a.attack("write-file", { path: join(ro, "ro.txt") })).escaped).toBe(false);
    expect((await a.attack("write-file", { path: join(ro, "new.txt") })).escaped).toBe(false);
    expect(readFileSync(join(ro, "ro.txt"), "utf8")).toBe("original");
    expect(existsSync(join(ro, "new.txt"))).toBe(false);
  });

  test("cannot write outside through '..' from a writable path", async () => {
    await a.attack("write-file", { path: join(rw, "..", "dotdot-escape.txt") });
    await a.attack("write-file", { path: join(rw, "..", "home", "dotdot.txt") });
    expect(existsSync(join(base, "dotdot-escape.txt"))).toBe(false);
    expect(existsSync(join(home, "dotdot.txt"))).toBe(false);
  });

  test("cannot write through a symlink planted in a writable path", async () => {
    const r = await a.attack("symlink-write", { dir: rw, target: join(home, "via-symlink.txt") });
    expect(r.escaped).toBe(false);
    expect(existsSync(join(home, "via-symlink.txt"))).toBe(false);
  });

  test("cannot write through a hardlink planted in a writable path", async () => {
    const r = await a.attack("hardlink-write", { dir: rw, target: join(ro, "ro.txt") });
    expect(r.escaped).toBe(false);
    const r2 = await a.attack("hardlink-write", { dir: rw, target: "/etc/passwd" });
    expect(r2.escaped).toBe(false);
    expect(readFileSync(join(ro, "ro.txt"), "utf8")).toBe("original");
  });

  test("cannot mount", async () => {
    expect(await a.attack("syscall", { attack: "mount" })).toMatchObject({ escaped: false, detail: "denied 1" });
  });

  test("cannot unshare a user (or mount) namespace", async () => {
    expect(await a.attack("syscall", { attack: "unshare-user" })).toMatchObject({ escaped: false, detail: "denied 1" });
    expect(await a.attack("syscall", { attack: "unshare-mount" })).toMatchObject({ escaped: false, detail: "denied 1" });
  });

  test("cannot ptrace another process", async () => {
    for (const pid of [1, 2, process.pid, Number(b.sandbox.details.pid)]) {
      expect(await a.attack("syscall", { attack: "ptrace", arg: pid })).toMatchObject({ escaped: false });
    }
  });

  test("cannot take another process's file descriptors (pidfd_getfd)", async () => {
    expect(await a.attack("syscall", { attack: "pidfd-getfd" })).toMatchObject({ escaped: false, detail: "denied 1" });
  });

  test("cannot signal another server or the gateway", async () => {
    for (const pid of [process.pid, Number(b.sandbox.details.pid)]) {
      expect((await a.attack("signal", { pid })).escaped).toBe(false);
    }
    expect(JSON.stringify(await b.attack("whoami"))).toContain(B_SECRET); // the victim still answers
  });

  test("cannot push input into a terminal (TIOCSTI)", async () => {
    expect((await a.attack("tty")).escaped).toBe(false);
  });

  it.skipIf(noBwrap || noPids)(`a fork bomb is contained by the pids limit${noPids ? ` (skipped: ${controllers?.pids.detail ?? "no bwrap"})` : ""}`, async () => {
    const bomb = await launchHostile(backend!, "forker", { limits: { pids: 48, explicit: { memory: false, cpus: false, pids: true } } });
    try {
      const r = await bomb.attack("fork-bomb", { max: 400 });
      expect(r.escaped).toBe(false);
      expect(r.forked as number).toBeLessThan(48);
      expect(r.forked as number).toBeGreaterThan(0);
    } finally {
      await bomb.sandbox.stop(2000);
    }
  });

  it.skipIf(noBwrap || noMemory)(`a memory bomb is OOM-killed alone${noMemory ? ` (skipped: ${controllers?.memory.detail ?? "no bwrap"})` : ""}`, async () => {
    const bomb = await launchHostile(backend!, "hog", { limits: { memoryMiB: 96, explicit: { memory: true, cpus: false, pids: false } } });
    await expect(bomb.attack("memory-bomb")).rejects.toThrow();
    const exit = await bomb.sandbox.exited;
    expect(exit.cause).toBe("oom");
    expect(exit.message).toMatch(/OOM killer/);
    expect(JSON.stringify(await b.attack("whoami"))).toContain(B_SECRET); // other servers live on
  });

  test("filling /tmp stops at its size limit", async () => {
    const r = await a.attack("fill-tmp");
    expect(r).toMatchObject({ escaped: false, detail: "ENOSPC" });
    expect(r.bytes as number).toBeLessThanOrEqual(64 * 1024 * 1024);
  });

  test("filling /dev/shm stops at its size limit, and /dev itself is read-only", async () => {
    const r = await a.attack("fill-tmp", { dir: "/dev/shm" });
    expect(r).toMatchObject({ escaped: false, detail: "ENOSPC" });
    expect(r.bytes as number).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(await a.attack("fill-tmp", { dir: "/dev" })).toMatchObject({ escaped: false, detail: "EROFS", bytes: 0 });
  });

  test("cannot open a TCP connection (host loopback listener)", async () => {
    expect((await a.attack("tcp", { host: "127.0.0.1", port: tcpPort })).escaped).toBe(false);
    expect(received).not.toContain("tcp4");
  });

  test("cannot send UDP", async () => {
    const r = await a.attack("udp", { type: "udp4", host: "127.0.0.1", port: udpPort });
    expect(r.sent).toBe(false);
    await new Promise((res) => setTimeout(res, 200));
    expect(received).not.toContain("udp");
  });

  it.skipIf(noBwrap || !hasIpv6Loopback)(`cannot open an IPv6 connection${hasIpv6Loopback ? "" : " (skipped: the host has no IPv6 loopback)"}`, async () => {
    expect((await a.attack("tcp", { host: "::1", port: tcp6Port })).escaped).toBe(false);
    expect((await a.attack("udp", { type: "udp6", host: "::1", port: 9 })).sent).toBe(false);
    expect(received).not.toContain("tcp6");
  });

  test("cannot open raw, packet or netlink sockets", async () => {
    for (const arg of ["2,3,1", "10,3,58", "17,3,0", "16,3,0", "16,2,0"]) {
      expect(await a.attack("syscall", { attack: "socket", arg })).toMatchObject({ escaped: false, detail: "denied 97" });
    }
  });

  test("cannot connect to a host abstract unix socket", async () => {
    expect((await a.attack("unix", { path: abstractName })).escaped).toBe(false);
    expect(received).not.toContain("abstract");
  });

  test("cannot reach the host's well-known sockets (docker, dbus, X11)", async () => {
    for (const path of ["/var/run/docker.sock", "/run/docker.sock", "/run/dbus/system_bus_socket", "/tmp/.X11-unix/X0", "\0/tmp/.X11-unix/X0"]) {
      expect((await a.attack("unix", { path })).escaped).toBe(false);
    }
  });

  test("cannot read /sys, kernel keyrings or /dev/mem", async () => {
    expect((await a.attack("list-dir", { path: "/sys" })).escaped).toBe(false);
    expect((await a.attack("read-file", { path: "/dev/mem" })).escaped).toBe(false);
    expect((await a.attack("read-file", { path: "/dev/kmsg" })).escaped).toBe(false);
    for (const path of ["/proc/keys", "/proc/key-users", "/proc/timer_list", "/proc/slabinfo"]) {
      const r = await a.attack("read-file", { path });
      expect([path, r.escaped && r.detail !== ""]).toEqual([path, false]);
    }
    expect(await a.attack("syscall", { attack: "keyctl" })).toMatchObject({ escaped: false, detail: "denied 1" });
    expect(await a.attack("syscall", { attack: "add-key" })).toMatchObject({ escaped: false, detail: "denied 1" });
  });

  test("cannot escalate with a setuid binary (no_new_privs, no capabilities)", async () => {
    const path = root ? join(ro, "suid-id") : (process.env.NUCLEUS_ESCAPE_SETUID ?? "/usr/bin/id");
    const r = await a.attack("setuid", { path });
    expect(r.escaped).toBe(false);
    expect(r.detail).toMatchObject({ noNewPrivs: "1", capEff: "0000000000000000" });
  });
});
