import { INVALID_MFN, invariant, Prng, type EvictionPolicy, type Mfn } from '@pagevisor/types';
import { checkFramesOption, checkMfn } from './check-frame.js';

/** Options of {@link RandomPolicy}. */
export interface RandomPolicyOptions {
  /** Machine frames of the host: every mfn given to the policy is below this. */
  readonly frames: number;
  /** Seed of the policy's {@link Prng}; default 0. Equal seeds and calls give equal victims. */
  readonly seed?: number;
}

/** Default options of {@link RandomPolicy} other than `frames`. */
export const RANDOM_POLICY_DEFAULTS = { seed: 0 } as const;

/** Marks an untracked frame in the position array. */
const NONE = -1;

/**
 * Uniform random choice among tracked frames, from a seeded {@link Prng}: each `victim()` call
 * draws afresh (two calls may name different frames; whichever the hypervisor evicts it removes).
 * Tracked frames sit in a dense Int32Array with each frame's position in another, so insert and
 * remove (swap with the last) and victim are O(1) and allocate nothing. `touch` is a no-op
 * beyond checking its argument: random ignores recency.
 *
 * Errors: an mfn outside `[0, frames)` and inserting a tracked frame throw InvariantError;
 * `remove` of an untracked frame is a no-op, as in {@link ClockPolicy}.
 */
export class RandomPolicy implements EvictionPolicy {
  /** Always `"random"`. */
  readonly name = 'random';
  /** Frames the policy was sized for. */
  readonly frames: number;
  /** The seed `reset()` restarts the generator from. */
  readonly seed: number;
  /** Tracked frames in `[0, count)`, in no particular order. */
  private readonly members: Int32Array;
  /** Index of each frame in `members`, NONE when untracked. */
  private readonly position: Int32Array;
  private count = 0;
  private prng: Prng;

  /** Creates an empty policy for frames `[0, opts.frames)`; EINVAL when `frames` is not in [1, 2^31). */
  constructor(opts: RandomPolicyOptions) {
    checkFramesOption('random', opts.frames);
    this.frames = opts.frames;
    this.seed = opts.seed ?? RANDOM_POLICY_DEFAULTS.seed;
    this.members = new Int32Array(opts.frames);
    this.position = new Int32Array(opts.frames).fill(NONE);
    this.prng = new Prng(this.seed);
  }

  /** Frames tracked. */
  get size(): number {
    return this.count;
  }

  /** Whether `mfn` is tracked. */
  has(mfn: Mfn): boolean {
    checkMfn('random', 'has', mfn, this.frames);
    return this.position[mfn] !== NONE;
  }

  /** Tracks `mfn`; InvariantError when already tracked. */
  insert(mfn: Mfn): void {
    checkMfn('random', 'insert', mfn, this.frames);
    invariant(this.position[mfn] === NONE, `random.insert: mfn ${mfn} already tracked`);
    this.members[this.count] = mfn;
    this.position[mfn] = this.count;
    this.count++;
  }

  /** Stops tracking `mfn` (the last tracked frame takes its place); no-op when untracked. */
  remove(mfn: Mfn): void {
    checkMfn('random', 'remove', mfn, this.frames);
    const at = this.position[mfn]!;
    if (at === NONE) return;
    const last = this.members[--this.count]!;
    this.members[at] = last;
    this.position[last] = at;
    this.position[mfn] = NONE;
  }

  /** Checks `mfn` only: random choice ignores accesses. */
  touch(mfn: Mfn): void {
    checkMfn('random', 'touch', mfn, this.frames);
  }

  /** A tracked frame drawn uniformly (it stays tracked), or INVALID_MFN when none is tracked. */
  victim(): Mfn {
    if (this.count === 0) return INVALID_MFN;
    return this.members[this.prng.nextInt(this.count)]! as Mfn;
  }

  /** Forgets every frame and restarts the generator from `seed`, so a reset policy replays like a new one. */
  reset(): void {
    this.position.fill(NONE);
    this.count = 0;
    this.prng = new Prng(this.seed);
  }
}
