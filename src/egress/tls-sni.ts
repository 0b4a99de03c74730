// A small, bounded, pure parser for the first bytes a client sends in a tunnel:
// is it a TLS ClientHello, and which server name (SNI) does it ask for?
// Reads one TLS record at most (5 + 16,384 bytes; after a HelloRetryRequest,
// up to 64 KiB of skipped records before it) and trusts no length.
// Not responsible for sockets, timeouts or deciding what a name may be.

/** TLS record header: type, legacy version, length. */
const RECORD_HEADER = 5;
/** RFC 8446 §5.1: a plaintext record carries at most 2^14 bytes. */
export const MAX_TLS_RECORD = 16_384;
/** The most bytes the parser ever needs before it can answer. */
export const MAX_CLIENT_HELLO_BYTES = RECORD_HEADER + MAX_TLS_RECORD;

/** TLS record content types: change_cipher_spec (20) … heartbeat (24). */
const CONTENT_FIRST = 0x14;
const CONTENT_CCS = 0x14;
const CONTENT_HANDSHAKE = 0x16;
const CONTENT_APPLICATION_DATA = 0x17;
const CONTENT_LAST = 0x18;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const HANDSHAKE_SERVER_HELLO = 0x02;
const EXT_SERVER_NAME = 0x0000;
const NAME_TYPE_HOST = 0x00;

export type ClientHelloPeek =
  /** Not a TLS record a server would act on first: a plain protocol (or SSLv2), passed as it is. */
  | { readonly kind: "not-tls" }
  /** Not enough bytes yet: call again once `needed` bytes in all have arrived. */
  | { readonly kind: "need-more"; readonly needed: number }
  /**
   * A whole ClientHello in the first record; `serverName` is null when it carries no SNI.
   * `end`: where its record ends — bytes after it were not judged.
   */
  | { readonly kind: "client-hello"; readonly serverName: string | null; readonly end: number }
  /** Looks like TLS but is not a ClientHello we can judge: a sentence saying why. */
  | { readonly kind: "malformed"; readonly reason: string };

class Malformed extends Error {}

/**
 * Examine the start of what a client sent. The ClientHello must lie within the
 * first record: one spread over several records is reported as malformed (real
 * clients send it in one record, being far below 16 KiB).
 */
export function peekClientHello(data: Uint8Array): ClientHelloPeek {
  if (data.length === 0) return { kind: "need-more", needed: 1 };
  const type = data[0]!;
  if (type < CONTENT_FIRST || type > CONTENT_LAST) return { kind: "not-tls" };
  if (data.length < RECORD_HEADER) return { kind: "need-more", needed: RECORD_HEADER };
  if (type !== CONTENT_HANDSHAKE) {
    // SECURITY: some TLS servers skip a record before the ClientHello — a warning
    // alert (Go: even as the very first record, whatever its version), an empty
    // record, a heartbeat (old OpenSSL) — and then read a ClientHello we would never
    // have looked at. No TLS client starts so: anything that looks like such a
    // record (TLS major version 3, or 0–2 bytes long) is refused; the rest is a
    // plain protocol that happens to start with this byte.
    const length = (data[3]! << 8) | data[4]!;
    if (data[1] === 3 || length <= 2) return malformed(`a TLS record of type ${type} (${length} bytes) comes before the ClientHello`);
    return { kind: "not-tls" };
  }
  return helloRecordAt(data, 0);
}

/** The ClientHello record starting at `at` (its first byte is 0x16). */
function helloRecordAt(data: Uint8Array, at: number): ClientHelloPeek {
  if (data.length < at + RECORD_HEADER) return { kind: "need-more", needed: at + RECORD_HEADER };
  const major = data[at + 1]!;
  const minor = data[at + 2]!;
  const recordLength = (data[at + 3]! << 8) | data[at + 4]!;
  // SECURITY: a first byte of 0x16 is taken as TLS; anything odd after it is refused,
  // never passed as "not TLS", so a mangled header cannot slip a name past the check.
  if (major !== 3 || minor > 4) return malformed(`the TLS record version ${major}.${minor} is not TLS`);
  if (recordLength === 0) return malformed("the TLS record is empty");
  if (recordLength > MAX_TLS_RECORD) return malformed(`the TLS record length ${recordLength} exceeds ${MAX_TLS_RECORD}`);
  const end = at + RECORD_HEADER + recordLength;
  if (data.length < end) return { kind: "need-more", needed: end };
  try {
    return { kind: "client-hello", serverName: parseHandshake(new Cursor(data, at + RECORD_HEADER, end)), end };
  } catch (err) {
    if (err instanceof Malformed) return malformed(err.message);
    throw err;
  }
}

/** Bytes of ChangeCipherSpec and early-data records skipped before a retried ClientHello, at most. */
export const MAX_SKIPPED_BEFORE_RETRY = 64 * 1024;

/**
 * After a HelloRetryRequest (TLS 1.3), the client's next ClientHello: it may come
 * after a ChangeCipherSpec and after early data sent before the retry arrived,
 * which the server skips; anything else first is refused. Never "not TLS".
 */
export function peekRetriedClientHello(data: Uint8Array): ClientHelloPeek {
  let at = 0;
  for (;;) {
    if (data.length < at + RECORD_HEADER) return { kind: "need-more", needed: at + RECORD_HEADER };
    const type = data[at]!;
    if (type === CONTENT_HANDSHAKE) return helloRecordAt(data, at);
    const length = (data[at + 3]! << 8) | data[at + 4]!;
    if ((type !== CONTENT_CCS && type !== CONTENT_APPLICATION_DATA) || data[at + 1] !== 3 || length > MAX_TLS_RECORD + 256) {
      return malformed(`after a HelloRetryRequest the client sent a record of type ${type} (${length} bytes) instead of a ClientHello`);
    }
    at += RECORD_HEADER + length;
    if (at > MAX_SKIPPED_BEFORE_RETRY) return malformed(`more than ${MAX_SKIPPED_BEFORE_RETRY} bytes came before the ClientHello that follows a HelloRetryRequest`);
  }
}

/** RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest. */
const HRR_RANDOM = Buffer.from("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c", "hex");
/** Record header, handshake header, legacy_version, random. */
export const SERVER_HELLO_PREFIX_BYTES = RECORD_HEADER + 4 + 2 + 32;

/** Whether the server's first bytes (at least SERVER_HELLO_PREFIX_BYTES of them) open a HelloRetryRequest. */
export function isHelloRetryRequest(serverFirst: Uint8Array): boolean {
  if (serverFirst.length < SERVER_HELLO_PREFIX_BYTES) return false;
  if (serverFirst[0] !== CONTENT_HANDSHAKE || serverFirst[1] !== 3 || serverFirst[5] !== HANDSHAKE_SERVER_HELLO) return false;
  return HRR_RANDOM.equals(serverFirst.subarray(11, 11 + 32));
}

function malformed(reason: string): ClientHelloPeek {
  return { kind: "malformed", reason: `malformed TLS ClientHello: ${reason}` };
}

/** Reads within [at, end) only; every overrun is a Malformed sentence. */
class Cursor {
  constructor(
    private readonly data: Uint8Array,
    public at: number,
    public readonly end: number,
  ) {}
  get left(): number {
    return this.end - this.at;
  }
  need(n: number, what: string): void {
    if (n > this.left) throw new Malformed(`${what} claims ${n} bytes but only ${this.left} remain`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.data[this.at++]!;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = (this.data[this.at]! << 8) | this.data[this.at + 1]!;
    this.at += 2;
    return v;
  }
  u24(what: string): number {
    this.need(3, what);
    const v = (this.data[this.at]! << 16) | (this.data[this.at + 1]! << 8) | this.data[this.at + 2]!;
    this.at += 3;
    return v;
  }
  skip(n: number, what: string): void {
    this.need(n, what);
    this.at += n;
  }
  /** A sub-cursor over the next n bytes (which this one skips). */
  sub(n: number, what: string): Cursor {
    this.need(n, what);
    const c = new Cursor(this.data, this.at, this.at + n);
    this.at += n;
    return c;
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.data.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }
}

function parseHandshake(record: Cursor): string | null {
  const type = record.u8("the handshake type");
  if (type !== HANDSHAKE_CLIENT_HELLO) throw new Malformed(`the first handshake message has type ${type}, not ClientHello`);
  const length = record.u24("the handshake length");
  if (length > record.left) {
    throw new Malformed(`the ClientHello (${length} bytes) does not fit in its first record (${record.left} bytes); ClientHellos split over several records are refused`);
  }
  // Nothing may follow the ClientHello in its record: the client waits for the server now.
  if (length < record.left) throw new Malformed(`${record.left - length} bytes follow the ClientHello in its record`);
  const hello = record.sub(length, "the ClientHello");
  hello.skip(2, "the legacy version");
  hello.skip(32, "the random");
  const sessionId = hello.u8("the session id length");
  if (sessionId > 32) throw new Malformed(`the session id length ${sessionId} exceeds 32`);
  hello.skip(sessionId, "the session id");
  const suites = hello.u16("the cipher suites length");
  if (suites < 2 || suites % 2 !== 0) throw new Malformed(`the cipher suites length ${suites} is not a positive even number`);
  hello.skip(suites, "the cipher suites");
  const compression = hello.u8("the compression methods length");
  if (compression < 1) throw new Malformed("the compression methods list is empty");
  hello.skip(compression, "the compression methods");
  if (hello.left === 0) return null; // no extensions at all (TLS 1.2 allows it)
  const extLength = hello.u16("the extensions length");
  if (extLength !== hello.left) throw new Malformed(`the extensions length ${extLength} does not match the ${hello.left} bytes left`);
  let serverName: string | null = null;
  let seen = false;
  while (hello.left > 0) {
    const extType = hello.u16("an extension type");
    const ext = hello.sub(hello.u16("an extension length"), `extension ${extType}`);
    if (extType !== EXT_SERVER_NAME) continue;
    // SECURITY: two server_name extensions could show us one name and the server another.
    if (seen) throw new Malformed("the server_name extension appears twice");
    seen = true;
    serverName = parseServerName(ext);
  }
  return serverName;
}

/** RFC 6066 §3: a list holding exactly one host_name. */
function parseServerName(ext: Cursor): string {
  const listLength = ext.u16("the server name list length");
  if (listLength !== ext.left) throw new Malformed(`the server name list length ${listLength} does not match the ${ext.left} bytes of its extension`);
  if (listLength === 0) throw new Malformed("the server name list is empty");
  let name: string | null = null;
  while (ext.left > 0) {
    const type = ext.u8("a server name type");
    // Other name types have no defined layout: refuse rather than guess where they end.
    if (type !== NAME_TYPE_HOST) throw new Malformed(`the server name type ${type} is not host_name`);
    const bytes = ext.bytes(ext.u16("a host name length"), "a host name");
    if (name !== null) throw new Malformed("the server name list holds more than one host name");
    if (bytes.length === 0 || bytes.length > 255) throw new Malformed(`a host name of ${bytes.length} bytes`);
    // Printable ASCII only (A-labels); anything else is not a host name we could compare.
    for (const b of bytes) if (b < 0x21 || b > 0x7e) throw new Malformed("the host name holds a byte that is not printable ASCII");
    name = String.fromCharCode(...bytes);
  }
  return name!;
}
