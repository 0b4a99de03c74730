// Egress benchmark: a 100 MiB download and 1,000 small requests (one new
// connection each) from inside a bubblewrap sandbox through the agent and the
// egress proxy, against the same client run directly on the host, in one run.
// Prints ratios. Needs `npm run build` first, and bwrap. Loopback only.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildAgentPlan } from "../dist/agent/plan.js";
import { startEgressProxy } from "../dist/egress/index.js";
import { receiveListeners } from "../dist/sandbox/bubblewrap/egress-handover.js";
import { Logger } from "../dist/log.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BIG = 100 * 1024 * 1024;
const SMALL = Number(process.env.EGRESS_BENCH_SMALL ?? 1000);

const target = spawn(process.execPath, [join(root, "bench/egress-target.mjs"), "127.0.0.17"], { stdio: ["ignore", "pipe", "inherit"] });
const port = await new Promise((res) => target.stdout.once("data", (d) => res(Number(String(d).trim()))));
const tmp = mkdtempSync(join(tmpdir(), "nucleus-egress-bench-"));
const rule = { raw: `127.0.0.17:${port}`, kind: "ip", host: "127.0.0.17", ports: [port], portExplicit: true };
const proxy = await startEgressProxy({ server: "bench", rules: [rule], socketPath: join(tmp, "egress.sock"), limits: { maxConnections: 64 } });

const args = JSON.stringify({ host: "127.0.0.17", port, bigBytes: BIG, small: SMALL });
const client = join(root, "bench/egress-client.mjs");
// `handover`: the agent hands its listeners to the proxy over Node's IPC channel (as the
// bubblewrap backend does), so only the proxy relays; without it the agent relays too.
const run = (argv, env, handover = false) =>
  new Promise((res, rej) => {
    const c = spawn(argv[0], argv.slice(1), { env, stdio: ["ignore", "pipe", "inherit", ...(handover ? ["ipc"] : [])] });
    if (handover) receiveListeners(c, plan.pins, (listener, pin) => proxy.adopt(listener, pin), new Logger({ level: "silent" }));
    let out = "";
    c.stdout.on("data", (d) => (out += d));
    c.once("exit", (code) => (code === 0 ? res(JSON.parse(out)) : rej(new Error(`${argv[0]} exited with ${code}`))));
  });

const plan = buildAgentPlan({ name: "bench", network: { mode: "allowlist", hosts: [rule] } }, { agentEntry: "/run/nucleus/agent/main.js", socketPathInSandbox: "/run/nucleus/egress.sock" });
writeFileSync(join(tmp, "hosts"), plan.hostsFile);
const sandboxed = [
  "bwrap", "--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session",
  "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run",
  "--ro-bind", join(tmp, "egress.sock"), "/run/nucleus/egress.sock",
  "--ro-bind", join(root, "dist/agent"), "/run/nucleus/agent",
  "--ro-bind", join(root, "package.json"), "/run/nucleus/package.json",
  "--ro-bind", join(tmp, "hosts"), "/etc/hosts",
  "--ro-bind", client, "/run/bench-client.mjs",
  ...plan.argvPrefix, process.execPath, "/run/bench-client.mjs", args,
];

const ROUNDS = Number(process.env.EGRESS_BENCH_ROUNDS ?? 3);
const median = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
try {
  // Interleaved rounds, medians: this machine is shared and noisy.
  const d = [];
  const p = [];
  const h = [];
  for (let i = 0; i < ROUNDS; i++) {
    d.push(await run([process.execPath, client, args], { PATH: process.env.PATH }));
    p.push(await run(sandboxed, { PATH: process.env.PATH, ...plan.env }));
    h.push(await run(sandboxed, { PATH: process.env.PATH, ...plan.env }, true));
  }
  if ([...d, ...p, ...h].some((r) => r.bigBytes < BIG)) throw new Error("a download came back short");
  const mibps = (rs) => median(rs.map((r) => r.bigBytes / 1048576 / (r.bigMs / 1000)));
  const med = (rs, k) => median(rs.map((r) => r[k]));
  const f = (n) => n.toFixed(2);
  console.log(`egress benchmark (loopback, median of ${ROUNDS} interleaved rounds)`);
  console.log("  relayed:  sandboxed client → agent → unix socket → proxy → server (two relays)");
  console.log("  handover: sandboxed client → proxy (listening in the sandbox, handed over by the agent) → server (one relay; what nucleus does)");
  for (const [name, rs] of [["relayed", p], ["handover", h]]) {
    console.log(`  ${name.padEnd(8)}  100 MiB download   direct ${f(mibps(d))} MiB/s   via proxy ${f(mibps(rs))} MiB/s   ratio ${f(mibps(rs) / mibps(d))} (goal ≥ 0.80)`);
    console.log(`  ${name.padEnd(8)}  ${SMALL} new connections, median   direct ${f(med(d, "smallMedianMs"))} ms   via proxy ${f(med(rs, "smallMedianMs"))} ms   added ${f(med(rs, "smallMedianMs") - med(d, "smallMedianMs"))} ms (goal ≤ 2 ms)`);
    console.log(`  ${name.padEnd(8)}  ${SMALL} new connections, p90      direct ${f(med(d, "smallP90Ms"))} ms   via proxy ${f(med(rs, "smallP90Ms"))} ms`);
  }
} finally {
  await proxy.close();
  target.kill("SIGTERM");
  rmSync(tmp, { recursive: true, force: true });
}
