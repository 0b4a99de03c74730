// A client for Firecracker's REST API over its unix socket: one request at a
// time, JSON bodies, 2xx or an error carrying Firecracker's fault_message.
// Not responsible for which requests are sent (config.ts).

import { request } from "node:http";
import type { FirecrackerRequest } from "./config.js";

/** Largest response body read from the API socket. */
const MAX_RESPONSE = 64 * 1024;

export class FirecrackerApi {
  constructor(private readonly socketPath: string) {}

  send(req: FirecrackerRequest, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
    const payload = req.body === null ? undefined : JSON.stringify(req.body);
    return new Promise((resolve, reject) => {
      const r = request(
        {
          socketPath: this.socketPath,
          method: req.method,
          path: req.path,
          headers: { Accept: "application/json", ...(payload ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) } : {}) },
          timeout: timeoutMs,
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            body += c;
            if (body.length > MAX_RESPONSE) res.destroy(new Error("Firecracker's response is too large"));
          });
          res.on("error", reject);
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve({ status, body });
            let fault = body;
            try {
              fault = (JSON.parse(body) as { fault_message?: string }).fault_message ?? body;
            } catch {
              /* not JSON */
            }
            reject(new Error(`Firecracker refused ${req.method} ${req.path} (HTTP ${status}): ${fault}`));
          });
        },
      );
      r.on("timeout", () => r.destroy(new Error(`Firecracker did not answer ${req.method} ${req.path} within ${timeoutMs} ms`)));
      r.on("error", reject);
      r.end(payload);
    });
  }

  async sendAll(reqs: readonly FirecrackerRequest[]): Promise<void> {
    for (const r of reqs) await this.send(r);
  }
}
