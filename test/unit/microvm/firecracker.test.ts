import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage } from "node:http";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FirecrackerApi } from "../../../src/sandbox/microvm/firecracker/api.js";
import { buildFirecrackerRequests, ctrlAltDel, firecrackerBootArgs } from "../../../src/sandbox/microvm/firecracker/config.js";
import { buildJailerArgv } from "../../../src/sandbox/microvm/firecracker/jailer.js";
import { mkfsArgv } from "../../../src/sandbox/microvm/firecracker/drives.js";
import { connectVsock } from "../../../src/sandbox/microvm/firecracker/vsock.js";
import { bodySchema, FIRECRACKER_YAML, firecrackerYamlAbsent, loadFirecrackerSpec, validate } from "../../helpers/swagger.js";

const requests = buildFirecrackerRequests({
  kernel: "/img/vmlinux",
  initramfs: "/img/initramfs.cpio",
  memoryMiB: 512,
  cpus: 2,
  vsockUds: "/run/x/vsock.sock",
  drives: [
    { id: "d0", image: "/run/x/d0.ext4" },
    { id: "d1", image: "/run/x/d1.ext4" },
  ],
});

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "nucleus-fc-test-"));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe("Firecracker requests", () => {
  it("configure machine, boot source, read-only drives, vsock, then start — and no network interface", () => {
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      "PUT /machine-config",
      "PUT /boot-source",
      "PUT /drives/d0",
      "PUT /drives/d1",
      "PUT /vsock",
      "PUT /actions",
    ]);
    expect(requests.filter((r) => r.path.startsWith("/drives")).every((r) => r.body?.is_read_only === true)).toBe(true);
    expect(requests.some((r) => r.path.includes("network"))).toBe(false);
    expect(firecrackerBootArgs()).not.toMatch(/secret|token/i);
  });

  it("refuses impossible machine sizes", () => {
    expect(() => buildFirecrackerRequests({ kernel: "k", initramfs: "i", memoryMiB: 512, cpus: 0, vsockUds: "v", drives: [] })).toThrow(/vCPUs/);
    expect(() => buildFirecrackerRequests({ kernel: "k", initramfs: "i", memoryMiB: 16, cpus: 1, vsockUds: "v", drives: [] })).toThrow(/64 MiB/);
  });

  it.skipIf(firecrackerYamlAbsent)(`every body validates against Firecracker's OpenAPI definition (${FIRECRACKER_YAML})`, () => {
    const doc = loadFirecrackerSpec();
    for (const r of [...requests, ctrlAltDel()]) {
      const schema = bodySchema(doc, r.method, r.path);
      expect(schema, `${r.method} ${r.path} exists in the API`).not.toBeNull();
      expect(validate(doc, schema!, r.body), `${r.method} ${r.path}`).toEqual([]);
    }
  });

  it.skipIf(firecrackerYamlAbsent)("the validator itself rejects a wrong body (so the check above can fail)", () => {
    const doc = loadFirecrackerSpec();
    const schema = bodySchema(doc, "PUT", "/machine-config")!;
    expect(validate(doc, schema, { vcpu_count: 0, mem_size_mib: "x", bogus: 1 })).toEqual(
      expect.arrayContaining([expect.stringMatching(/bogus: unknown field/), expect.stringMatching(/mem_size_mib: expected an integer/), expect.stringMatching(/minimum/)]),
    );
    expect(validate(doc, bodySchema(doc, "PUT", "/actions")!, { action_type: "Reboot" })[0]).toMatch(/not one of/);
  });
});

describe("Firecracker API client", () => {
  it("sends each request as JSON over the unix socket and reports fault_message on refusal", async () => {
    const dir = tmp();
    const sock = join(dir, "api.sock");
    const seen: { method: string; url: string; body: unknown }[] = [];
    const server = createHttpServer((req: IncomingMessage, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c));
      req.on("end", () => {
        seen.push({ method: req.method!, url: req.url!, body: body ? JSON.parse(body) : null });
        if (req.url === "/vsock") {
          res.writeHead(400, { "Content-Type": "application/json" }).end(JSON.stringify({ fault_message: "vsock unsupported here" }));
        } else res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
    cleanups.push(() => server.close());
    const api = new FirecrackerApi(sock);
    await api.sendAll(requests.slice(0, 4));
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(["PUT /machine-config", "PUT /boot-source", "PUT /drives/d0", "PUT /drives/d1"]);
    expect(seen[0]!.body).toEqual({ vcpu_count: 2, mem_size_mib: 512, smt: false });
    await expect(api.send(requests[4]!)).rejects.toThrow(/HTTP 400\): vsock unsupported here/);
  });
});

/** A fake Firecracker vsock device: answers CONNECT for `listening` ports, then echoes with a prefix. */
function fakeVsock(path: string, listening: number[], opts: { ackExtra?: string; badAck?: string } = {}): Promise<Server> {
  const server = createServer((s) => {
    let buf = "";
    const onData = (d: Buffer) => {
      buf += d.toString("latin1");
      const nl = buf.indexOf("\n");
      if (nl === -1) return;
      s.off("data", onData);
      const m = /^CONNECT (\d+)$/.exec(buf.slice(0, nl));
      if (!m || !listening.includes(Number(m[1]))) return void s.destroy();
      s.write(opts.badAck ?? `OK 1073741824\n${opts.ackExtra ?? ""}`);
      const rest = buf.slice(nl + 1);
      if (rest) s.write(`guest got: ${rest}`);
      s.on("data", (x: Buffer) => s.write(`guest got: ${x.toString()}`));
    };
    s.on("data", onData);
  });
  return new Promise((r) => server.listen(path, () => r(server)));
}

describe("hybrid vsock handshake", () => {
  it("sends CONNECT <port>, accepts OK <port>, then carries bytes both ways, keeping bytes sent with the OK", async () => {
    const path = join(tmp(), "v.sock");
    const server = await fakeVsock(path, [1024], { ackExtra: "hello-early;" });
    cleanups.push(() => server.close());
    const sock = await connectVsock(path, 1024);
    cleanups.push(() => sock.destroy());
    const got = new Promise<string>((resolve) => {
      let all = "";
      sock.on("data", (d: Buffer) => {
        all += d.toString();
        if (all.includes("guest got: ping")) resolve(all);
      });
    });
    sock.write("ping");
    expect(await got).toBe("hello-early;guest got: ping");
  });

  it("fails clearly when the guest does not listen on the port, or answers garbage", async () => {
    const path = join(tmp(), "v.sock");
    const server = await fakeVsock(path, [1024]);
    cleanups.push(() => server.close());
    await expect(connectVsock(path, 9999, 2000)).rejects.toThrow(/CONNECT 9999.*closed/);
    const path2 = join(tmp(), "w.sock");
    const bad = await fakeVsock(path2, [5], { badAck: "NOPE\n" });
    cleanups.push(() => bad.close());
    await expect(connectVsock(path2, 5, 2000)).rejects.toThrow(/unexpected answer "NOPE"/);
  });
});

describe("jailer and drive builders", () => {
  it("runs Firecracker unprivileged, chrooted, in a PID namespace, with cgroup limits", () => {
    const plan = buildJailerArgv({ jailer: "/usr/bin/jailer", firecracker: "/usr/bin/firecracker", id: "srv-1", uid: 10001, gid: 10001, chrootBase: "/srv/jail", cgroupVersion: 2, memoryMiB: 512, cpus: 1 });
    expect(plan.argv).toMatchSnapshot();
    expect(plan.chrootRoot).toBe("/srv/jail/firecracker/srv-1/root");
    expect(plan.cgroupDirs).toEqual(["/sys/fs/cgroup/firecracker/srv-1"]);
    // The jailer names the chroot and the cgroup after the exec file, whatever it is called.
    const versioned = buildJailerArgv({ jailer: "/opt/fc/jailer", firecracker: "/opt/fc/firecracker-v1.12.0-x86_64", id: "a", uid: 1, gid: 1, chrootBase: "/j", cgroupVersion: 1, memoryMiB: 256, cpus: 1 });
    expect(versioned.chrootRoot).toBe("/j/firecracker-v1.12.0-x86_64/a/root");
    expect(versioned.cgroupDirs).toEqual(["/sys/fs/cgroup/memory/firecracker-v1.12.0-x86_64/a"]);
    expect(versioned.argv).toContain("memory.limit_in_bytes=335544320");
    expect(plan.argv).not.toContain("--no-seccomp");
    expect(() => buildJailerArgv({ jailer: "j", firecracker: "f", id: "x", uid: 0, gid: 1, chrootBase: "/j", cgroupVersion: 2, memoryMiB: 1, cpus: 1 })).toThrow(/non-root/);
    expect(() => buildJailerArgv({ jailer: "j", firecracker: "f", id: "../x", uid: 1, gid: 1, chrootBase: "/j", cgroupVersion: 2, memoryMiB: 1, cpus: 1 })).toThrow(/invalid VM id/);
  });

  it("builds ext4 images without a journal from a directory", () => {
    expect(mkfsArgv("mkfs.ext4", "/src", "/out.img", 20480, "d0")).toEqual(["mkfs.ext4", "-q", "-F", "-t", "ext4", "-O", "^has_journal", "-L", "d0", "-E", "root_owner=0:0", "-d", "/src", "/out.img", "20480k"]);
  });
});
