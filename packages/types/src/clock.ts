/** A source of time in nanoseconds. Simulations use {@link SimClock}, never the wall clock. */
export interface Clock {
  /** Current time in nanoseconds since the start of the run. */
  nowNs(): number;
}

/** Nanoseconds in a millisecond. */
export const NS_PER_MS = 1_000_000;
/** Nanoseconds in a second. */
export const NS_PER_S = 1_000_000_000;

/**
 * Simulated time: starts at 0 and moves only when advanced. Times are plain numbers of
 * nanoseconds (exact up to 2^53 ns, about 104 days), never BigInt.
 */
export class SimClock implements Clock {
  private timeNs = 0;

  nowNs(): number {
    return this.timeNs;
  }

  /** Moves time forward by `ns` (>= 0). */
  advance(ns: number): void {
    if (!(ns >= 0)) throw new RangeError(`SimClock.advance: ${ns} ns is not a non-negative number`);
    this.timeNs += ns;
  }

  /** Moves time forward to `ns`; moving backwards is an error. */
  advanceTo(ns: number): void {
    if (!(ns >= this.timeNs)) {
      throw new RangeError(`SimClock.advanceTo: ${ns} ns is before now (${this.timeNs} ns)`);
    }
    this.timeNs = ns;
  }
}
