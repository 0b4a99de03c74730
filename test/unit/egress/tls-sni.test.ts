// The TLS ClientHello parser on real hellos from node:tls (with and without a
// server name), every truncation, and hellos whose lengths lie; then the
// first-bytes gate on a stream fed in pieces.
import { PassThrough } from "node:stream";
import type { Socket } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { checkTlsServerName, compareServerName, type GateVerdict } from "../../../src/egress/tls-gate.js";
import { isHelloRetryRequest, MAX_CLIENT_HELLO_BYTES, peekClientHello, peekRetriedClientHello, SERVER_HELLO_PREFIX_BYTES } from "../../../src/egress/tls-sni.js";
import { captureClientHello, handshake, helloBody, helloWithSni, record, sniBody } from "./tls-hello.js";

let real: { named: Buffer; bare: Buffer; tls12: Buffer; alpn: Buffer };

beforeAll(async () => {
  real = {
    named: await captureClientHello({ servername: "api.example.com" }),
    bare: await captureClientHello({}),
    tls12: await captureClientHello({ servername: "Legacy.Example.ORG", maxVersion: "TLSv1.2" }),
    alpn: await captureClientHello({ servername: "h2.example.net", ALPNProtocols: ["h2", "http/1.1"] }),
  };
});

describe("peekClientHello on real ClientHellos", () => {
  it("reads the server name node:tls sent, and null when it sent none", () => {
    expect(peekClientHello(real.named)).toMatchObject({ kind: "client-hello", serverName: "api.example.com" });
    expect(peekClientHello(real.bare)).toMatchObject({ kind: "client-hello", serverName: null });
    expect(peekClientHello(real.tls12)).toMatchObject({ kind: "client-hello", serverName: "Legacy.Example.ORG" });
    expect(peekClientHello(real.alpn)).toMatchObject({ kind: "client-hello", serverName: "h2.example.net" });
  });

  it("asks for more at every truncation of a real hello, never guessing", () => {
    const h = real.named;
    for (let n = 0; n < h.length; n++) {
      const p = peekClientHello(h.subarray(0, n));
      expect([n, p.kind]).toEqual([n, "need-more"]);
      if (p.kind === "need-more") expect(p.needed).toBeGreaterThan(n);
    }
  });

  it("looks at the first record only: bytes after it do not matter", () => {
    const after = Buffer.concat([real.named, Buffer.from([0x17, 3, 3, 0, 5, 1, 2, 3, 4, 5])]);
    expect(peekClientHello(after)).toMatchObject({ kind: "client-hello", serverName: "api.example.com" });
  });

  it("refuses a real hello spread over two records", () => {
    const payload = real.named.subarray(5);
    const split = Buffer.concat([record(payload.subarray(0, 40)), record(payload.subarray(40))]);
    const p = peekClientHello(split);
    expect(p.kind).toBe("malformed");
    expect(p.kind === "malformed" && p.reason).toMatch(/does not fit in its first record.*several records are refused/);
  });
});

describe("peekClientHello on other first bytes", () => {
  it.each([
    ["an HTTP request", Buffer.from("GET / HTTP/1.1\r\n")],
    ["a postgres startup/SSLRequest", Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])],
    ["an SSH banner", Buffer.from("SSH-2.0-OpenSSH_9.2\r\n")],
    ["an SSLv2-style hello", Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02])],
    ["a little-endian length prefix that starts with 0x15", Buffer.from([0x15, 0x01, 0, 0, 0x2a, 0, 0, 0])],
    ["application-data-like bytes of another version", Buffer.from([0x17, 0x01, 0x00, 0x01, 0xf4, 9, 9])],
  ])("passes %s as not TLS", (_what, bytes) => {
    expect(peekClientHello(bytes)).toEqual({ kind: "not-tls" });
  });

  it.each([
    ["a warning alert", Buffer.from([0x15, 3, 1, 0, 2, 1, 90])],
    ["a warning alert with a bogus version (Go accepts it)", Buffer.from([0x15, 0, 0, 0, 2, 1, 90])],
    ["a one-byte alert fragment", Buffer.from([0x15, 0, 0, 0, 1, 1])],
    ["a ChangeCipherSpec", Buffer.from([0x14, 3, 3, 0, 1, 1])],
    ["an empty application data record", Buffer.from([0x17, 3, 3, 0, 0])],
    ["a heartbeat", Buffer.from([0x18, 3, 2, 0, 3, 1, 0, 16])],
  ])("refuses %s before the ClientHello (a server could skip it and read the hello after it)", async (_what, prelude) => {
    const p = peekClientHello(Buffer.concat([prelude, await captureClientHello({ servername: "evil.example.net" })]));
    expect(p).toMatchObject({ kind: "malformed", reason: expect.stringMatching(/a TLS record of type \d+ \(\d+ bytes\) comes before the ClientHello/) });
  });

  it("waits for a whole record header when the first byte is a TLS record type", () => {
    expect(peekClientHello(Buffer.from([0x15, 3]))).toEqual({ kind: "need-more", needed: 5 });
  });

  it("waits for the first byte", () => {
    expect(peekClientHello(Buffer.alloc(0))).toEqual({ kind: "need-more", needed: 1 });
  });
});

describe("peekClientHello on lying or odd lengths", () => {
  const body = helloBody({ extensions: [[0, sniBody([[0, "a.test"]])]] });
  const ok = (b: Buffer) => record(handshake(b));
  it.each<[string, Buffer, RegExp]>([
    ["a record over 2^14 bytes", record(Buffer.alloc(0), 16_385), /record length 16385 exceeds 16384/],
    ["an empty record", record(Buffer.alloc(0)), /record is empty/],
    ["a record version that is not TLS", record(handshake(body), undefined, [2, 0]), /version 2\.0 is not TLS/],
    ["a handshake that is not a ClientHello", record(handshake(body, 2)), /type 2, not ClientHello/],
    ["a handshake length past the record", record(handshake(body, 1, body.length + 1)), /does not fit in its first record/],
    ["bytes after the ClientHello", record(Buffer.concat([handshake(body), Buffer.from([0])])), /1 bytes follow the ClientHello/],
    ["a session id over 32 bytes", ok(helloBody({ sessionId: Buffer.alloc(33) })), /session id length 33 exceeds 32/],
    ["an odd cipher suites length", ok(helloBody({ suites: Buffer.from([0x13]) })), /cipher suites length 1/],
    ["no compression method", ok(helloBody({ compression: Buffer.alloc(0) })), /compression methods list is empty/],
    ["a truncated hello body", ok(helloBody({ noExtensions: true }).subarray(0, 50)), /claims \d+ bytes but only \d+ remain/],
    ["an extensions length that lies", ok(Buffer.concat([helloBody({ noExtensions: true }), Buffer.from([0, 9, 0, 0, 0, 1, 0])])), /extensions length 9 does not match the 5 bytes left/],
    ["an extension longer than the block", ok(Buffer.concat([helloBody({ noExtensions: true }), Buffer.from([0, 4, 0, 0, 0, 9])])), /extension 0 claims 9 bytes but only 0 remain/],
    ["a server name list length that lies", ok(helloBody({ extensions: [[0, Buffer.concat([Buffer.from([0, 50]), sniBody([[0, "a.test"]]).subarray(2)])]] })), /server name list length 50 does not match/],
    ["an empty server_name extension", ok(helloBody({ extensions: [[0, Buffer.alloc(0)]] })), /server name list length claims 2 bytes/],
    ["an empty server name list", ok(helloBody({ extensions: [[0, Buffer.from([0, 0])]] })), /server name list is empty/],
    ["a host name length that lies", ok(helloBody({ extensions: [[0, Buffer.from([0, 5, 0, 0, 9, 0x61, 0x62])]] })), /host name claims 9 bytes but only 2 remain/],
    ["two server_name extensions", ok(helloBody({ extensions: [[0, sniBody([[0, "a.test"]])], [0, sniBody([[0, "b.test"]])]] })), /appears twice/],
    ["two host names in one list", ok(helloBody({ extensions: [[0, sniBody([[0, "a.test"], [0, "b.test"]])]] })), /more than one host name/],
    ["a name type other than host_name", ok(helloBody({ extensions: [[0, sniBody([[1, "a.test"]])]] })), /name type 1 is not host_name/],
    ["an empty host name", ok(helloBody({ extensions: [[0, sniBody([[0, ""]])]] })), /host name of 0 bytes/],
    ["a NUL in the host name", ok(helloBody({ extensions: [[0, sniBody([[0, "a.test\0.evil"]])]] })), /not printable ASCII/],
    ["a space in the host name", ok(helloBody({ extensions: [[0, sniBody([[0, "a.test evil"]])]] })), /not printable ASCII/],
    ["UTF-8 in the host name", ok(helloBody({ extensions: [[0, sniBody([[0, Buffer.from("bücher.test")]])]] })), /not printable ASCII/],
  ])("refuses %s", (_what, bytes, reason) => {
    const p = peekClientHello(bytes);
    expect(p.kind).toBe("malformed");
    expect(p.kind === "malformed" && p.reason).toMatch(/^malformed TLS ClientHello: /);
    expect(p.kind === "malformed" && p.reason).toMatch(reason);
  });

  it("accepts hellos without extensions and with unknown ones, and a full 16 KiB record", () => {
    expect(peekClientHello(record(handshake(helloBody({ noExtensions: true }))))).toMatchObject({ kind: "client-hello", serverName: null });
    expect(peekClientHello(helloWithSni("x.test", [[0xfafa, Buffer.alloc(0)], [0x0015, Buffer.alloc(100)]]))).toMatchObject({ kind: "client-hello", serverName: "x.test" });
    const fixed = helloWithSni("big.test").length;
    const padded = helloWithSni("big.test", [[0x0015, Buffer.alloc(MAX_CLIENT_HELLO_BYTES - fixed - 4)]]);
    expect(padded.length).toBe(MAX_CLIENT_HELLO_BYTES);
    expect(peekClientHello(padded)).toMatchObject({ kind: "client-hello", serverName: "big.test" });
    const over = helloWithSni("big.test", [[0x0015, Buffer.alloc(MAX_CLIENT_HELLO_BYTES - fixed - 3)]]);
    expect(peekClientHello(over)).toMatchObject({ kind: "malformed", reason: expect.stringContaining("exceeds 16384") });
  });
});

describe("after a HelloRetryRequest", () => {
  const hrrRandom = Buffer.from("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c", "hex");
  const serverHello = (random: Buffer) => record(handshake(Buffer.concat([Buffer.from([3, 3]), random, Buffer.alloc(40)]), 2), undefined, [3, 3]);

  it("recognises a HelloRetryRequest by its random, and nothing else", () => {
    expect(isHelloRetryRequest(serverHello(hrrRandom).subarray(0, SERVER_HELLO_PREFIX_BYTES))).toBe(true);
    expect(isHelloRetryRequest(serverHello(Buffer.alloc(32, 9)))).toBe(false);
    expect(isHelloRetryRequest(serverHello(hrrRandom).subarray(0, SERVER_HELLO_PREFIX_BYTES - 1))).toBe(false);
    expect(isHelloRetryRequest(Buffer.from("SSH-2.0-OpenSSH_9.2 and some more bytes to reach 43 bytes"))).toBe(false);
  });

  it("finds the retried ClientHello after a ChangeCipherSpec and early data, and refuses anything else", () => {
    const ccs = Buffer.from([0x14, 3, 3, 0, 1, 1]);
    const early = Buffer.concat([Buffer.from([0x17, 3, 3, 0, 100]), Buffer.alloc(100, 7)]);
    expect(peekRetriedClientHello(Buffer.concat([ccs, early, real.named]))).toMatchObject({ kind: "client-hello", serverName: "api.example.com" });
    expect(peekRetriedClientHello(real.bare)).toMatchObject({ kind: "client-hello", serverName: null });
    expect(peekRetriedClientHello(ccs)).toEqual({ kind: "need-more", needed: ccs.length + 5 });
    expect(peekRetriedClientHello(Buffer.from("GET / HTTP/1.1\r\n"))).toMatchObject({ kind: "malformed", reason: expect.stringContaining("instead of a ClientHello") });
    expect(peekRetriedClientHello(Buffer.concat([Buffer.from([0x15, 3, 3, 0, 2, 1, 0]), real.named]))).toMatchObject({ kind: "malformed" });
    const flood = Buffer.concat(Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([0x17, 3, 3, 0x40, 0]), Buffer.alloc(0x4000)])));
    expect(peekRetriedClientHello(flood)).toMatchObject({ kind: "malformed", reason: expect.stringContaining("more than 65536 bytes") });
  });
});

describe("compareServerName", () => {
  const t = { host: "api.example.com", via: "CONNECT" };
  it.each<[string | null, string | null]>([
    ["api.example.com", null],
    ["API.Example.COM", null],
    ["api.example.com.", null],
    [null, null],
    ["other.example.com", "TLS server name other.example.com does not match CONNECT host api.example.com"],
    ["example.com", "TLS server name example.com does not match CONNECT host api.example.com"],
    ["93.184.216.34", "TLS server name 93.184.216.34 does not match CONNECT host api.example.com"],
    ["api.example.com..", "TLS server name api.example.com.. does not match CONNECT host api.example.com"],
  ])("SNI %j → %j", (sni, verdict) => expect(compareServerName(sni, t)).toBe(verdict));
});

describe("checkTlsServerName (the gate) on a stream fed in pieces", () => {
  const target = { host: "api.example.com", via: "CONNECT" };
  const gate = (pieces: Buffer[], timeoutMs = 5000, end = false): Promise<GateVerdict> => {
    const s = new PassThrough();
    const v = checkTlsServerName(s as unknown as Socket, target, pieces[0] ?? Buffer.alloc(0), timeoutMs);
    for (const p of pieces.slice(1)) s.write(p);
    if (end) s.end();
    return v;
  };

  it("passes a matching hello split at every byte boundary, bytes unchanged", async () => {
    const h = real.named;
    for (let i = 0; i <= h.length; i++) {
      const v = await gate([h.subarray(0, i), h.subarray(i)]);
      expect(v).toEqual({ pass: true, bytes: h, serverName: "api.example.com", clientHello: true, rest: Buffer.alloc(0) });
    }
  });

  it("passes a hello that arrives one byte at a time", async () => {
    const h = real.named;
    const v = await gate([Buffer.alloc(0), ...Array.from(h, (b) => Buffer.from([b]))]);
    expect(v).toEqual({ pass: true, bytes: h, serverName: "api.example.com", clientHello: true, rest: Buffer.alloc(0) });
  });

  it("refuses another name, passes no SNI and plain protocols", async () => {
    const other = await captureClientHello({ servername: "evil.example.net" });
    expect(await gate([other])).toEqual({ pass: false, reason: "TLS server name evil.example.net does not match CONNECT host api.example.com" });
    expect(await gate([real.bare])).toEqual({ pass: true, bytes: real.bare, serverName: null, clientHello: true, rest: Buffer.alloc(0) });
    const plain = Buffer.from("SSH-2.0-x\r\n");
    expect(await gate([Buffer.alloc(0), plain])).toEqual({ pass: true, bytes: plain, serverName: null, clientHello: false, rest: Buffer.alloc(0) });
  });

  it("lets only the judged ClientHello record through; what followed it in the same read is held back as `rest`", async () => {
    const after = Buffer.concat([Buffer.from([0x14, 3, 3, 0, 1, 1]), await captureClientHello({ servername: "evil.example.net" })]);
    const v = await gate([Buffer.concat([real.named, after])]);
    expect(v).toMatchObject({ pass: true, serverName: "api.example.com", clientHello: true });
    expect((v as { bytes: Buffer }).bytes.equals(real.named)).toBe(true);
    expect((v as { rest: Buffer }).rest.equals(after)).toBe(true);
  });

  it("refuses malformed TLS, a hello cut by the client's FIN, and one that stalls", async () => {
    expect(await gate([record(Buffer.alloc(0), 20_000)])).toMatchObject({ pass: false, reason: expect.stringContaining("exceeds 16384") });
    expect(await gate([real.named.subarray(0, 30)], 5000, true)).toEqual({ pass: false, reason: "the client closed the connection before its TLS ClientHello was complete" });
    expect(await gate([real.named.subarray(0, 30)], 50)).toEqual({ pass: false, reason: "the TLS ClientHello did not arrive within 50 ms" });
  });

  it("leaves the stream paused when the leftover alone decides, so nothing after it is lost", async () => {
    const s = new PassThrough();
    s.pause();
    const v = await checkTlsServerName(s as unknown as Socket, target, real.named, 5000);
    expect(v).toMatchObject({ pass: true });
    expect(s.isPaused()).toBe(true);
    s.write("after");
    await new Promise((r) => setImmediate(r));
    expect(String(s.read())).toBe("after");
  });

  it("passes a client that half-closes without sending anything", async () => {
    expect(await gate([], 5000, true)).toEqual({ pass: true, bytes: Buffer.alloc(0), serverName: null, clientHello: false, rest: Buffer.alloc(0) });
  });
});
