#!/usr/bin/env node
// bench/gateway: the cost of the gateway itself. In one run, for
// server-everything's `echo`: direct stdio vs through `nucleus run` vs through
// `nucleus serve` (and a byte relay, the floor of any proxy process) — p50/p99
// latency of sequential calls, throughput with 16
// calls in flight, and time from spawn to the first call's result.
// The gateway runs the server with the `unsandboxed` backend here so that only
// the gateway's own overhead is measured (sandbox costs: bench/startup, bench/vm).
// Usage: npm run build && node bench/gateway.mjs [--calls N] [--rounds R]
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const { values } = parseArgs({ options: { calls: { type: "string", default: "2000" }, rounds: { type: "string", default: "3" } } });
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);
const require = createRequire(import.meta.url);
const everything = require.resolve("@modelcontextprotocol/server-everything/dist/index.js");
const nucleus = fileURLToPath(new URL("../bin/nucleus", import.meta.url));

const dir = mkdtempSync(join(tmpdir(), "nucleus-bench-"));
const config = join(dir, "nucleus.toml");
writeFileSync(
  config,
  `[gateway]\nbackend = "unsandboxed"\n\n[servers.everything]\ncommand = [${JSON.stringify(process.execPath)}, ${JSON.stringify(everything)}]\ninsecure_unsandboxed = true\n`,
);

// The floor of any proxy process: a byte relay that parses nothing (one more
// process and two more pipe hops, nothing else). It shows how much of the
// gateway's cost is the hop itself on this machine.
const relay = join(dir, "relay.mjs");
writeFileSync(
  relay,
  `import { spawn } from "node:child_process";\nconst c = spawn(process.execPath, [${JSON.stringify(everything)}], { stdio: ["pipe", "pipe", "ignore"] });\nprocess.stdin.pipe(c.stdin);\nc.stdout.pipe(process.stdout);\nc.on("exit", () => process.exit(0));\n`,
);

const modes = {
  direct: { command: process.execPath, args: [everything], tool: "echo" },
  "byte relay": { command: process.execPath, args: [relay], tool: "echo" },
  "nucleus run": { command: process.execPath, args: [nucleus, "--log-level", "error", "-c", config, "run", "everything"], tool: "echo" },
  "nucleus serve": { command: process.execPath, args: [nucleus, "--log-level", "error", "-c", config, "serve"], tool: "everything__echo" },
};

// CPU time (user + system, in clock ticks of 10 ms) of the process the client
// spawned: for the relay and gateway modes, the middle process itself. Unlike
// latency, this hardly moves with the load on the machine.
function cpuTicks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function measure(mode) {
  const m = modes[mode];
  const t0 = performance.now();
  const transport = new StdioClientTransport({ command: m.command, args: m.args, stderr: "ignore" });
  const client = new Client({ name: "bench", version: "1" });
  await client.connect(transport);
  await client.callTool({ name: m.tool, arguments: { message: "warm" } });
  const firstCall = performance.now() - t0;
  for (let i = 0; i < 200; i++) await client.callTool({ name: m.tool, arguments: { message: "w" } });
  const cpu0 = cpuTicks(transport.pid);
  const lat = [];
  for (let i = 0; i < CALLS; i++) {
    const s = performance.now();
    await client.callTool({ name: m.tool, arguments: { message: `m${i}` } });
    lat.push(performance.now() - s);
  }
  lat.sort((a, b) => a - b);
  const inFlight = 16;
  let next = 0;
  const tp0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < CALLS) {
        next++;
        await client.callTool({ name: m.tool, arguments: { message: "t" } });
      }
    }),
  );
  const throughput = CALLS / ((performance.now() - tp0) / 1000);
  const cpuUs = ((cpuTicks(transport.pid) - cpu0) * 10_000) / (2 * CALLS);
  await client.close();
  return { p50: pct(lat, 50), p99: pct(lat, 99), throughput, firstCall, cpuUs };
}

const results = Object.fromEntries(Object.keys(modes).map((m) => [m, []]));
try {
  // Interleave modes across rounds so machine noise hits all of them alike.
  for (let r = 0; r < ROUNDS; r++) for (const mode of Object.keys(modes)) results[mode].push(await measure(mode));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = {};
for (const [mode, rs] of Object.entries(results)) {
  summary[mode] = {
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    throughput: median(rs.map((r) => r.throughput)),
    firstCall: median(rs.map((r) => r.firstCall)),
    cpuUs: median(rs.map((r) => r.cpuUs)),
  };
}
const d = summary.direct;
console.log(`bench/gateway — server-everything echo, ${CALLS} calls × ${ROUNDS} rounds (medians of rounds), node ${process.version}`);
console.log("mode            p50 ms   p99 ms   calls/s (16 in flight)   first call ms   p50 ratio   throughput ratio   CPU µs/call (middle process)");
for (const [mode, s] of Object.entries(summary)) {
  const cpu = mode === "direct" ? `(the server: ${s.cpuUs.toFixed(0)})` : s.cpuUs.toFixed(0);
  console.log(
    `${mode.padEnd(14)}  ${s.p50.toFixed(3).padStart(6)}   ${s.p99.toFixed(3).padStart(6)}   ${s.throughput.toFixed(0).padStart(22)}   ${s.firstCall.toFixed(0).padStart(13)}   ${(s.p50 / d.p50).toFixed(2).padStart(9)}   ${(s.throughput / d.throughput).toFixed(2).padStart(16)}   ${cpu.padStart(28)}`,
  );
}
console.log("goals: p50 ratio ≤ 1.15, throughput ratio ≥ 0.90 (against direct); `byte relay` is the floor of any extra process");
