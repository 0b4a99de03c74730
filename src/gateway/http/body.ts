// Reading a request body with a hard bound, and answering with JSON-RPC
// error bodies. Not responsible for deciding what a request means.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Refusal } from "./guard.js";

export type BodyResult = { kind: "ok"; text: string } | { kind: "too-large" } | { kind: "aborted" };

/**
 * SECURITY: a hostile client can send an endless body; a declared length over
 * the bound is refused before reading, and a chunked body is cut off as soon as
 * it passes the bound.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<BodyResult> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBytes) return Promise.resolve({ kind: "too-large" });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (r: BodyResult) => {
      if (done) return;
      done = true;
      req.off("data", onData);
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        chunks.length = 0;
        req.pause();
        finish({ kind: "too-large" });
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.on("end", () => finish({ kind: "ok", text: Buffer.concat(chunks).toString("utf8") }));
    req.on("error", () => finish({ kind: "aborted" }));
    req.on("close", () => finish({ kind: "aborted" }));
  });
}

/** Sends a JSON-RPC error object with id null (the request could not be attributed). */
export function sendRefusal(res: ServerResponse, r: Refusal, opts: { closeConnection?: boolean } = {}): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify({ jsonrpc: "2.0", error: { code: r.code, message: r.message }, id: null });
  res.writeHead(r.status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(body),
    ...(opts.closeConnection ? { Connection: "close" } : {}),
    ...r.headers,
  });
  res.end(body);
}
