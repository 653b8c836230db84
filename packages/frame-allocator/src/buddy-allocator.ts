import {
  INVALID_MFN,
  InvariantError,
  MAX_ORDER,
  type FrameAllocator,
  type Mfn,
} from '@pagevisor/types';
import { checkAllocOrder, checkMfn, checkTotalFrames } from './check.js';
import { FREE_BITS, FrameBitmap, type FreeBits } from './frame-bitmap.js';

/** `block[mfn]`: the frame does not start a block (inside one, or not managed). */
const NOT_HEAD = 0;
/** `block[mfn]`: the frame starts a free block; the low bits hold its order. */
const FREE_HEAD = 0x40;
/** `block[mfn]`: the frame starts an allocated block; the low bits hold its order. */
const ALLOC_HEAD = 0x80;
const ORDER_BITS = 0x3f;
const NIL = -1;

/**
 * Package-internal (not exported by index.ts): lends the free-list links to the frame table,
 * once. See {@link BuddyAllocator} and `ArrayFrameTable`.
 */
export const LEND_LINKS = Symbol('BuddyAllocator.lendLinks');

/** The buddy's per-frame links, which mean something at free block heads only. */
export interface BuddyLinks {
  readonly next: Int32Array;
  readonly prev: Int32Array;
}

/**
 * A binary buddy allocator like Xen's `page_alloc`: one free list per order 0..MAX_ORDER,
 * allocation splits the smallest free block that fits, freeing merges a block with its buddy
 * while the buddy is a free block of the same order.
 *
 * Frames `firstFrame .. totalFrames - 1` are managed, carved at start into maximal aligned
 * blocks (any size works, not only powers of two); frames below `firstFrame` are never free.
 * A block of order k always starts at a multiple of 2^k.
 *
 * Freeing takes the block as allocated, or an aligned part of an allocated block (as Xen frees
 * single pages of a superpage); the rest of that block stays allocated. Freeing a free frame, a
 * block of the wrong order or a frame that was never handed out is an {@link InvariantError}.
 *
 * State, in typed arrays only: per frame an Int32 next and prev link (used at free block
 * heads), a byte saying whether it starts a free or allocated block and its order, and a free
 * bit — about 9.1 bytes per frame. The links are written at free frames only, so an
 * `ArrayFrameTable` over this allocator keeps its m2p and refcount of allocated frames in them,
 * as Xen's `page_info` holds either free-list links or owner and count: 1.1 bytes per frame
 * of the allocator's own then. Allocation is deterministic: the smallest free block that
 * fits is split, keeping its low half; free lists are LIFO and start lowest address first.
 */
export class BuddyAllocator implements FrameAllocator {
  /** Name of the strategy. */
  readonly name = 'buddy';
  /** Frames of the machine, 0 .. totalFrames - 1 (those below firstFrame are never free). */
  readonly totalFrames: number;
  /** First managed frame. */
  readonly firstFrame: number;
  /** Largest order of a block this machine holds (at most MAX_ORDER). */
  readonly maxOrder: number;

  #freeFrames = 0;
  readonly #next: Int32Array;
  readonly #prev: Int32Array;
  readonly #block: Uint8Array;
  readonly #freeBits: FrameBitmap;
  #linksLent = false;
  /** First block of each order's free list, NIL when empty. */
  readonly #heads = new Int32Array(MAX_ORDER + 1).fill(NIL);
  /** Blocks on each order's free list. */
  readonly #counts = new Uint32Array(MAX_ORDER + 1);

  /**
   * @param totalFrames frames of the machine (1 .. 2^31 - 1).
   * @param firstFrame first frame to manage (default 0); lower frames stay allocated for good.
   */
  constructor(totalFrames: number, firstFrame = 0) {
    checkTotalFrames(totalFrames);
    if (!(Number.isInteger(firstFrame) && firstFrame >= 0 && firstFrame <= totalFrames)) {
      throw new RangeError(`firstFrame must be an integer in 0..${totalFrames}, got ${firstFrame}`);
    }
    this.totalFrames = totalFrames;
    this.firstFrame = firstFrame;
    this.#next = new Int32Array(totalFrames);
    this.#prev = new Int32Array(totalFrames);
    this.#block = new Uint8Array(totalFrames);
    this.#freeBits = new FrameBitmap(totalFrames);

    // Carve from the top down so that, the lists being LIFO, the lowest block of each order is
    // handed out first. Each block is the largest aligned one ending at `end`: a block of order k
    // ends at a multiple of 2^k, which gives the same maximal aligned blocks as a bottom-up carve.
    let maxOrder = 0;
    let end = totalFrames;
    while (end > firstFrame) {
      // Largest aligned block ending at `end`: limited by end's alignment and the room left.
      const order = Math.min(MAX_ORDER, 31 - Math.clz32(end - firstFrame), ctz(end));
      const start = end - (1 << order);
      this.#push(order, start);
      this.#freeBits.fillBlock(start, order, true);
      this.#freeFrames += 1 << order;
      if (order > maxOrder) maxOrder = order;
      end = start;
    }
    this.maxOrder = maxOrder;
  }

  /** Frames currently free. */
  get freeFrames(): number {
    return this.#freeFrames;
  }

  /**
   * The links, for the first frame table over this allocator to hold its per-frame words of
   * allocated frames in (undefined once lent). The allocator writes them at free frames only.
   */
  [LEND_LINKS](): BuddyLinks | undefined {
    if (this.#linksLent) return undefined;
    this.#linksLent = true;
    return { next: this.#next, prev: this.#prev };
  }

  alloc(order: number): Mfn {
    checkAllocOrder(order);
    let k = order;
    while (k <= this.maxOrder && this.#heads[k] === NIL) k++;
    if (k > this.maxOrder) return INVALID_MFN;
    const mfn = this.#heads[k]!;
    this.#remove(k, mfn);
    // Keep the lower half each time, so a split block is handed out from its low end up.
    while (k > order) {
      k--;
      this.#push(k, mfn + (1 << k));
    }
    this.#block[mfn] = ALLOC_HEAD | order;
    this.#freeBits.fillBlock(mfn, order, false);
    this.#freeFrames -= 1 << order;
    return mfn as Mfn;
  }

  free(mfn: Mfn, order: number): void {
    checkMfn(mfn, this.totalFrames, 'free');
    if (!(order >>> 0 === order && order <= MAX_ORDER)) {
      throw new InvariantError(`free(${mfn}, ${order}): order is not an integer in 0..${MAX_ORDER}`);
    }
    if (mfn % (1 << order) !== 0) {
      throw new InvariantError(`free(${mfn}, ${order}): a block of order ${order} starts at a multiple of ${1 << order}`);
    }
    if (this.#block[mfn] !== (ALLOC_HEAD | order)) this.#splitAllocated(mfn, order);

    this.#block[mfn] = NOT_HEAD;
    this.#freeBits.fillBlock(mfn, order, true);
    this.#freeFrames += 1 << order;
    let head = mfn as number;
    let k = order;
    while (k < this.maxOrder) {
      const buddy = head ^ (1 << k);
      if (buddy >= this.totalFrames || this.#block[buddy] !== (FREE_HEAD | k)) break;
      this.#remove(k, buddy);
      head &= buddy;
      k++;
    }
    this.#push(k, head);
  }

  isFree(mfn: Mfn): boolean {
    checkMfn(mfn, this.totalFrames, 'isFree');
    return this.#freeBits.get(mfn);
  }

  /** Package-internal: which frames are free, for the frame table to find the others fast. */
  [FREE_BITS](): FreeBits {
    return { words: this.#freeBits.words, below: this.totalFrames };
  }

  /** Blocks on the free list of `order` (0 for orders beyond maxOrder). */
  freeBlocks(order: number): number {
    return order >>> 0 === order && order <= MAX_ORDER ? this.#counts[order]! : 0;
  }

  /** Bytes of typed arrays this allocator holds (the links too, lent or not). */
  metadataBytes(): number {
    return (
      this.#next.byteLength +
      this.#prev.byteLength +
      this.#block.byteLength +
      this.#freeBits.words.byteLength +
      this.#heads.byteLength +
      this.#counts.byteLength
    );
  }

  /**
   * Checks every internal invariant in O(totalFrames): free lists well linked, aligned, disjoint,
   * no two free buddies left unmerged, free bits exactly the frames of free blocks, freeFrames
   * their sum. Throws {@link InvariantError} on the first violation.
   */
  audit(): void {
    const covered = new FrameBitmap(this.totalFrames);
    let free = 0;
    for (let k = 0; k <= MAX_ORDER; k++) {
      let count = 0;
      let prev = NIL;
      for (let b = this.#heads[k]!; b !== NIL; b = this.#next[b]!) {
        const where = `free block ${b} of order ${k}`;
        if (k > this.maxOrder) throw new InvariantError(`${where} above maxOrder ${this.maxOrder}`);
        if (b < this.firstFrame || b + (1 << k) > this.totalFrames) throw new InvariantError(`${where} outside the managed frames`);
        if (b % (1 << k) !== 0) throw new InvariantError(`${where} is misaligned`);
        if (this.#block[b] !== (FREE_HEAD | k)) throw new InvariantError(`${where} has block byte ${this.#block[b]}`);
        if (this.#prev[b] !== prev) throw new InvariantError(`${where} has a wrong prev link`);
        const buddy = b ^ (1 << k);
        if (k < this.maxOrder && buddy < this.totalFrames && this.#block[buddy] === (FREE_HEAD | k)) {
          throw new InvariantError(`${where} and its buddy ${buddy} are both free`);
        }
        for (let f = b; f < b + (1 << k); f++) {
          if (covered.get(f)) throw new InvariantError(`frame ${f} is in two free blocks`);
          covered.set(f);
        }
        free += 1 << k;
        count++;
        prev = b;
        if (count > this.totalFrames) throw new InvariantError(`free list of order ${k} loops`);
      }
      if (count !== this.#counts[k]) throw new InvariantError(`free list of order ${k} holds ${count} blocks, counted ${this.#counts[k]}`);
    }
    if (free !== this.#freeFrames) throw new InvariantError(`free blocks hold ${free} frames, freeFrames says ${this.#freeFrames}`);
    for (let w = 0; w < covered.words.length; w++) {
      if (covered.words[w] !== this.#freeBits.words[w]) {
        throw new InvariantError(`free bits of frames ${w * 32}..${w * 32 + 31} disagree with the free lists`);
      }
    }
  }

  /**
   * Makes the aligned block (mfn, order) an allocated block of its own when it lies inside a
   * larger allocated block, whose remaining parts become allocated blocks too (the buddy
   * split, applied to allocated memory); throws when (mfn, order) is not allocated as a whole.
   */
  #splitAllocated(mfn: number, order: number): void {
    const info = this.#block[mfn]!;
    if (this.#freeBits.get(mfn)) {
      throw new InvariantError(`free(${mfn}, ${order}): frame ${mfn} is already free`);
    }
    let k = order + 1;
    let head = 0;
    for (; k <= this.maxOrder; k++) {
      head = mfn - (mfn & ((1 << k) - 1));
      if (this.#block[head] === (ALLOC_HEAD | k)) break;
    }
    if (k > this.maxOrder) {
      const why =
        (info & ALLOC_HEAD) !== 0
          ? `it was allocated with order ${info & ORDER_BITS}`
          : mfn < this.firstFrame
            ? `frames below ${this.firstFrame} are not managed`
            : `it is not the start of an allocated block`;
      throw new InvariantError(`free(${mfn}, ${order}): not an allocated block of order ${order}: ${why}`);
    }
    this.#block[head] = NOT_HEAD;
    while (k > order) {
      k--;
      const upper = head + (1 << k);
      if (mfn >= upper) {
        this.#block[head] = ALLOC_HEAD | k;
        head = upper;
      } else {
        this.#block[upper] = ALLOC_HEAD | k;
      }
    }
  }

  #push(order: number, mfn: number): void {
    const first = this.#heads[order]!;
    this.#next[mfn] = first;
    this.#prev[mfn] = NIL;
    if (first !== NIL) this.#prev[first] = mfn;
    this.#heads[order] = mfn;
    this.#block[mfn] = FREE_HEAD | order;
    this.#counts[order]++;
  }

  #remove(order: number, mfn: number): void {
    const prev = this.#prev[mfn]!;
    const next = this.#next[mfn]!;
    if (prev === NIL) this.#heads[order] = next;
    else this.#next[prev] = next;
    if (next !== NIL) this.#prev[next] = prev;
    this.#block[mfn] = NOT_HEAD;
    this.#counts[order]--;
  }
}

/** Trailing zero bits of `n` (32 for 0). */
function ctz(n: number): number {
  return n === 0 ? 32 : 31 - Math.clz32(n & -n);
}
