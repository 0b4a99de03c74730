// Benchmark client for bench/egress.mjs. Runs either on the host (direct) or
// inside the sandbox (through the agent and the proxy, via HTTP_PROXY).
// argv[2]: JSON { host, port, bigBytes, small }. Prints one JSON line.
import { connect } from "node:net";

const cfg = JSON.parse(process.argv[2]);
const proxy = process.env.HTTP_PROXY ? new URL(process.env.HTTP_PROXY) : null;

/** One request on a new connection; resolves with [bytes, ms]. */
function request(path) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const target = proxy ? { host: proxy.hostname, port: Number(proxy.port) } : { host: cfg.host, port: cfg.port };
    const uri = proxy ? `http://${cfg.host}:${cfg.port}${path}` : path;
    const s = connect(target, () => s.write(`GET ${uri} HTTP/1.1\r\nHost: ${cfg.host}:${cfg.port}\r\nConnection: close\r\n\r\n`));
    let bytes = 0;
    s.on("data", (d) => (bytes += d.length));
    s.on("error", reject);
    s.on("close", () => resolve([bytes, Number(process.hrtime.bigint() - t0) / 1e6]));
  });
}

const [bigBytes, bigMs] = await request("/big");
const lat = [];
for (let i = 0; i < cfg.small; i++) lat.push((await request("/small"))[1]);
lat.sort((a, b) => a - b);
process.stdout.write(JSON.stringify({ bigBytes, bigMs, smallMedianMs: lat[lat.length >> 1], smallP90Ms: lat[Math.floor(lat.length * 0.9)] }) + "\n", () => process.exit(0));
