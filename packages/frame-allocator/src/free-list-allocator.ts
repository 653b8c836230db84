import {
  HypervisorError,
  INVALID_MFN,
  InvariantError,
  type FrameAllocator,
  type Mfn,
} from '@pagevisor/types';
import { checkAllocOrder, checkMfn, checkTotalFrames } from './check.js';
import { FrameBitmap } from './frame-bitmap.js';

/**
 * The simplest allocator: a stack of free frames in an Int32Array plus a free bitmap
 * (about 4.1 bytes per frame). It hands out single frames only: `alloc(order > 0)` is refused
 * with HypervisorError EINVAL, since a stack knows nothing of contiguity. The stack is LIFO
 * and starts with the lowest frame on top, so allocation is deterministic.
 */
export class FreeListAllocator implements FrameAllocator {
  /** Name of the strategy. */
  readonly name = 'free-list';
  /** Frames of the machine, all managed. */
  readonly totalFrames: number;

  readonly #stack: Int32Array;
  #top: number;
  readonly #freeBits: FrameBitmap;

  /** @param totalFrames frames of the machine (1 .. 2^31 - 1), all free at start. */
  constructor(totalFrames: number) {
    checkTotalFrames(totalFrames);
    this.totalFrames = totalFrames;
    this.#stack = new Int32Array(totalFrames);
    for (let i = 0; i < totalFrames; i++) this.#stack[i] = totalFrames - 1 - i;
    this.#top = totalFrames;
    this.#freeBits = new FrameBitmap(totalFrames);
    this.#freeBits.words.fill(0xffffffff);
    // Bits past the last frame stay clear, so the bitmap says exactly which frames are free.
    if (totalFrames % 32 !== 0) this.#freeBits.words[this.#freeBits.words.length - 1] = (2 ** (totalFrames % 32) - 1) >>> 0;
  }

  /** Frames currently free. */
  get freeFrames(): number {
    return this.#top;
  }

  alloc(order: number): Mfn {
    checkAllocOrder(order);
    if (order !== 0) {
      throw new HypervisorError('EINVAL', 'alloc', `the free-list allocator hands out single frames only, not order ${order}`);
    }
    if (this.#top === 0) return INVALID_MFN;
    const mfn = this.#stack[--this.#top]!;
    this.#freeBits.clear(mfn);
    return mfn as Mfn;
  }

  free(mfn: Mfn, order: number): void {
    checkMfn(mfn, this.totalFrames, 'free');
    if (order !== 0) {
      throw new InvariantError(`free(${mfn}, ${order}): the free-list allocator only hands out order 0`);
    }
    if (this.#freeBits.get(mfn)) throw new InvariantError(`free(${mfn}, 0): frame ${mfn} is already free`);
    this.#freeBits.set(mfn);
    this.#stack[this.#top++] = mfn;
  }

  isFree(mfn: Mfn): boolean {
    checkMfn(mfn, this.totalFrames, 'isFree');
    return this.#freeBits.get(mfn);
  }

  /** Bytes of typed arrays this allocator holds. */
  metadataBytes(): number {
    return this.#stack.byteLength + this.#freeBits.words.byteLength;
  }
}
