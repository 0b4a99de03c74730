// The gateway's side of the listener handover (src/sandbox/bubblewrap/egress-handover.ts)
// against a real child process on a real Node IPC channel: listeners the plan expects
// are adopted and the child hears so; anything else ends the channel unadopted.
import { fork } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ADOPTED, LISTENER, SENT } from "../../../src/agent/handover.js";
import { receiveListeners } from "../../../src/sandbox/bubblewrap/egress-handover.js";
import { Logger } from "../../../src/log.js";

const dir = mkdtempSync(join(tmpdir(), "nucleus-handover-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A stand-in agent: listens on loopback, sends each listener with the given pin, then SENT,
// and prints whether the gateway adopted them.
const agent = join(dir, "agent.mjs");
writeFileSync(
  agent,
  `import { createServer } from "node:net";
const pins = JSON.parse(process.argv[2]);
const listen = () => new Promise((r) => { const s = createServer(); s.listen(0, "127.0.0.1", () => r(s)); });
const send = (m, h) => new Promise((r, j) => process.send(m, h, {}, (e) => (e ? j(e) : r())));
process.on("message", (m) => { if (m && m.type === ${JSON.stringify(ADOPTED)}) { console.log("adopted"); process.exit(0); } });
process.on("disconnect", () => { console.log("disconnected"); process.exit(0); });
try {
  for (const pin of pins) await send({ type: ${JSON.stringify(LISTENER)}, pin }, await listen());
  await send({ type: ${JSON.stringify(SENT)} });
} catch {
  // The gateway ended the channel: "disconnect" follows.
}
`,
);

async function handOver(sent: Array<{ host: string; port: number } | null>, planned: Array<{ host: string; port: number }>) {
  const child = fork(agent, [JSON.stringify(sent)], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  const adopted: Array<{ listener: Server; pin: { host: string; port: number } | null }> = [];
  receiveListeners(child, planned, (listener, pin) => void adopted.push({ listener, pin }), new Logger({ level: "silent" }));
  await new Promise((r) => child.once("exit", r));
  return { out: out.trim(), adopted, connected: child.connected };
}

describe("listener handover, gateway side", () => {
  it("adopts the proxy port and the planned pins, answers, and closes the channel", async () => {
    const r = await handOver([null, { host: "db.test", port: 5432 }], [{ host: "db.test", port: 5432 }]);
    expect(r.out).toBe("adopted");
    expect(r.adopted.map((a) => a.pin)).toEqual([null, { host: "db.test", port: 5432 }]);
    expect(r.connected).toBe(false);
    // The adopted listener still accepts after the agent is gone: it is the gateway's now.
    const port = (r.adopted[0]!.listener.address() as { port: number }).port;
    const accepted = new Promise((res) => r.adopted[0]!.listener.once("connection", (s) => (s.destroy(), res(true))));
    const c = connect(port, "127.0.0.1");
    c.on("error", () => undefined);
    expect(await accepted).toBe(true);
    c.destroy();
    for (const a of r.adopted) a.listener.close();
  });

  it("adopts nothing and ends the channel unanswered on a pin the plan does not hold (the agent then relays on all of them)", async () => {
    const r = await handOver([null, { host: "evil.test", port: 22 }], [{ host: "db.test", port: 5432 }]);
    expect(r.out).toBe("disconnected");
    expect(r.adopted).toEqual([]);
  });

  it("survives a sender that writes two unexpected messages in one go", async () => {
    const bad = join(dir, "bad.mjs");
    writeFileSync(bad, `process.channel.unref(); process.send({ type: "bogus" }); process.send({ type: "bogus2" }); process.on("disconnect", () => process.exit(0)); setTimeout(() => process.exit(0), 5000);\n`);
    const child = fork(bad, [], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
    const adopted: unknown[] = [];
    receiveListeners(child, [], (l) => void adopted.push(l), new Logger({ level: "silent" }));
    await new Promise((r) => child.once("exit", r));
    await new Promise((r) => setTimeout(r, 100));
    expect(adopted).toEqual([]);
    expect(child.connected).toBe(false);
  });

  it("ends the channel unanswered when no proxy port came", async () => {
    const r = await handOver([], []);
    expect(r.out).toBe("disconnected");
    expect(r.adopted).toEqual([]);
  });
});
