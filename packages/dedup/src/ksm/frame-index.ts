const EMPTY = -1;
const MIN_CAPACITY = 16;

/**
 * Map from machine frame to stable node: which frames are KSM pages, and whose. An open-addressing
 * hash table with linear probing and backward-shift deletion (no tombstones) in two Int32Arrays,
 * at most 3/4 full, sized to the number of KSM pages rather than to machine memory: 11 to 21
 * bytes per KSM page.
 * `get` is O(1) and allocates nothing: the host calls `remove(mfn)` on every write to a private frame.
 */
export class FrameIndex {
  private keys: Int32Array;
  private vals: Int32Array;
  private mask: number;
  private count = 0;

  constructor(capacity = MIN_CAPACITY) {
    const cap = Math.max(MIN_CAPACITY, 1 << Math.ceil(Math.log2(capacity)));
    this.keys = new Int32Array(cap).fill(EMPTY);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
  }

  /** Frames indexed. */
  get size(): number {
    return this.count;
  }

  /** Bytes of the table. */
  get bytes(): number {
    return this.keys.byteLength + this.vals.byteLength;
  }

  /** Node of frame `mfn`, or -1. */
  get(mfn: number): number {
    if (mfn < 0) return -1;
    const keys = this.keys;
    const mask = this.mask;
    for (let i = slotOf(mfn, mask); ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === mfn) return this.vals[i]!;
      if (k === EMPTY) return -1;
    }
  }

  /** Maps `mfn` (>= 0, not yet indexed) to `node`. */
  set(mfn: number, node: number): void {
    if ((this.count + 1) * 4 > this.keys.length * 3) this.resize(this.keys.length * 2);
    const keys = this.keys;
    const mask = this.mask;
    let i = slotOf(mfn, mask);
    while (keys[i] !== EMPTY) {
      if (keys[i] === mfn) throw new Error(`frame index: mfn ${mfn} indexed twice`);
      i = (i + 1) & mask;
    }
    keys[i] = mfn;
    this.vals[i] = node;
    this.count++;
  }

  /** Forgets `mfn`; returns its node, or -1 when it was not indexed. */
  delete(mfn: number): number {
    if (mfn < 0) return -1;
    const keys = this.keys;
    const vals = this.vals;
    const mask = this.mask;
    let i = slotOf(mfn, mask);
    for (; ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === mfn) break;
      if (k === EMPTY) return -1;
    }
    const node = vals[i]!;
    // Backward shift: move later entries of the cluster into the hole when their home allows it.
    let hole = i;
    for (let j = (i + 1) & mask; keys[j] !== EMPTY; j = (j + 1) & mask) {
      const home = slotOf(keys[j]!, mask);
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        keys[hole] = keys[j]!;
        vals[hole] = vals[j]!;
        hole = j;
      }
    }
    keys[hole] = EMPTY;
    this.count--;
    if (this.keys.length > MIN_CAPACITY && this.count * 6 < this.keys.length) this.resize(this.keys.length / 2);
    return node;
  }

  /** Empties the index. */
  clear(): void {
    this.keys = new Int32Array(MIN_CAPACITY).fill(EMPTY);
    this.vals = new Int32Array(MIN_CAPACITY);
    this.mask = MIN_CAPACITY - 1;
    this.count = 0;
  }

  /** Calls `fn` on every (mfn, node) pair. Not for the hot path. */
  forEach(fn: (mfn: number, node: number) => void): void {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] !== EMPTY) fn(this.keys[i]!, this.vals[i]!);
  }

  private resize(capacity: number): void {
    const oldKeys = this.keys;
    const oldVals = this.vals;
    this.keys = new Int32Array(capacity).fill(EMPTY);
    this.vals = new Int32Array(capacity);
    this.mask = capacity - 1;
    const keys = this.keys;
    for (let s = 0; s < oldKeys.length; s++) {
      const k = oldKeys[s]!;
      if (k === EMPTY) continue;
      let i = slotOf(k, this.mask);
      while (keys[i] !== EMPTY) i = (i + 1) & this.mask;
      keys[i] = k;
      this.vals[i] = oldVals[s]!;
    }
  }
}

function slotOf(mfn: number, mask: number): number {
  let h = Math.imul(mfn ^ (mfn >>> 16), 0x45d9f3b);
  h ^= h >>> 16;
  return h & mask;
}
