// Test helper: real TLS ClientHellos (node:tls dialling a local socket that
// captures the first record and hangs up) and a small builder for synthetic
// ones whose fields a test can make lie. Loopback only.
import { createServer, type AddressInfo } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";

/** The first TLS record node:tls sends for these options (servername unset + IP host: no SNI). */
export async function captureClientHello(opts: Pick<ConnectionOptions, "servername" | "minVersion" | "maxVersion" | "ALPNProtocols">): Promise<Buffer> {
  let got!: (b: Buffer) => void;
  const captured = new Promise<Buffer>((r) => (got = r));
  const server = createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
        got(buf.subarray(0, 5 + buf.readUInt16BE(3)));
        s.destroy();
      }
    });
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const t = tlsConnect({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, rejectUnauthorized: false, ...opts });
  t.on("error", () => {}); // the capturing server hangs up mid-handshake
  try {
    return await captured;
  } finally {
    t.destroy();
    await new Promise((r) => server.close(r));
  }
}

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u24 = (n: number) => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);

/** A server_name extension body holding the given entries ([type, name]). */
export function sniBody(entries: [number, Buffer | string][]): Buffer {
  const list = Buffer.concat(entries.map(([t, n]) => {
    const b = Buffer.isBuffer(n) ? n : Buffer.from(n, "latin1");
    return Buffer.concat([Buffer.from([t]), u16(b.length), b]);
  }));
  return Buffer.concat([u16(list.length), list]);
}

export interface HelloParts {
  extensions?: [number, Buffer][];
  sessionId?: Buffer;
  suites?: Buffer;
  compression?: Buffer;
  /** Drop the extensions block entirely. */
  noExtensions?: boolean;
}

/** The ClientHello body (after the 4-byte handshake header). */
export function helloBody(p: HelloParts = {}): Buffer {
  const sessionId = p.sessionId ?? Buffer.alloc(32, 7);
  const suites = p.suites ?? Buffer.from([0x13, 0x01, 0x13, 0x02]);
  const compression = p.compression ?? Buffer.from([0]);
  const parts = [Buffer.from([3, 3]), Buffer.alloc(32, 1), Buffer.from([sessionId.length]), sessionId, u16(suites.length), suites, Buffer.from([compression.length]), compression];
  if (!p.noExtensions) {
    const ext = Buffer.concat((p.extensions ?? []).map(([t, b]) => Buffer.concat([u16(t), u16(b.length), b])));
    parts.push(u16(ext.length), ext);
  }
  return Buffer.concat(parts);
}

export function handshake(body: Buffer, type = 1, length = body.length): Buffer {
  return Buffer.concat([Buffer.from([type]), u24(length), body]);
}

export function record(payload: Buffer, length = payload.length, version = [3, 1]): Buffer {
  return Buffer.concat([Buffer.from([0x16, version[0]!, version[1]!]), u16(length), payload]);
}

export function helloWithSni(name: string, extra: [number, Buffer][] = []): Buffer {
  return record(handshake(helloBody({ extensions: [[0x000a, Buffer.from([0, 2, 0, 0x1d])], [0, sniBody([[0, name]])], ...extra] })));
}
