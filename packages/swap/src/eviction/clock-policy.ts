import { INVALID_MFN, invariant, type EvictionPolicy, type Mfn } from '@pagevisor/types';
import { checkFramesOption, checkMfn } from './check-frame.js';

/** Options of {@link ClockPolicy}. */
export interface ClockPolicyOptions {
  /** Machine frames of the host: every mfn given to the policy is below this. */
  readonly frames: number;
}

/** Marks an untracked frame in the ring links. */
const NONE = -1;

/**
 * Clock (second chance): tracked frames sit on a ring with a referenced bit each, which `touch`
 * sets (the accessed bit the hypervisor sets on guest access). `victim()` advances the hand,
 * clearing referenced bits, and returns the first unreferenced frame; the hand stays on it, so
 * asking again without removing it returns the same frame.
 *
 * A frame is inserted unreferenced, just behind the hand (the last the hand will reach). All state
 * lives in typed arrays indexed by mfn (a doubly-linked ring in two Int32Arrays): insert, remove
 * and touch are O(1) and allocate nothing; victim is O(tracked frames) in the worst case.
 *
 * Errors: an mfn outside `[0, frames)` and inserting a tracked frame throw InvariantError;
 * `remove` and `touch` of an untracked frame are no-ops (the hypervisor may remove a frame on
 * every free without knowing whether it was evictable, and the interface has no membership query).
 */
export class ClockPolicy implements EvictionPolicy {
  /** Always `"clock"`. */
  readonly name = 'clock';
  /** Frames the policy was sized for. */
  readonly frames: number;
  /** Next frame on the ring (hand direction), NONE when untracked. */
  private readonly next: Int32Array;
  /** Previous frame on the ring, NONE when untracked. */
  private readonly prev: Int32Array;
  /** 1 when the frame was touched since the hand last passed it. */
  private readonly referenced: Uint8Array;
  /** Frame under the hand, NONE when the ring is empty. */
  private hand = NONE;
  private count = 0;

  /** Creates an empty policy for frames `[0, opts.frames)`; EINVAL when `frames` is not in [1, 2^31). */
  constructor(opts: ClockPolicyOptions) {
    checkFramesOption('clock', opts.frames);
    this.frames = opts.frames;
    this.next = new Int32Array(opts.frames).fill(NONE);
    this.prev = new Int32Array(opts.frames).fill(NONE);
    this.referenced = new Uint8Array(opts.frames);
  }

  /** Frames tracked. */
  get size(): number {
    return this.count;
  }

  /** Whether `mfn` is tracked. */
  has(mfn: Mfn): boolean {
    checkMfn('clock', 'has', mfn, this.frames);
    return this.next[mfn] !== NONE;
  }

  /** Whether `mfn`'s referenced bit is set (false when untracked). */
  isReferenced(mfn: Mfn): boolean {
    checkMfn('clock', 'isReferenced', mfn, this.frames);
    return this.referenced[mfn] === 1;
  }

  /** Tracks `mfn`, unreferenced, just behind the hand; InvariantError when already tracked. */
  insert(mfn: Mfn): void {
    checkMfn('clock', 'insert', mfn, this.frames);
    invariant(this.next[mfn] === NONE, `clock.insert: mfn ${mfn} already tracked`);
    this.referenced[mfn] = 0;
    const hand = this.hand;
    if (hand === NONE) {
      this.next[mfn] = mfn;
      this.prev[mfn] = mfn;
      this.hand = mfn;
    } else {
      // Behind the hand = the last frame a full sweep reaches, as in FIFO order.
      const before = this.prev[hand]!;
      this.next[before] = mfn;
      this.prev[mfn] = before;
      this.next[mfn] = hand;
      this.prev[hand] = mfn;
    }
    this.count++;
  }

  /** Stops tracking `mfn`; the hand moves on when it was on `mfn`. No-op when untracked. */
  remove(mfn: Mfn): void {
    checkMfn('clock', 'remove', mfn, this.frames);
    const after = this.next[mfn]!;
    if (after === NONE) return;
    if (after === mfn) {
      this.hand = NONE;
    } else {
      const before = this.prev[mfn]!;
      this.next[before] = after;
      this.prev[after] = before;
      if (this.hand === mfn) this.hand = after;
    }
    this.next[mfn] = NONE;
    this.prev[mfn] = NONE;
    this.referenced[mfn] = 0;
    this.count--;
  }

  /** Sets `mfn`'s referenced bit; no-op when untracked (the bit of an untracked frame means nothing). */
  touch(mfn: Mfn): void {
    checkMfn('clock', 'touch', mfn, this.frames);
    if (this.next[mfn] !== NONE) this.referenced[mfn] = 1;
  }

  /**
   * Advances the hand past referenced frames, clearing their bits, and returns the first
   * unreferenced one (the hand stays on it); INVALID_MFN when nothing is tracked. Ends within one
   * revolution plus one step, since a revolution clears every bit.
   */
  victim(): Mfn {
    let hand = this.hand;
    if (hand === NONE) return INVALID_MFN;
    const referenced = this.referenced;
    const next = this.next;
    while (referenced[hand] === 1) {
      referenced[hand] = 0;
      hand = next[hand]!;
    }
    this.hand = hand;
    return hand as Mfn;
  }

  /** Forgets every frame. */
  reset(): void {
    this.next.fill(NONE);
    this.prev.fill(NONE);
    this.referenced.fill(0);
    this.hand = NONE;
    this.count = 0;
  }
}
