// The TLS server name check through the real proxy: a real HTTPS server whose
// certificate covers two names on one address (a shared CDN edge in miniature),
// only one of them allowed. A tunnel opened to the allowed name that asks TLS for
// the other is closed before a byte reaches the server, audited and logged once.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttps, type Server } from "node:https";
import { connect, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEgressProxy } from "../../src/egress/proxy.js";
import type { EgressEvent, EgressProxy } from "../../src/egress/types.js";
import { Logger } from "../../src/log.js";
import { whichSync } from "../../src/sandbox/which.js";
import { isHelloRetryRequest, SERVER_HELLO_PREFIX_BYTES } from "../../src/egress/tls-sni.js";
import { captureClientHello } from "../unit/egress/tls-hello.js";
import { rules } from "../unit/policy/egress-rule-helper.js";

const hasOpenssl = whichSync("openssl") !== null;
let tmp: string;
let https: Server;
let port: number;
/** Speaks TLS 1.3 with P-256 only: a client offering an X25519 key share gets a HelloRetryRequest. */
let retrying: Server;
let retryPort: number;
let proxy: EgressProxy;
let ca: Buffer;
const events: EgressEvent[] = [];
const warnings: string[] = [];
/** The SNI of every TLS session the HTTPS server completed. */
const served: (string | false)[] = [];

describe.skipIf(!hasOpenssl)(`TLS server name check through the proxy${hasOpenssl ? "" : " (skipped: needs openssl)"}`, () => {
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), "nucleus-egress-sni-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=allowed.test", "-addext", "subjectAltName=DNS:allowed.test,DNS:other.test", "-keyout", join(tmp, "key.pem"), "-out", join(tmp, "cert.pem")], { stdio: "ignore" });
    ca = readFileSync(join(tmp, "cert.pem"));
    https = createHttps({ key: readFileSync(join(tmp, "key.pem")), cert: ca }, (req, res) => res.end(`hello ${req.headers.host}`));
    https.on("secureConnection", (s) => served.push((s as unknown as { servername: string | false }).servername));
    await new Promise<void>((r) => https.listen(0, "127.0.0.17", r));
    port = (https.address() as AddressInfo).port;
    retrying = createHttps({ key: readFileSync(join(tmp, "key.pem")), cert: ca, ecdhCurve: "P-256", minVersion: "TLSv1.3" }, (req, res) => res.end(`retried ${req.headers.host}`));
    retrying.on("secureConnection", (s) => served.push((s as unknown as { servername: string | false }).servername));
    await new Promise<void>((r) => retrying.listen(0, "127.0.0.17", r));
    retryPort = (retrying.address() as AddressInfo).port;
    proxy = await startEgressProxy({
      server: "sni",
      rules: rules(`allowed.test:${port}`, `127.0.0.17:${port}`, `allowed.test:${retryPort}`),
      socketPath: join(tmp, "egress.sock"),
      // Both names on one address, as on a CDN; only allowed.test has a rule.
      resolver: async (n) => (n === "allowed.test" || n === "other.test" ? ["127.0.0.17"] : []),
      audit: (e) => events.push(e),
      log: new Logger({ level: "warn", sink: { write: (l) => warnings.push(l) } }),
      insecureTestPrivateRanges: ["127.0.0.16/28"],
      limits: { headerTimeoutMs: 2000 },
    });
  });

  afterAll(async () => {
    await proxy?.close();
    for (const server of [https, retrying]) {
      server?.closeAllConnections();
      await new Promise((r) => server?.close(r));
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /**
   * Open a tunnel with `hello` (CONNECT or SOCKS5 bytes); once `replied(all bytes so far)`
   * says the proxy's answer is complete, speak TLS in it with `servername`.
   */
  function httpsThrough(hello: Buffer, replied: ((d: Buffer) => "wait" | "ok" | "no") | null, servername: string | undefined): Promise<{ ok: boolean; out: string }> {
    return new Promise((resolve) => {
      const s: Socket = connect(proxy.socketPath, () => {
        s.write(hello);
        if (!replied) startTls(); // a pin line gets no answer
      });
      s.on("error", (e) => resolve({ ok: false, out: e.message }));
      let head = Buffer.alloc(0);
      const onHead = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const state = replied!(head);
        if (state === "wait") return;
        s.off("data", onHead);
        if (state === "no") return resolve({ ok: false, out: head.toString("latin1") });
        startTls();
      };
      const startTls = () => {
        const t = tlsConnect({ socket: s, servername, ca, checkServerIdentity: () => undefined }, () =>
          t.end(`GET / HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n`),
        );
        const chunks: Buffer[] = [];
        t.on("data", (c) => chunks.push(c));
        t.on("error", (e) => resolve({ ok: false, out: e.message }));
        t.on("close", () => resolve({ ok: chunks.length > 0, out: Buffer.concat(chunks).toString() }));
      };
      if (replied) s.on("data", onHead);
    });
  }
  const viaConnect = (servername?: string, to = port) =>
    httpsThrough(Buffer.from(`CONNECT allowed.test:${to} HTTP/1.1\r\nHost: allowed.test\r\n\r\n`), (d) => {
      if (!d.includes("\r\n\r\n")) return "wait";
      return d.toString("latin1").startsWith("HTTP/1.1 200") ? "ok" : "no";
    }, servername);
  const viaPin = (servername?: string) =>
    httpsThrough(Buffer.from(`NUCLEUS-PIN allowed.test ${port}\n`), null, servername);
  const viaConnectToIp = (servername?: string) =>
    httpsThrough(Buffer.from(`CONNECT 127.0.0.17:${port} HTTP/1.1\r\n\r\n`), (d) => (d.includes("\r\n\r\n") ? (d.toString("latin1").startsWith("HTTP/1.1 200") ? "ok" : "no") : "wait"), servername);
  const viaSocks = (servername?: string) => {
    const name = Buffer.from("allowed.test");
    const req = Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]);
    // Greeting reply (2 bytes), then the request reply (10 bytes, IPv4 form).
    return httpsThrough(req, (d) => (d.length < 12 ? "wait" : d[1] === 0 && d[3] === 0 ? "ok" : "no"), servername);
  };

  it("lets TLS through when the server name is the CONNECT host, or absent", async () => {
    const named = await viaConnect("allowed.test");
    expect(named).toMatchObject({ ok: true });
    expect(named.out).toMatch(/^HTTP\/1\.1 200[\s\S]*hello allowed\.test$/);
    expect(await viaConnect("ALLOWED.test.")).toMatchObject({ ok: true });
    expect((await viaConnect(undefined)).out).toContain("hello allowed.test");
    await waitFor(() => events.length === 3);
    expect(events.every((e) => e.allowed && e.host === "allowed.test" && e.bytesUp > 200 && e.bytesDown > 200)).toBe(true);
  });

  it("closes a CONNECT tunnel whose TLS asks for another name, before the server sees it, and audits it", async () => {
    const before = served.length;
    const from = events.length;
    const r = await viaConnect("other.test");
    expect(r.ok).toBe(false);
    await waitFor(() => events.length === from + 1);
    expect(events.at(-1)).toMatchObject({
      type: "egress", server: "sni", protocol: "connect", host: "allowed.test", port, address: "127.0.0.17",
      allowed: false, rule: `allowed.test:${port}`, reason: "TLS server name other.test does not match CONNECT host allowed.test", bytesUp: 0,
    });
    expect(served.slice(before)).toEqual([]);
    expect(served).not.toContain("other.test");
  });

  it("does the same for SOCKS5 with a domain name, and warns once per destination", async () => {
    const from = events.length;
    expect((await viaSocks("other.test")).ok).toBe(false);
    expect((await viaConnect("other.test")).ok).toBe(false);
    await waitFor(() => events.length === from + 2);
    expect(events.at(-2)).toMatchObject({ protocol: "socks5", allowed: false, reason: "TLS server name other.test does not match SOCKS5 host allowed.test" });
    expect(served).not.toContain("other.test");
    const sniWarnings = warnings.filter((l) => l.includes("TLS server name"));
    expect(sniWarnings).toHaveLength(1);
    expect(sniWarnings[0]).toContain("egress: TLS server name other.test does not match CONNECT host allowed.test; the tunnel was closed");
  });

  it("checks a pinned name the same way, and leaves tunnels to IP literals alone", async () => {
    const from = events.length;
    expect((await viaPin("allowed.test")).out).toContain("hello allowed.test");
    expect((await viaPin("other.test")).ok).toBe(false);
    // An IP rule admits an address, not a name: there is no host to compare with.
    expect((await viaConnectToIp("other.test")).out).toContain("hello allowed.test");
    await waitFor(() => events.length === from + 3);
    expect(events.slice(from).map((e) => [e.protocol, e.host, e.allowed])).toEqual(expect.arrayContaining([
      ["pin", "allowed.test", true],
      ["pin", "allowed.test", false],
      ["connect", "127.0.0.17", true],
    ]));
    expect(events.slice(from).find((e) => !e.allowed)!.reason).toBe("TLS server name other.test does not match pinned host allowed.test");
    expect(served).toContain("other.test"); // the IP-literal tunnel reached the server with that name
  });

  it("refuses a record slipped in before the ClientHello (servers that skip it would read the hello after it)", async () => {
    const from = events.length;
    const servedBefore = served.length;
    const hello = await captureClientHello({ servername: "other.test" });
    const out = await new Promise<string>((resolve) => {
      const s = connect(proxy.socketPath, () => s.write(`CONNECT allowed.test:${port} HTTP/1.1\r\n\r\n`));
      const chunks: Buffer[] = [];
      s.on("data", (d: Buffer) => {
        chunks.push(d);
        // After the 200, a warning alert (user_canceled), then the hello for the other name.
        if (chunks.length === 1) s.write(Buffer.concat([Buffer.from([0x15, 3, 1, 0, 2, 1, 90]), hello]));
      });
      s.on("error", () => {});
      s.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    });
    expect(out).toBe("HTTP/1.1 200 Connection Established\r\n\r\n");
    await waitFor(() => events.length === from + 1);
    expect(events.at(-1)).toMatchObject({ allowed: false, host: "allowed.test", bytesUp: 0, reason: "malformed TLS ClientHello: a TLS record of type 21 (2 bytes) comes before the ClientHello" });
    expect(served.slice(servedBefore)).toEqual([]);
  });

  it("checks the ClientHello a HelloRetryRequest asks for as well", async () => {
    // A real client through a server that answers with a HelloRetryRequest: still works.
    const ok = await viaConnect("allowed.test", retryPort);
    expect(ok.out).toMatch(/retried allowed\.test$/);
    // A client that asks for the allowed name first, then for another one after the retry.
    const from = events.length;
    const servedBefore = served.length;
    const first = await captureClientHello({ servername: "allowed.test" });
    const second = await captureClientHello({ servername: "other.test" });
    const seen = await new Promise<{ retry: boolean; closed: boolean }>((resolve) => {
      const s = connect(proxy.socketPath, () => s.write(`CONNECT allowed.test:${retryPort} HTTP/1.1\r\n\r\n`));
      let buf = Buffer.alloc(0);
      let step = 0;
      let retry = false;
      s.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (step === 0 && buf.includes("\r\n\r\n")) {
          step = 1;
          buf = buf.subarray(buf.indexOf("\r\n\r\n") + 4);
          s.write(first);
        }
        if (step === 1 && buf.length >= SERVER_HELLO_PREFIX_BYTES) {
          step = 2;
          retry = isHelloRetryRequest(buf);
          s.write(second);
        }
      });
      s.on("error", () => {});
      s.on("close", () => resolve({ retry, closed: true }));
    });
    expect(seen).toEqual({ retry: true, closed: true });
    await waitFor(() => events.length === from + 1);
    expect(events.at(-1)).toMatchObject({
      allowed: false, host: "allowed.test", port: retryPort,
      reason: "TLS server name other.test does not match CONNECT host allowed.test (in the ClientHello after a HelloRetryRequest)",
    });
    expect(events.at(-1)!.bytesUp).toBe(first.length);
    expect(served.slice(servedBefore)).toEqual([]);
  });
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
