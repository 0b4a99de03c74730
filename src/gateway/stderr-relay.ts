// Relays a server's stderr into the gateway log, line by line, with bounds so
// a hostile server cannot flood memory. Secrets are masked in the whole line
// BEFORE it is shortened, so a cut can never leave part of a value readable.

import type { Readable } from "node:stream";
import type { Logger } from "../log.js";

/** Longest line written to the log. */
const MAX_LINE = 4096;
/** Longest line held; a longer one is dropped (a secret's forms are far shorter). */
const MAX_HELD = 64 * 1024;

export function relayStderr(stream: Readable, log: Logger): void {
  let pending = "";
  let dropping = false;
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) !== -1) {
      if (dropping) dropping = false;
      else emit(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
    if (pending.length > MAX_HELD) {
      if (!dropping) log.debug(`stderr: (a line longer than ${MAX_HELD} characters was dropped)`);
      dropping = true;
      pending = "";
    }
  });
  stream.on("end", () => {
    if (pending && !dropping) emit(pending);
    pending = "";
  });
  stream.on("error", () => {});
  function emit(line: string) {
    if (!line.trim() || !log.enabled("debug")) return;
    const masked = log.redact(line);
    log.debug(`stderr: ${masked.length > MAX_LINE ? masked.slice(0, MAX_LINE) + " …(cut)" : masked}`);
  }
}
