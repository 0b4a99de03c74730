// Logging of refused HTTP requests (bad Host, Origin or token) without letting
// a client flood the log: the first refusal in a window is a warning naming the
// peer; the rest are counted and reported with the next warning. Not
// responsible for deciding what is refused (guard.ts).

import type { Logger } from "../../log.js";
import { Throttle } from "../../throttle.js";

/** At most one warning per this long; refusals in between are counted into the next one. */
export const REFUSAL_LOG_WINDOW_MS = 10_000;

export class RefusalLog {
  private readonly throttle: Throttle;

  constructor(
    private readonly log: Logger,
    now: () => number = () => Date.now(),
  ) {
    this.throttle = new Throttle(REFUSAL_LOG_WINDOW_MS, now);
  }

  /** A refused request (401/403) from `peer` (the socket's remote address). */
  refused(status: number, message: string, peer: string | undefined): void {
    const more = this.throttle.pass();
    if (more === null) return;
    this.log.warn(`refused an HTTP request: ${message}`, {
      status,
      peer: peer ?? "unknown",
      ...(more > 0 ? { alsoRefused: `${more} more in the last ${Math.round(REFUSAL_LOG_WINDOW_MS / 1000)} s or so` } : {}),
    });
  }
}
