import { invariant } from '@pagevisor/types';

/**
 * A min-heap of actors keyed by their next event time in ns. Ties go to the lower actor index,
 * so the order of events, and with it the whole run, depends only on the scenario and seed.
 * Each actor is in the queue at most once. Keys live in typed arrays: nothing is allocated per
 * push or pop.
 */
export class EventQueue {
  private readonly heap: Uint32Array;
  private readonly timeNs: Float64Array;
  private sizeValue = 0;

  /** @param capacity number of actors, indexed 0 .. capacity - 1 */
  constructor(capacity: number) {
    this.heap = new Uint32Array(capacity);
    this.timeNs = new Float64Array(capacity);
  }

  /** Actors queued. */
  get size(): number {
    return this.sizeValue;
  }

  /** Queues actor `index` for time `timeNs` (finite). */
  push(index: number, timeNs: number): void {
    invariant(this.sizeValue < this.heap.length, 'EventQueue.push: queue full (an actor queued twice?)');
    invariant(Number.isFinite(timeNs), `EventQueue.push: time ${timeNs} is not finite`);
    this.timeNs[index] = timeNs;
    let i = this.sizeValue++;
    const heap = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(index, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = index;
  }

  /** Time of the earliest event; Infinity when empty. */
  peekTimeNs(): number {
    return this.sizeValue === 0 ? Infinity : this.timeNs[this.heap[0]!]!;
  }

  /** Removes and returns the actor with the earliest event. */
  pop(): number {
    invariant(this.sizeValue > 0, 'EventQueue.pop: queue empty');
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap[--this.sizeValue]!;
    const n = this.sizeValue;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && this.before(heap[r]!, heap[l]!) ? r : l;
      if (!this.before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    if (n > 0) heap[i] = last;
    return top;
  }

  private before(a: number, b: number): boolean {
    const ta = this.timeNs[a]!;
    const tb = this.timeNs[b]!;
    return ta < tb || (ta === tb && a < b);
  }
}
