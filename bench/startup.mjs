// bench/startup: launch → `initialize` result and peak RSS, bare (the
// unsandboxed backend: a plain child process with a cleared environment) vs
// the bubblewrap backend, same server, same run. Prints medians, p90s and
// ratios. Usage: npm run build && node bench/startup.mjs [runs=20] [server.js]
// Not a test: nothing here asserts a time.
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { dirname, basename } from "node:path";
import { UnsandboxedBackend } from "../dist/sandbox/unsandboxed.js";
import { BubblewrapBackend } from "../dist/sandbox/bubblewrap/backend.js";
import { Logger } from "../dist/log.js";

const require = createRequire(import.meta.url);
const runs = Number(process.argv[2] ?? 20);
const server = process.argv[3] ?? require.resolve("@modelcontextprotocol/server-everything/dist/index.js");
let nm = dirname(server);
while (basename(nm) !== "node_modules" && nm !== "/") nm = dirname(nm);
if (nm === "/") nm = dirname(server); // a server outside node_modules: its own folder
const log = new Logger({ level: "silent" });
// The cpu limit is a cgroup quota: at 1 CPU it throttles Node's multi-threaded startup, which measures the
// limit rather than the sandbox. Default: every CPU of the machine; BENCH_CPUS=1 measures the default limit.
const cpus = Number(process.env.BENCH_CPUS ?? availableParallelism());

function spec(name, insecure) {
  return Object.freeze({
    name, profile: null, backend: "auto",
    launch: { argv: [process.execPath, server], args: [], package: null, cwd: null, env: {}, codeDirs: [nm] },
    paths: [], network: { mode: "none" }, secrets: [],
    limits: { memoryMiB: 512, cpus, pids: 256, tmpMiB: 64, explicit: { memory: false, cpus: false, pids: false } },
    tools: { allow: [], deny: [] }, timeouts: { startupMs: 30000, requestMs: 60000, shutdownGraceMs: 2000 },
    lazy: false, insecureUnsandboxed: insecure, redactResults: true,
  });
}

/** Sum of VmHWM (peak RSS) over `pid` and all its descendants, in KiB. */
function treePeakKiB(root) {
  const children = new Map();
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(p));
    } catch { /* gone */ }
  }
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    try {
      const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      total += Number(m?.[1] ?? 0);
    } catch { /* gone */ }
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

async function once(backend, s) {
  const t0 = process.hrtime.bigint();
  const sb = await backend.launch(s, { secrets: new Map(), log, egressSocket: null });
  const init = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "0" } } };
  let buf = "";
  const done = new Promise((res, rej) => {
    sb.stdout.on("data", (d) => {
      buf += d;
      if (buf.includes('"id":1')) res();
    });
    sb.exited.then((e) => rej(new Error(e.message)));
  });
  sb.stdin.write(JSON.stringify(init) + "\n");
  await done;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  await new Promise((r) => setTimeout(r, 300)); // let the server settle before reading its peak
  const kib = treePeakKiB(Number(sb.details.pid));
  await sb.stop(2000);
  return { ms, kib };
}

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const median = (xs) => pct(xs, 50);

const bare = new UnsandboxedBackend();
const bw = new BubblewrapBackend();
const results = { bare: [], bubblewrap: [] };
await once(bare, spec("warm", true)); // warm the page cache
await once(bw, spec("warm", false));
for (let i = 0; i < runs; i++) {
  // Interleave so that machine noise hits both alike.
  results.bare.push(await once(bare, spec("bench", true)));
  results.bubblewrap.push(await once(bw, spec("bench", false)));
}
const row = (name, r) => {
  const ms = r.map((x) => x.ms), kib = r.map((x) => x.kib);
  return { name, medianMs: median(ms), p90Ms: pct(ms, 90), peakRssMiB: median(kib) / 1024 };
};
const a = row("bare", results.bare), b = row("bubblewrap", results.bubblewrap);
const f = (n) => n.toFixed(1);
console.log(`server: ${server}`);
console.log(`cpu limit: ${cpus} CPU(s) of ${availableParallelism()}`);
console.log(`runs: ${runs} each, interleaved; launch → initialize result; peak RSS = sum of VmHWM over the process tree`);
for (const r of [a, b]) console.log(`${r.name.padEnd(11)} median ${f(r.medianMs)} ms  p90 ${f(r.p90Ms)} ms  peak RSS ${f(r.peakRssMiB)} MiB`);
console.log(`added: median +${f(b.medianMs - a.medianMs)} ms (x${(b.medianMs / a.medianMs).toFixed(2)}), p90 +${f(b.p90Ms - a.p90Ms)} ms (x${(b.p90Ms / a.p90Ms).toFixed(2)}), peak RSS +${f(b.peakRssMiB - a.peakRssMiB)} MiB (x${(b.peakRssMiB / a.peakRssMiB).toFixed(2)})`);
console.log(`goal (issue 3): ≤ 20 ms added at the median, ≤ 5 MiB extra RSS → ${b.medianMs - a.medianMs <= 20 ? "met" : "NOT met"} / ${b.peakRssMiB - a.peakRssMiB <= 5 ? "met" : "NOT met"}`);
