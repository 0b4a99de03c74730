// The host side of Firecracker's hybrid vsock: connect to the device's unix
// socket, send `CONNECT <port>\n`, expect `OK <host port>\n`; what follows is the
// guest's byte stream. Bytes that arrive with the OK line are kept. Not
// responsible for what the stream carries. The socket comes back paused and
// resumes when its consumer attaches.

import { connect, type Socket } from "node:net";

/** Longest acknowledgement line accepted ("OK 4294967295\n" is 14 bytes). */
const MAX_ACK = 32;

export function connectVsock(udsPath: string, port: number, timeoutMs = 5000): Promise<Socket> {
  if (!Number.isInteger(port) || port < 0 || port > 0xffffffff) return Promise.reject(new Error(`invalid vsock port ${port}`));
  return new Promise((resolve, reject) => {
    const sock = connect(udsPath);
    let buf = Buffer.alloc(0);
    const fail = (msg: string) => {
      cleanup();
      sock.destroy();
      reject(new Error(`vsock CONNECT ${port} via ${udsPath}: ${msg}`));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(0x0a);
      if (nl === -1) {
        if (buf.length > MAX_ACK) fail("the acknowledgement line is too long");
        return;
      }
      const line = buf.subarray(0, nl).toString("ascii");
      if (!/^OK \d+$/.test(line)) return fail(`unexpected answer "${line.slice(0, MAX_ACK)}"`);
      cleanup();
      const rest = buf.subarray(nl + 1);
      // Hold the stream until its consumer attaches (a 'data' listener or pipe), so no byte is lost.
      sock.pause();
      if (rest.length > 0) sock.unshift(rest);
      const onListener = (event: string | symbol) => {
        if (event !== "data" && event !== "readable") return;
        sock.off("newListener", onListener);
        process.nextTick(() => sock.resume());
      };
      sock.on("newListener", onListener);
      resolve(sock);
    };
    const onClose = () => fail("the connection closed (no guest listener on that port yet?)");
    const onError = (err: Error) => fail(err.message);
    const cleanup = () => {
      clearTimeout(timer);
      sock.off("data", onData);
      sock.off("close", onClose);
      sock.off("error", onError);
    };
    sock.on("data", onData);
    sock.on("close", onClose);
    sock.on("error", onError);
    sock.once("connect", () => sock.write(`CONNECT ${port}\n`));
  });
}

/** Retry until the guest listens (it starts listening only once booted), up to `deadlineMs`. */
export async function connectVsockWhenReady(udsPath: string, port: number, deadlineMs: number): Promise<Socket> {
  const end = Date.now() + deadlineMs;
  let last: Error = new Error("not tried");
  while (Date.now() < end) {
    try {
      return await connectVsock(udsPath, port, Math.min(5000, Math.max(100, end - Date.now())));
    } catch (err) {
      last = err as Error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw last;
}
