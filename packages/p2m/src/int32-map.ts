import { InvariantError } from '@pagevisor/types';

const EMPTY = -1;
const TOMBSTONE = -2;

/**
 * A map from non-negative Int32 keys to Int32 values in two typed arrays: open addressing with
 * linear probing, load at most one half (tombstones included), rebuilt to about four times its
 * live entries when full (nothing at all until the first entry). Nothing is allocated per
 * entry; only a rebuild allocates.
 */
export class Int32Map {
  private keys = new Int32Array(0);
  private vals = new Int32Array(0);
  private shift = 32;
  private live = 0;
  private tombstones = 0;

  /** Entries held. */
  get size(): number {
    return this.live;
  }

  /** Bytes of the two arrays. */
  get byteLength(): number {
    return this.keys.byteLength + this.vals.byteLength;
  }

  /** The value of `key`, or -1 when it has none. */
  get(key: number): number {
    const i = this.find(key);
    return i < 0 ? -1 : this.vals[i]!;
  }

  /** Sets the value of `key` (a non-negative Int32). */
  set(key: number, value: number): void {
    if (key >>> 0 !== key || key > 0x7fffffff) throw new InvariantError(`Int32Map: key ${key} is not a non-negative Int32`);
    const found = this.find(key);
    if (found >= 0) {
      this.vals[found] = value;
      return;
    }
    if ((this.live + this.tombstones + 1) * 2 > this.keys.length) this.rebuild();
    const keys = this.keys;
    const mask = keys.length - 1;
    let i = this.home(key);
    while (keys[i]! >= 0) i = (i + 1) & mask;
    if (keys[i] === TOMBSTONE) this.tombstones--;
    keys[i] = key;
    this.vals[i] = value;
    this.live++;
  }

  /** Drops `key`; false when it has no entry. */
  delete(key: number): boolean {
    const i = this.find(key);
    if (i < 0) return false;
    this.keys[i] = TOMBSTONE;
    this.tombstones++;
    this.live--;
    return true;
  }

  /** Calls `fn` for every entry (in no particular order). */
  forEach(fn: (key: number, value: number) => void): void {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i]! >= 0) fn(this.keys[i]!, this.vals[i]!);
  }

  private home(key: number): number {
    // Fibonacci hashing: the top bits of the product spread sequential keys.
    return Math.imul(key, 0x9e3779b1) >>> this.shift;
  }

  private find(key: number): number {
    const keys = this.keys;
    if (keys.length === 0) return -1;
    const mask = keys.length - 1;
    // Terminates: the load limit keeps EMPTY slots.
    for (let i = this.home(key); keys[i] !== EMPTY; i = (i + 1) & mask) if (keys[i] === key) return i;
    return -1;
  }

  private rebuild(): void {
    const oldKeys = this.keys;
    const oldVals = this.vals;
    let capacity = 16;
    while (capacity < (this.live + 1) * 4) capacity *= 2;
    this.keys = new Int32Array(capacity).fill(EMPTY);
    this.vals = new Int32Array(capacity);
    this.shift = 32 - Math.log2(capacity);
    this.live = 0;
    this.tombstones = 0;
    for (let i = 0; i < oldKeys.length; i++) if (oldKeys[i]! >= 0) this.set(oldKeys[i]!, oldVals[i]!);
  }
}
