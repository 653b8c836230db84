import {
  HypervisorError,
  INVALID_MFN,
  InvariantError,
  type FrameAllocator,
  type Mfn,
} from '@pagevisor/types';
import { checkAllocOrder, checkMfn, checkTotalFrames } from './check.js';
import { FREE_BITS, FrameBitmap, type FreeBits } from './frame-bitmap.js';

/**
 * The simplest allocator: a stack of free frames in an Int32Array plus a free bitmap
 * (about 4.1 bytes per frame). It hands out single frames only: `alloc(order > 0)` is refused
 * with HypervisorError EINVAL, since a stack knows nothing of contiguity. The stack is LIFO
 * and starts with the lowest frame on top, so allocation is deterministic.
 *
 * The frames never handed out are the stack's bottom, `totalFrames - 1` down to a watermark,
 * in that order: they are kept as the watermark alone, so the stack holds the frames freed
 * since, the bitmap says which frames below the watermark are free, and both start as zeros
 * (a machine of 2^30 frames touches their memory only as frames are freed).
 */
export class FreeListAllocator implements FrameAllocator {
  /** Name of the strategy. */
  readonly name = 'free-list';
  /** Frames of the machine, all managed. */
  readonly totalFrames: number;

  /** Frames freed since they were handed out, the last freed on top. */
  readonly #stack: Int32Array;
  #top = 0;
  /** Frames from here up were never handed out (all free); the lowest of them goes next. */
  #fresh = 0;
  /** Below {@link #fresh}: bit set when the frame is free (it is on the stack). */
  readonly #freeBits: FrameBitmap;

  /** @param totalFrames frames of the machine (1 .. 2^31 - 1), all free at start. */
  constructor(totalFrames: number) {
    checkTotalFrames(totalFrames);
    this.totalFrames = totalFrames;
    this.#stack = new Int32Array(totalFrames);
    this.#freeBits = new FrameBitmap(totalFrames);
  }

  /** Frames currently free. */
  get freeFrames(): number {
    return this.#top + (this.totalFrames - this.#fresh);
  }

  alloc(order: number): Mfn {
    checkAllocOrder(order);
    if (order !== 0) {
      throw new HypervisorError('EINVAL', 'alloc', `the free-list allocator hands out single frames only, not order ${order}`);
    }
    if (this.#top === 0) return this.#fresh < this.totalFrames ? (this.#fresh++ as Mfn) : INVALID_MFN;
    const mfn = this.#stack[--this.#top]!;
    this.#freeBits.clear(mfn);
    return mfn as Mfn;
  }

  free(mfn: Mfn, order: number): void {
    checkMfn(mfn, this.totalFrames, 'free');
    if (order !== 0) {
      throw new InvariantError(`free(${mfn}, ${order}): the free-list allocator only hands out order 0`);
    }
    if (mfn >= this.#fresh || this.#freeBits.get(mfn)) throw new InvariantError(`free(${mfn}, 0): frame ${mfn} is already free`);
    this.#freeBits.set(mfn);
    this.#stack[this.#top++] = mfn;
  }

  isFree(mfn: Mfn): boolean {
    checkMfn(mfn, this.totalFrames, 'isFree');
    return mfn >= this.#fresh || this.#freeBits.get(mfn);
  }

  /** Package-internal: which frames are free, for the frame table to find the others fast. */
  [FREE_BITS](): FreeBits {
    return { words: this.#freeBits.words, below: this.#fresh };
  }

  /** Bytes of typed arrays this allocator holds. */
  metadataBytes(): number {
    return this.#stack.byteLength + this.#freeBits.words.byteLength;
  }
}
