// SOCKS5 (RFC 1928) server handshake: no authentication, CONNECT only, with
// remote name resolution (ATYP 3: the proxy resolves). Not responsible for
// policy or dialling.

import type { Socket } from "node:net";
import { HandshakeError, type SocketReader } from "./reader.js";

export const SocksReply = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

/** Reads greeting and request; answers the greeting. Returns the requested destination. */
export async function socks5Handshake(reader: SocketReader, socket: Socket): Promise<{ host: string; port: number }> {
  const [ver, nMethods] = await reader.exact(2);
  if (ver !== 5) throw new HandshakeError("not SOCKS version 5", "malformed");
  const methods = await reader.exact(nMethods!);
  if (!methods.includes(0x00)) {
    socket.end(Buffer.from([5, 0xff]));
    throw new HandshakeError("the SOCKS client offers no 'no authentication' method", "malformed");
  }
  socket.write(Buffer.from([5, 0x00]));
  const [v, cmd, , atyp] = await reader.exact(4);
  if (v !== 5) throw new HandshakeError("not SOCKS version 5", "malformed");
  let host: string;
  if (atyp === 1) host = Array.from(await reader.exact(4)).join(".");
  else if (atyp === 4) {
    const b = await reader.exact(16);
    const words: string[] = [];
    for (let i = 0; i < 16; i += 2) words.push(b.readUInt16BE(i).toString(16));
    host = words.join(":");
  } else if (atyp === 3) {
    const [len] = await reader.exact(1);
    host = (await reader.exact(len!)).toString("latin1");
  } else {
    socket.end(socksReply(SocksReply.addressTypeNotSupported));
    throw new HandshakeError("unsupported SOCKS address type", "malformed");
  }
  const port = (await reader.exact(2)).readUInt16BE(0);
  if (cmd !== 1) {
    socket.end(socksReply(SocksReply.commandNotSupported));
    throw new HandshakeError("only the SOCKS CONNECT command is supported", "malformed");
  }
  return { host, port };
}

export function socksReply(code: number): Buffer {
  return Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}
