// The TLS server name check against a client that pipelines: a ClientHello for
// the allowed name, then (in the same write) a ChangeCipherSpec and a second
// ClientHello for another name, hoping the second goes upstream unjudged while
// the server answers the first with a HelloRetryRequest. Only the judged record
// may go ahead; the rest is judged as the retried ClientHello and refused.
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEgressProxy } from "../../src/egress/proxy.js";
import type { EgressEvent, EgressProxy } from "../../src/egress/types.js";
import { captureClientHello } from "../unit/egress/tls-hello.js";
import { rules } from "../unit/policy/egress-rule-helper.js";

// RFC 8446 §4.1.3: the ServerHello random that marks a HelloRetryRequest.
const HRR_RANDOM = Buffer.from("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c", "hex");
let tmp: string;
let upstream: Server;
let port: number;
let proxy: EgressProxy;
const events: EgressEvent[] = [];
let received = Buffer.alloc(0);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "nucleus-sni-pipe-"));
  // A TLS server stand-in that answers any first bytes with a HelloRetryRequest and records all it gets.
  upstream = createServer((s) => {
    let answered = false;
    s.on("data", (d: Buffer) => {
      received = Buffer.concat([received, d]);
      if (answered) return;
      answered = true;
      s.write(Buffer.concat([Buffer.from([0x16, 3, 3, 0, 60, 2, 0, 0, 56, 3, 3]), HRR_RANDOM, Buffer.alloc(24)]));
    });
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.17", r));
  port = (upstream.address() as AddressInfo).port;
  proxy = await startEgressProxy({
    server: "sni-pipe",
    rules: rules(`allowed.test:${port}`),
    socketPath: join(tmp, "egress.sock"),
    resolver: async () => ["127.0.0.17"],
    audit: (e) => void events.push(e),
    insecureTestPrivateRanges: ["127.0.0.16/28"],
    limits: { headerTimeoutMs: 2000 },
  });
});

afterAll(async () => {
  await proxy.close();
  upstream.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe("TLS server name check, pipelined ClientHellos", () => {
  it("sends only the judged ClientHello ahead and refuses a second one for another name", async () => {
    const first = await captureClientHello({ servername: "allowed.test" });
    const second = await captureClientHello({ servername: "other.test" });
    const ccs = Buffer.from([0x14, 3, 3, 0, 1, 1]);
    const client: Socket = connect(proxy.socketPath, () => client.write(`CONNECT allowed.test:${port} HTTP/1.1\r\nHost: allowed.test\r\n\r\n`));
    client.on("error", () => undefined);
    let head = Buffer.alloc(0);
    let sent = false;
    client.on("data", (d: Buffer) => {
      head = Buffer.concat([head, d]);
      if (!sent && head.includes("\r\n\r\n")) {
        sent = true;
        client.write(Buffer.concat([first, ccs, second]));
      }
    });
    await expect.poll(() => events.find((e) => !e.allowed), { timeout: 5_000 }).toBeTruthy();
    expect(events.find((e) => !e.allowed)).toMatchObject({
      host: "allowed.test",
      reason: "TLS server name other.test does not match CONNECT host allowed.test (in the ClientHello after a HelloRetryRequest)",
    });
    // The server only ever saw the judged ClientHello.
    expect(received.equals(first)).toBe(true);
    expect(received.includes(Buffer.from("other.test"))).toBe(false);
    client.destroy();
  });
});
