// Letting at most one of a stream of events through per time window, counting
// the others: for warnings a hostile peer could otherwise repeat without bound
// (refused HTTP requests, an audit log that falls behind). Pure.

export class Throttle {
  private last = -Infinity;
  private held = 0;

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** When this event may go through: how many were held back since the last one that did; else null. */
  pass(): number | null {
    const t = this.now();
    if (t - this.last < this.windowMs) {
      this.held++;
      return null;
    }
    this.last = t;
    const held = this.held;
    this.held = 0;
    return held;
  }
}
