// Logging of refused HTTP requests (bad Host, Origin or token) without letting
// a client flood the log: the first refusal in a window is a warning naming the
// peer; the rest are counted and reported with the next warning. Not
// responsible for deciding what is refused (guard.ts).

import type { Logger } from "../../log.js";

/** At most one warning per this long; refusals in between are counted into the next one. */
export const REFUSAL_LOG_WINDOW_MS = 10_000;

export class RefusalLog {
  private lastWarn = -Infinity;
  private held = 0;

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** A refused request (401/403) from `peer` (the socket's remote address). */
  refused(status: number, message: string, peer: string | undefined): void {
    const t = this.now();
    if (t - this.lastWarn < REFUSAL_LOG_WINDOW_MS) {
      this.held++;
      return;
    }
    this.lastWarn = t;
    const more = this.held;
    this.held = 0;
    this.log.warn(`refused an HTTP request: ${message}`, {
      status,
      peer: peer ?? "unknown",
      ...(more > 0 ? { alsoRefused: `${more} more in the last ${Math.round(REFUSAL_LOG_WINDOW_MS / 1000)} s or so` } : {}),
    });
  }
}
