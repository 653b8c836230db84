import { LRUCache } from 'lru-cache';
import { INVALID_MFN, invariant, type EvictionPolicy, type Mfn } from '@pagevisor/types';
import { checkFramesOption, checkMfn } from './check-frame.js';

/** Options of {@link LruPolicy}. */
export interface LruPolicyOptions {
  /** Machine frames of the host: every mfn given to the policy is below this. */
  readonly frames: number;
}

/**
 * Least recently used, on the `lru-cache` package (whose entries live in parallel typed arrays):
 * `insert` makes a frame the most recent, `touch` moves it there (`get`), and `victim()` returns
 * the least recent without evicting it (the first of `rkeys()`); the hypervisor removes it when
 * it really evicts. The cache's `max` is `frames`, so it never drops a frame on its own.
 *
 * Cost: insert, remove and touch are O(1); victim allocates one small generator (lru-cache
 * exposes no other way to read its tail).
 *
 * Errors: an mfn outside `[0, frames)` and inserting a tracked frame throw InvariantError;
 * `remove` and `touch` of an untracked frame are no-ops, as in {@link ClockPolicy}.
 */
export class LruPolicy implements EvictionPolicy {
  /** Always `"lru"`. */
  readonly name = 'lru';
  /** Frames the policy was sized for. */
  readonly frames: number;
  private readonly cache: LRUCache<number, true>;

  /** Creates an empty policy for frames `[0, opts.frames)`; EINVAL when `frames` is not in [1, 2^31). */
  constructor(opts: LruPolicyOptions) {
    checkFramesOption('lru', opts.frames);
    this.frames = opts.frames;
    this.cache = new LRUCache<number, true>({ max: opts.frames });
  }

  /** Frames tracked. */
  get size(): number {
    return this.cache.size;
  }

  /** Whether `mfn` is tracked (does not change its recency). */
  has(mfn: Mfn): boolean {
    checkMfn('lru', 'has', mfn, this.frames);
    return this.cache.has(mfn);
  }

  /** Tracks `mfn` as the most recently used; InvariantError when already tracked. */
  insert(mfn: Mfn): void {
    checkMfn('lru', 'insert', mfn, this.frames);
    invariant(!this.cache.has(mfn), `lru.insert: mfn ${mfn} already tracked`);
    this.cache.set(mfn, true);
  }

  /** Stops tracking `mfn`; no-op when untracked. */
  remove(mfn: Mfn): void {
    checkMfn('lru', 'remove', mfn, this.frames);
    this.cache.delete(mfn);
  }

  /** Makes `mfn` the most recently used; no-op when untracked. */
  touch(mfn: Mfn): void {
    checkMfn('lru', 'touch', mfn, this.frames);
    this.cache.get(mfn);
  }

  /** The least recently used frame (still tracked), or INVALID_MFN when none is tracked. */
  victim(): Mfn {
    if (this.cache.size === 0) return INVALID_MFN;
    for (const mfn of this.cache.rkeys()) return mfn as Mfn;
    return INVALID_MFN;
  }

  /** Forgets every frame. */
  reset(): void {
    this.cache.clear();
  }
}
