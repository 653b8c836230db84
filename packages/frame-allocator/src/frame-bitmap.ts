/**
 * One bit per frame in a `Uint32Array`: the free bitmap of the allocators. Blocks of 2^order
 * aligned frames are set or cleared in O(1) below order 5 and by a word fill above.
 */
export class FrameBitmap {
  /** The bits, frame `i` at bit `i & 31` of word `i >>> 5`. */
  readonly words: Uint32Array;

  /** A bitmap of `frames` clear bits. */
  constructor(frames: number) {
    this.words = new Uint32Array(Math.ceil(frames / 32));
  }

  /** True when the bit of frame `i` is set. */
  get(i: number): boolean {
    return ((this.words[i >>> 5] >>> (i & 31)) & 1) !== 0;
  }

  /** Sets the bit of frame `i`. */
  set(i: number): void {
    this.words[i >>> 5] |= 1 << (i & 31);
  }

  /** Clears the bit of frame `i`. */
  clear(i: number): void {
    this.words[i >>> 5] &= ~(1 << (i & 31));
  }

  /** Sets (`value` true) or clears the bits of the 2^order frames from `start`, which is aligned to 2^order. */
  fillBlock(start: number, order: number, value: boolean): void {
    if (order >= 5) {
      const first = start >>> 5;
      this.words.fill(value ? 0xffffffff : 0, first, first + (1 << (order - 5)));
      return;
    }
    // An aligned block below order 5 lies inside one word.
    const mask = ((1 << (1 << order)) - 1) << (start & 31);
    if (value) this.words[start >>> 5] |= mask;
    else this.words[start >>> 5] &= ~mask;
  }
}

/**
 * Package-internal (not exported by index.ts): an allocator's free bitmap, for the frame table
 * to find the frames an allocator already holds without asking for each of 2^30 frames.
 */
export const FREE_BITS = Symbol('FrameAllocator.freeBits');

/** Frame `i` below `below` is free when its bit in `words` is set; every frame from `below` up is free. */
export interface FreeBits {
  readonly words: Uint32Array;
  readonly below: number;
}

/**
 * Calls `fn` with every frame below `frames` that is not free by `bits`, in ascending order,
 * skipping whole words of free frames.
 */
export function forEachHeld(bits: FreeBits, frames: number, fn: (mfn: number) => void): void {
  const end = Math.min(bits.below, frames);
  const words = bits.words;
  for (let w = 0; w * 32 < end; w++) {
    const word = words[w]!;
    if (word === 0xffffffff) continue;
    const last = Math.min(end, w * 32 + 32);
    for (let f = w * 32; f < last; f++) if (((word >>> (f & 31)) & 1) === 0) fn(f);
  }
}
