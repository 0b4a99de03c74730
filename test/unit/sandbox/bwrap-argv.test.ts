import { describe, expect, it } from "vitest";
import { buildBwrapPlan, sandboxHostname, type HostFacts } from "../../../src/sandbox/bubblewrap/argv.js";
import { LAUNCHER_SCRIPT, renderEnvFile } from "../../../src/sandbox/bubblewrap/etc-files.js";
import { decode } from "../../../src/sandbox/seccomp/bpf.js";
import { buildSeccompFilter } from "../../../src/sandbox/seccomp/filter.js";
import { buildAgentPlan } from "../../../src/agent/plan.js";
import { parseHostRule } from "../../../src/policy/hosts.js";

const rules = (...raw: string[]) => raw.map((r) => {
  const p = parseHostRule(r);
  if (!p.ok) throw new Error(p.error);
  return p.rule;
});
import { makeSpec } from "../../helpers/spec.js";

const host: HostFacts = {
  bwrap: "/usr/bin/bwrap",
  arch: "x86_64",
  runtime: [
    { path: "/usr", kind: "dir" },
    { path: "/bin", kind: "symlink", target: "usr/bin" },
    { path: "/lib", kind: "symlink", target: "usr/lib" },
    { path: "/lib64", kind: "symlink", target: "usr/lib64" },
  ],
  etc: ["/etc/ld.so.cache", "/etc/ssl/certs"],
  interpreter: "/usr/bin/node",
  shell: "/usr/bin/dash",
  procMasks: ["/proc/keys", "/proc/timer_list"],
};

const argv = ["/usr/bin/node", "/opt/mcp/fs/dist/index.js", "/data/docs"];
const spec = makeSpec({
  name: "Files",
  argv,
  launch: { argv, args: ["/data/docs"], package: null, cwd: null, env: { LOG_LEVEL: "info" }, codeDirs: ["/opt/mcp/fs", "/opt/mcp/node_modules"] },
  paths: [
    { path: "/data/docs/out", writable: true },
    { path: "/data/docs", writable: false },
  ],
});
const SECRET = "ghp_canary-value-123";
const secrets = new Map([
  ["GITHUB_TOKEN", { value: SECRET, as: "env" as const }],
  ["db.pem", { value: "FILE-SECRET", as: "file" as const }],
]);

describe("bwrap argv builder", () => {
  it("builds the argv for a network-less server without secrets", () => {
    const plan = buildBwrapPlan({ spec, host, secrets: new Map(), egress: null });
    expect(plan.argv.join(" ")).toMatchInlineSnapshot(`"/usr/bin/bwrap --unshare-all --unshare-user --disable-userns --die-with-parent --new-session --cap-drop ALL --uid 1000 --gid 1000 --hostname nucleus-files --clearenv --setenv PATH /usr/local/bin:/usr/bin:/bin --setenv HOME /home/nucleus --setenv LANG C.UTF-8 --setenv TMPDIR /tmp --setenv USER nucleus --setenv LOG_LEVEL info --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev --size 67108864 --tmpfs /dev/shm --size 67108864 --tmpfs /tmp --size 67108864 --tmpfs /home/nucleus --ro-bind-data 3 /etc/passwd --ro-bind-data 4 /etc/group --ro-bind-data 5 /etc/hosts --ro-bind /etc/ld.so.cache /etc/ld.so.cache --ro-bind /etc/ssl/certs /etc/ssl/certs --ro-bind /data/docs /data/docs --bind /data/docs/out /data/docs/out --ro-bind /opt/mcp/fs /opt/mcp/fs --ro-bind /opt/mcp/node_modules /opt/mcp/node_modules --remount-ro / --remount-ro /dev --ro-bind /dev/null /proc/keys --ro-bind /dev/null /proc/timer_list --remount-ro /proc --seccomp 6 --chdir /home/nucleus -- /usr/bin/node /opt/mcp/fs/dist/index.js /data/docs"`);
    expect(plan.fdData).toHaveLength(4);
    expect(plan.fdData[0]!.toString()).toContain("nucleus:x:1000:1000:");
    expect(decode(plan.fdData[3]!).length).toBeGreaterThan(50);
  });

  it("delivers secrets through fds and a launcher, never on argv", () => {
    const plan = buildBwrapPlan({ spec, host, secrets, egress: null });
    const tail = plan.argv.slice(plan.argv.indexOf("--remount-ro") - 18);
    expect(tail).toMatchInlineSnapshot(`
      [
        "--size",
        "1048576",
        "--tmpfs",
        "/run/nucleus",
        "--perms",
        "0400",
        "--file",
        "6",
        "/run/nucleus/env.sh",
        "--size",
        "1048576",
        "--tmpfs",
        "/run/secrets",
        "--perms",
        "0400",
        "--file",
        "7",
        "/run/secrets/db.pem",
        "--remount-ro",
        "/",
        "--remount-ro",
        "/dev",
        "--ro-bind",
        "/dev/null",
        "/proc/keys",
        "--ro-bind",
        "/dev/null",
        "/proc/timer_list",
        "--remount-ro",
        "/proc",
        "--seccomp",
        "8",
        "--chdir",
        "/home/nucleus",
        "--",
        "/usr/bin/dash",
        "-c",
        "set -a; . "$1" || exit 126; set +a; rm -f -- "$1"; shift; exec "$@"",
        "nucleus-launch",
        "/run/nucleus/env.sh",
        "/usr/bin/node",
        "/opt/mcp/fs/dist/index.js",
        "/data/docs",
      ]
    `);
    expect(plan.argv.join("\0")).not.toContain(SECRET);
    expect(plan.argv.join("\0")).not.toContain("FILE-SECRET");
    expect(plan.fdData[3]!.toString()).toBe(`GITHUB_TOKEN='${SECRET}'\n`);
    expect(plan.fdData[4]!.toString()).toBe("FILE-SECRET");
  });

  it("allowlist mode: binds the proxy socket and the agent, pins names in /etc/hosts, wraps the server with the agent", () => {
    const net = makeSpec({ ...spec, argv, network: { mode: "allowlist", hosts: rules("db.internal:5432", "api.github.com", "*.example.com") } });
    const egress = {
      socket: "/tmp/nucleus-egress-x/0-files.sock",
      agentDir: "/opt/nucleus/dist/agent",
      packageJson: "/opt/nucleus/package.json",
      plan: buildAgentPlan(net, { nodePath: "/opt/node/bin/node" }),
    };
    const plan = buildBwrapPlan({ spec: net, host, secrets, egress });
    // SECURITY: --unshare-all keeps the network namespace (loopback only): the socket is the only way out.
    expect(plan.argv).toContain("--unshare-all");
    expect(plan.argv).not.toContain("--share-net");
    expect(plan.argv.join(" ")).toMatchInlineSnapshot(`"/usr/bin/bwrap --unshare-all --unshare-user --disable-userns --die-with-parent --new-session --cap-drop ALL --uid 1000 --gid 1000 --hostname nucleus-files --clearenv --setenv PATH /usr/local/bin:/usr/bin:/bin --setenv HOME /home/nucleus --setenv LANG C.UTF-8 --setenv TMPDIR /tmp --setenv USER nucleus --setenv LOG_LEVEL info --setenv NUCLEUS_AGENT_CONFIG {"version":1,"socket":"/run/nucleus/egress.sock","proxy":{"host":"127.0.0.1","port":3128},"pins":[{"host":"db.internal","port":5432,"address":"127.0.1.1"},{"host":"api.github.com","port":443,"address":"127.0.1.2"},{"host":"api.github.com","port":80,"address":"127.0.1.2"}]} --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev --size 67108864 --tmpfs /dev/shm --size 67108864 --tmpfs /tmp --size 67108864 --tmpfs /home/nucleus --ro-bind-data 3 /etc/passwd --ro-bind-data 4 /etc/group --ro-bind-data 5 /etc/hosts --ro-bind /etc/ld.so.cache /etc/ld.so.cache --ro-bind /etc/ssl/certs /etc/ssl/certs --ro-bind /data/docs /data/docs --bind /data/docs/out /data/docs/out --ro-bind /opt/mcp/fs /opt/mcp/fs --ro-bind /opt/mcp/node_modules /opt/mcp/node_modules --ro-bind /opt/node/bin/node /opt/node/bin/node --size 1048576 --tmpfs /run/nucleus --perms 0400 --file 6 /run/nucleus/env.sh --size 1048576 --tmpfs /run/secrets --perms 0400 --file 7 /run/secrets/db.pem --ro-bind /tmp/nucleus-egress-x/0-files.sock /run/nucleus/egress.sock --ro-bind /opt/nucleus/dist/agent /run/nucleus/agent --ro-bind /opt/nucleus/package.json /run/nucleus/package.json --remount-ro / --remount-ro /dev --ro-bind /dev/null /proc/keys --ro-bind /dev/null /proc/timer_list --remount-ro /proc --seccomp 8 --chdir /home/nucleus -- /usr/bin/dash -c set -a; . "$1" || exit 126; set +a; rm -f -- "$1"; shift; exec "$@" nucleus-launch /run/nucleus/env.sh /opt/node/bin/node /run/nucleus/agent/main.js -- /usr/bin/node /opt/mcp/fs/dist/index.js /data/docs"`);
    // /etc/hosts: the pinned names on their own loopback addresses, the hostname on 127.0.0.1 (no clash with pins).
    expect(plan.fdData[2]!.toString()).toBe("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tdb.internal\n127.0.1.2\tapi.github.com\n127.0.0.1\tnucleus-files\n");
    // SECURITY: secret values reach only fd data, never argv; the agent's config (on argv via --setenv) holds none.
    expect(plan.argv.join("\0")).not.toContain(SECRET);
    expect(plan.argv.join("\0")).not.toContain("FILE-SECRET");
    expect(egress.plan.env.NUCLEUS_AGENT_CONFIG).not.toContain(SECRET);
    // SECURITY: AF_INET/AF_INET6 are allowed by seccomp only in this mode (the agent listens on loopback).
    const filterOf = (p: { argv: string[]; fdData: Buffer[] }) => p.fdData[Number(p.argv[p.argv.indexOf("--seccomp") + 1]) - 3]!;
    expect(filterOf(plan).equals(buildSeccompFilter({ arch: "x86_64", allowInet: true }))).toBe(true);
    expect(filterOf(buildBwrapPlan({ spec, host, secrets, egress: null })).equals(buildSeccompFilter({ arch: "x86_64", allowInet: false }))).toBe(true);
  });

  it("fails closed: an allowlist without its proxy, or a network-less server with one, is refused", () => {
    const net = makeSpec({ ...spec, argv, network: { mode: "allowlist", hosts: rules("api.github.com") } });
    expect(() => buildBwrapPlan({ spec: net, host, secrets: new Map(), egress: null })).toThrow(/no egress proxy socket/);
    const egress = { socket: "/tmp/s.sock", agentDir: "/opt/a", packageJson: "/opt/package.json", plan: buildAgentPlan(net) };
    expect(() => buildBwrapPlan({ spec, host, secrets: new Map(), egress })).toThrow(/must not get an egress path/);
  });

  it("binds an interpreter that lives outside the runtime at its real path", () => {
    const a2 = ["/opt/node/bin/node", "/srv/x.js"];
    const s2 = makeSpec({ name: "x", argv: a2 });
    const plan = buildBwrapPlan({ spec: s2, host: { ...host, interpreter: "/opt/node/bin/node" }, secrets: new Map(), egress: null });
    expect(plan.argv.join(" ")).toContain("--ro-bind /opt/node/bin/node /opt/node/bin/node");
  });

  it("never binds the host's /home, /root, /run, /sys or resolv.conf", () => {
    const plan = buildBwrapPlan({ spec, host, secrets, egress: null });
    const binds: string[] = [];
    plan.argv.forEach((x, i) => {
      if (["--bind", "--ro-bind", "--dev-bind"].includes(x) && plan.argv[i + 1] !== "/dev/null") binds.push(plan.argv[i + 1]!);
    });
    expect(binds.length).toBeGreaterThan(5);
    for (const b of binds) expect(b).not.toMatch(/^\/(home|root|run|sys|proc|dev)(\/|$)|resolv\.conf|^\/$|^\/etc$/);
  });

  it("refuses secret targets that could escape their directory or the shell", () => {
    expect(() => buildBwrapPlan({ spec, host, secrets: new Map([["../x", { value: "v", as: "file" }]]), egress: null })).toThrow(/cannot be delivered/);
    expect(() => buildBwrapPlan({ spec, host, secrets: new Map([["..", { value: "v", as: "file" }]]), egress: null })).toThrow(/cannot be delivered/);
    expect(() => buildBwrapPlan({ spec, host, secrets: new Map([["A;B", { value: "v", as: "env" }]]), egress: null })).toThrow(/cannot be delivered/);
  });

  it("quotes env secret values for the launcher whatever they contain", () => {
    expect(renderEnvFile([["X", "a'b $(id) `x`\n"]])).toBe("X='a'\\''b $(id) `x`\n'\n");
    expect(LAUNCHER_SCRIPT).not.toMatch(/\$\{?[A-Z]/);
    expect(sandboxHostname("My Server")).toBe("nucleus-my-server");
  });
});

describe("bwrap argv builder refusals", () => {
  it("refuses / or a relative path as a code dir", () => {
    for (const d of ["/", "//", "relative/dir"]) {
      const s = makeSpec({ name: "x", argv, launch: { ...spec.launch, codeDirs: [d] } });
      expect(() => buildBwrapPlan({ spec: s, host, secrets: new Map(), egress: null })).toThrow(/code dir/);
    }
  });
});

describe("bwrap bind order", () => {
  it("binds parents before children across code dirs and grants; read-only wins at an equal path", () => {
    const a3 = ["/usr/bin/node", "/work/app/index.js"];
    const s3 = makeSpec({
      name: "order",
      argv: a3,
      launch: { argv: a3, args: [], package: null, cwd: null, env: {}, codeDirs: ["/work/app", "/work/node_modules"] },
      paths: [{ path: "/work", writable: true }, { path: "/work/node_modules", writable: true }, { path: "/work-b", writable: false }],
    });
    const plan = buildBwrapPlan({ spec: s3, host, secrets: new Map(), egress: null });
    const binds: string[] = [];
    plan.argv.forEach((x, i) => {
      if ((x === "--bind" || x === "--ro-bind") && plan.argv[i + 1]!.startsWith("/work")) binds.push(`${x} ${plan.argv[i + 1]}`);
    });
    expect(binds).toEqual(["--bind /work", "--ro-bind /work-b", "--ro-bind /work/app", "--bind /work/node_modules", "--ro-bind /work/node_modules"]);
  });
});
