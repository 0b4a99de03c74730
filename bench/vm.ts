// bench/vm: launch → `initialize` result, and `tools/call` round trip, for
// server-everything in a plain bubblewrap sandbox vs a QEMU microVM (KVM when
// usable, TCG otherwise), with the peak host RSS of each sandbox's process tree.
// Prints ratios against bubblewrap measured in the same run, appends to bench/RESULTS.md.
// Run: npx vite-node bench/vm.ts [--runs N] [--calls N]   (needs a guest image: `nucleus image build`)

import { appendFileSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus } from "node:os";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Logger } from "../src/log.js";
import type { Sandbox } from "../src/sandbox/backend.js";
import { buildImage } from "../src/sandbox/microvm/image/build.js";
import { QemuBackend } from "../src/sandbox/microvm/qemu/backend.js";
import { chooseAccel } from "../src/sandbox/microvm/qemu/host.js";
import { spawnSandbox } from "../src/sandbox/process.js";
import { whichSync } from "../src/sandbox/which.js";
import { connectToSandbox } from "../test/helpers/mcp.js";
import { makeSpec } from "../test/helpers/spec.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, calls: { type: "string", default: "50" } } });
const runs = Number(values.runs);
const calls = Number(values.calls);
const require = createRequire(import.meta.url);
const everything = require.resolve("@modelcontextprotocol/server-everything/dist/index.js");
const nodeModules = resolve(dirname(everything), "../../..");
const node = process.execPath;
const log = new Logger({ level: "silent" });

/** Sum of VmHWM (peak RSS) over `pid` and all its descendants, in KiB. */
function treePeakKiB(pid: number): number {
  const children = new Map<number, number[]>();
  for (const p of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(p)]);
    } catch {
      /* gone */
    }
  }
  let total = 0;
  const walk = (p: number) => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) total += Number(m[1]);
    } catch {
      /* gone */
    }
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return total;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Sample {
  initMs: number;
  callMs: number;
  peakMiB: number;
}

async function measure(launch: () => Promise<Sandbox>): Promise<Sample> {
  const t0 = performance.now();
  const sandbox = await launch();
  const client = await connectToSandbox(sandbox);
  const initMs = performance.now() - t0;
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await client.callTool({ name: "echo", arguments: { message: `m${i}` } });
    times.push(performance.now() - t);
  }
  const peakMiB = treePeakKiB(Number(sandbox.details.pid)) / 1024;
  await client.close().catch(() => {});
  await sandbox.stop(3000);
  return { initMs, callMs: median(times), peakMiB };
}

function bwrapLaunch(): Promise<Sandbox> {
  const bwrap = whichSync("bwrap");
  if (!bwrap) throw new Error("bwrap is not installed");
  // A plain bubblewrap sandbox (the bubblewrap backend's own argv may add more).
  const argv = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin", "--ro-bind", nodeModules, nodeModules, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--", node, everything];
  return spawnSandbox({ serverName: "bench", backend: "bubblewrap", argv, env: { PATH: "/usr/bin:/bin", HOME: "/tmp" }, defaultGraceMs: 3000 });
}

async function main(): Promise<void> {
  await buildImage({ onProgress: () => {} });
  const qemu = new QemuBackend();
  const spec = makeSpec({ name: "bench", argv: [node, everything], launch: { argv: [node, everything], args: [], package: null, cwd: null, env: {}, codeDirs: [nodeModules] } });
  const accel = chooseAccel();
  const results: Record<string, Sample[]> = { bubblewrap: [], [`qemu-${accel.accel}`]: [] };
  for (let i = 0; i < runs; i++) {
    results.bubblewrap!.push(await measure(bwrapLaunch));
    results[`qemu-${accel.accel}`]!.push(await measure(() => qemu.launch(spec, { secrets: new Map(), log, egressSocket: null })));
  }
  const base = { init: median(results.bubblewrap!.map((s) => s.initMs)), call: median(results.bubblewrap!.map((s) => s.callMs)), peak: median(results.bubblewrap!.map((s) => s.peakMiB)) };
  const machine = `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, QEMU ${accel.accel.toUpperCase()} (${accel.reason})`;
  const lines = [
    `### bench/vm — ${new Date().toISOString().slice(0, 16)}Z — ${machine}`,
    "",
    `server-everything; ${runs} launches each, medians; \`tools/call\` echo, median of ${calls} sequential calls; peak RSS = sum of VmHWM over the sandbox's host process tree.`,
    "",
    "| sandbox | launch → initialize | ratio | tools/call | ratio | peak host RSS | ratio |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const [name, samples] of Object.entries(results)) {
    const init = median(samples.map((s) => s.initMs));
    const call = median(samples.map((s) => s.callMs));
    const peak = median(samples.map((s) => s.peakMiB));
    lines.push(`| ${name} | ${init.toFixed(0)} ms | ${(init / base.init).toFixed(1)}× | ${call.toFixed(2)} ms | ${(call / base.call).toFixed(1)}× | ${peak.toFixed(0)} MiB | ${(peak / base.peak).toFixed(1)}× |`);
  }
  const text = lines.join("\n") + "\n";
  process.stdout.write(text);
  appendFileSync(resolve(dirname(new URL(import.meta.url).pathname), "RESULTS.md"), "\n" + text);
}

await main();
