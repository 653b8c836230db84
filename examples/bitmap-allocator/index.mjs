// @ts-check
/**
 * bitmap: a frame allocator over a bitmap of free frames (bit set = free, 32 frames a word).
 *
 * - `alloc(0)` is next-fit: it searches from the frame after the last single frame it handed out,
 *   word by word (a zero word is skipped whole), wrapping around once.
 * - `alloc(order > 0)` is first-fit over aligned runs: the lowest block of 2^order free frames
 *   starting at a multiple of 2^order. Below order 5 a run lies inside one word and a few shifts
 *   and masks find every aligned run of the word at once; from order 5 up it is 2^(order-5)
 *   consecutive all-free words.
 * - `free(mfn, order)` takes a block as allocated, or an aligned part of an allocated block (the
 *   rest stays allocated, as the buddy allocator lets single pages of a superpage go); a byte per
 *   frame records where each allocated block starts and its order, so freeing a free frame, a
 *   block of the wrong order or frames never handed out is caught (InvariantError).
 *
 * State: the bitmap (1 bit a frame) and the block-head bytes (1 byte a frame), 1.125 bytes a
 * frame. Errors as the built-ins: a bad order to `alloc` is HypervisorError EINVAL, an mfn outside
 * the machine a RangeError, a bad `free` an InvariantError; out of frames is INVALID_MFN.
 */
import { definePlugin, HypervisorError, INVALID_MFN, InvariantError, MAX_ORDER, PluginError } from '@pagevisor/types';

/** @typedef {import('@pagevisor/types').FrameAllocator} FrameAllocator */
/** @typedef {import('@pagevisor/types').Mfn} Mfn */

/** `head[mfn]`: the frame starts no allocated block. */
const NOT_HEAD = 0xff;
const FULL = 0xffffffff;
/** For orders 1..4: bits at the multiples of 2^order within a word. */
const ALIGNED = [0xffffffff, 0x55555555, 0x11111111, 0x01010101, 0x00010001];

/** Trailing zero bits of a non-zero 32-bit `x`. @param {number} x */
function ctz(x) {
  return 31 - Math.clz32(x & -x);
}

/**
 * @implements {FrameAllocator}
 */
export class BitmapAllocator {
  /** @readonly */ name = 'bitmap';

  /** @param {number} totalFrames frames of the machine (1 .. 2^31 - 1), all free at start. */
  constructor(totalFrames) {
    if (!(Number.isInteger(totalFrames) && totalFrames >= 1 && totalFrames <= 0x7fffffff)) {
      throw new RangeError(`totalFrames must be an integer in 1..${0x7fffffff}, got ${totalFrames}`);
    }
    /** @readonly */
    this.totalFrames = totalFrames;
    /** Largest order a block of this machine can have. @readonly */
    this.maxOrder = Math.min(MAX_ORDER, 31 - Math.clz32(totalFrames));
    /** Frame `i` is free when bit `i & 31` of word `i >>> 5` is set. */
    this.words = new Uint32Array(Math.ceil(totalFrames / 32)).fill(FULL);
    // Bits past the last frame stay clear: never free, never part of a run.
    if (totalFrames % 32 !== 0) this.words[this.words.length - 1] = (2 ** (totalFrames % 32) - 1) >>> 0;
    /** Order of the allocated block starting at each frame, NOT_HEAD elsewhere. */
    this.head = new Uint8Array(totalFrames).fill(NOT_HEAD);
    this.freeCount = totalFrames;
    /** Where the next order-0 search starts. */
    this.cursor = 0;
  }

  /** Frames currently free. */
  get freeFrames() {
    return this.freeCount;
  }

  /**
   * Allocates 2^order contiguous frames starting at a multiple of 2^order; the first, or
   * INVALID_MFN when no such run is free. HypervisorError EINVAL for an order not in 0..MAX_ORDER.
   * @param {number} order
   * @returns {Mfn}
   */
  alloc(order) {
    if (!(order >>> 0 === order && order <= MAX_ORDER)) throw new HypervisorError('EINVAL', 'alloc', `order ${order} is not an integer in 0..${MAX_ORDER}`);
    const size = 2 ** order;
    if (order > this.maxOrder || size > this.freeCount) return INVALID_MFN;
    const mfn = order === 0 ? this.#nextFit() : order < 5 ? this.#runInWord(order) : this.#runOfWords(order);
    if (mfn < 0) return INVALID_MFN;
    this.#fill(mfn, order, false);
    this.head[mfn] = order;
    this.freeCount -= size;
    if (order === 0) this.cursor = mfn + 1 === this.totalFrames ? 0 : mfn + 1;
    return /** @type {Mfn} */ (mfn);
  }

  /**
   * Returns the block of 2^order frames at `mfn`: a block as allocated, or an aligned part of one.
   * @param {Mfn} mfn
   * @param {number} order
   */
  free(mfn, order) {
    this.#checkMfn(mfn, 'free');
    if (!(order >>> 0 === order && order <= MAX_ORDER)) throw new InvariantError(`free(${mfn}, ${order}): order is not an integer in 0..${MAX_ORDER}`);
    const size = 2 ** order;
    if (mfn % size !== 0) throw new InvariantError(`free(${mfn}, ${order}): a block of order ${order} starts at a multiple of ${size}`);
    if (mfn + size > this.totalFrames) throw new InvariantError(`free(${mfn}, ${order}): the block runs past the ${this.totalFrames} frames`);
    if (this.head[mfn] !== order) this.#splitAllocated(mfn, order);
    this.head[mfn] = NOT_HEAD;
    this.#fill(mfn, order, true);
    this.freeCount += size;
  }

  /** @param {Mfn} mfn */
  isFree(mfn) {
    this.#checkMfn(mfn, 'isFree');
    return ((this.words[mfn >>> 5] >>> (mfn & 31)) & 1) === 1;
  }

  /** Bytes of typed arrays held. */
  metadataBytes() {
    return this.words.byteLength + this.head.byteLength;
  }

  /**
   * Broken invariants, in words (empty when sound): free bits match freeFrames, no bit past the
   * last frame, every allocated frame inside exactly one allocated block, no block head on a free
   * frame. O(totalFrames).
   * @returns {string[]}
   */
  audit() {
    /** @type {string[]} */
    const problems = [];
    let free = 0;
    for (let w = 0; w < this.words.length; w++) {
      let x = this.words[w];
      for (; x !== 0; x &= x - 1) free++;
    }
    if (free !== this.freeCount) problems.push(`${free} free bits, freeFrames says ${this.freeCount}`);
    const tail = this.totalFrames % 32;
    if (tail !== 0 && this.words[this.words.length - 1] >>> tail !== 0) problems.push('bits past the last frame are set');
    let covered = 0;
    for (let m = 0; m < this.totalFrames; m++) {
      const isFree = this.isFree(/** @type {Mfn} */ (m));
      if (covered > 0) {
        if (this.head[m] !== NOT_HEAD) problems.push(`mfn ${m}: a block head inside another block`);
        if (isFree) problems.push(`mfn ${m}: free inside an allocated block`);
        covered--;
        continue;
      }
      const order = this.head[m];
      if (order === NOT_HEAD) {
        if (!isFree) problems.push(`mfn ${m}: allocated but in no allocated block`);
        continue;
      }
      if (isFree) problems.push(`mfn ${m}: free but heads a block of order ${order}`);
      if (m % 2 ** order !== 0 || m + 2 ** order > this.totalFrames) problems.push(`mfn ${m}: a misplaced block of order ${order}`);
      covered = 2 ** order - 1;
    }
    return problems.map((p) => `bitmap: ${p}`);
  }

  /** The first free frame at or after the cursor, wrapping around; there is one. */
  #nextFit() {
    const words = this.words;
    const last = words.length - 1;
    let w = this.cursor >>> 5;
    // The start word from the cursor's bit up, the other words, then the start word whole.
    let bits = words[w] & (FULL << (this.cursor & 31));
    for (let i = 0; i <= words.length; i++) {
      if (bits !== 0) return w * 32 + ctz(bits);
      w = w === last ? 0 : w + 1;
      bits = words[w];
    }
    return -1;
  }

  /** The lowest aligned run of 2^order (1..4) free frames, inside one word. @param {number} order */
  #runInWord(order) {
    const words = this.words;
    const width = 1 << order;
    for (let w = 0; w < words.length; w++) {
      let m = words[w];
      if (m === 0) continue;
      // Bit i of m ends up set when bits i .. i + width - 1 are all free.
      for (let s = 1; s < width; s <<= 1) m &= m >>> s;
      m &= ALIGNED[order];
      if (m !== 0) return w * 32 + ctz(m);
    }
    return -1;
  }

  /** The lowest aligned run of 2^(order-5) all-free words. @param {number} order */
  #runOfWords(order) {
    const words = this.words;
    const span = 2 ** (order - 5);
    for (let start = 0; start + span <= words.length; start += span) {
      let w = start;
      while (w < start + span && words[w] === FULL) w++;
      if (w === start + span) return start * 32;
    }
    return -1;
  }

  /** Sets (free) or clears the bits of the aligned block (mfn, order). @param {number} mfn @param {number} order @param {boolean} free */
  #fill(mfn, order, free) {
    if (order >= 5) {
      this.words.fill(free ? FULL : 0, mfn >>> 5, (mfn >>> 5) + 2 ** (order - 5));
      return;
    }
    const mask = ((2 ** (1 << order) - 1) << (mfn & 31)) >>> 0;
    if (free) this.words[mfn >>> 5] |= mask;
    else this.words[mfn >>> 5] &= ~mask;
  }

  /**
   * Makes the aligned block (mfn, order) an allocated block of its own when it lies inside a larger
   * allocated block, whose other parts become allocated blocks too; throws when it does not.
   * @param {number} mfn @param {number} order
   */
  #splitAllocated(mfn, order) {
    if (this.isFree(/** @type {Mfn} */ (mfn))) throw new InvariantError(`free(${mfn}, ${order}): frame ${mfn} is already free`);
    let k = order + 1;
    let head = 0;
    for (; k <= this.maxOrder; k++) {
      head = mfn - (mfn % 2 ** k);
      if (this.head[head] === k) break;
    }
    if (k > this.maxOrder) {
      const own = this.head[mfn];
      const why = own !== NOT_HEAD ? `it was allocated with order ${own}` : 'it is not the start of an allocated block';
      throw new InvariantError(`free(${mfn}, ${order}): not an allocated block of order ${order}: ${why}`);
    }
    this.head[head] = NOT_HEAD;
    while (k > order) {
      k--;
      const upper = head + 2 ** k;
      if (mfn >= upper) {
        this.head[head] = k;
        head = upper;
      } else {
        this.head[upper] = k;
      }
    }
  }

  /** @param {number} mfn @param {string} op */
  #checkMfn(mfn, op) {
    if (!(mfn >>> 0 === mfn && mfn < this.totalFrames)) throw new RangeError(`${op}: mfn ${mfn} outside the ${this.totalFrames} frames of the machine`);
  }
}

/** The plugin: `"machine": { "allocator": "./index.mjs" }`. It takes no options. */
export default definePlugin({
  kind: 'allocator',
  name: 'bitmap',
  options: (options) => {
    const unknown = Object.keys(options);
    if (unknown.length > 0) throw new PluginError('bitmap', 'options refused', unknown.map((path) => ({ path, message: 'the bitmap allocator takes no options' })));
    return options;
  },
  create: (_options, context) => new BitmapAllocator(context.frames),
});
