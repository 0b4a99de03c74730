// Relays a server's stderr into the gateway log, line by line, with a bound on
// line length so a hostile server cannot flood memory. The logger redacts secrets.

import type { Readable } from "node:stream";
import type { Logger } from "../log.js";

const MAX_LINE = 4096;

export function relayStderr(stream: Readable, log: Logger): void {
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) !== -1) {
      emit(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
    if (pending.length > MAX_LINE) {
      emit(pending.slice(0, MAX_LINE) + " …(cut)");
      pending = "";
    }
  });
  stream.on("end", () => {
    if (pending) emit(pending);
    pending = "";
  });
  stream.on("error", () => {});
  function emit(line: string) {
    const text = line.length > MAX_LINE ? line.slice(0, MAX_LINE) + " …(cut)" : line;
    if (text.trim()) log.debug(`stderr: ${text}`);
  }
}
