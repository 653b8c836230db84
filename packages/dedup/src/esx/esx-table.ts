import { invariant, InvariantError, type DomId, type Gfn, type Mfn } from '@pagevisor/types';
import { ESX_MAX_CAPACITY } from './esx-options.js';

/** What a slot of an {@link EsxTable} holds (one byte a slot). */
export const EsxSlot = {
  /** Never used: ends a probe sequence. */
  empty: 0,
  /** Held an entry that was removed: a probe sequence walks past it. */
  tombstone: 1,
  /** A shared, write-protected frame: `ref` is its mfn. */
  shared: 2,
  /** A hint for a page seen once, not write-protected: `dom` and `ref` (its gfn) name the page. */
  hint: 3,
} as const;

/** One of the {@link EsxSlot} values. */
export type EsxSlot = (typeof EsxSlot)[keyof typeof EsxSlot];

/** No slot (also: `slotOf` of a frame that is not a shared entry). */
export const NO_SLOT = -1;

/** Told where each hint went when the table is rebuilt, so per-page back-pointers stay right. */
export interface EsxHintMoves {
  /** The hint of `dom`'s page `gfn` now sits in `slot`. */
  hintMoved(dom: DomId, gfn: Gfn, slot: number): void;
}

/**
 * Spreads a 32-bit hash over the slot index bits, so small or sequential hashes (tests, weak
 * hashes) still get short probe sequences.
 */
function homeSlot(hash: number, mask: number): number {
  let h = Math.imul(hash ^ (hash >>> 16), 0x45d9f3b);
  h ^= h >>> 16;
  return h & mask;
}

/**
 * ESX Server's global page-sharing table: an open-addressing hash table (linear probing) keyed by
 * the 32-bit content hash, whose entries are either shared frames or hints. It lives in parallel
 * typed arrays, 11 bytes a slot: `keys` (Uint32 hash), `kinds` (Uint8 {@link EsxSlot}), `refs`
 * (Int32 mfn of a shared frame, or gfn of a hint) and `doms` (Uint16 domain of a hint), plus
 * `slotOfMfn` (Int32 a machine frame) so that finding a frame's shared entry is O(1). ESX packs
 * an entry in 16 bytes and keeps the reference count in it; here the frame table holds it.
 *
 * Probing: `for (let s = t.first(key); s !== NO_SLOT; s = t.next(s, key))` visits every entry
 * under `key`. Removing the visited slot during the walk is allowed; inserting is not (a rebuild
 * moves every slot). Nothing allocates except a rebuild.
 */
export class EsxTable {
  private keys: Uint32Array;
  private kinds: Uint8Array;
  private refs: Int32Array;
  private doms: Uint16Array;
  private readonly slotOfMfn: Int32Array;
  private mask: number;
  /** Most slots in use (entries + tombstones) before a rebuild. */
  private limit: number;
  private sharedCount = 0;
  private hintCount = 0;
  private tombstoneCount = 0;
  private rebuildCount = 0;

  /**
   * @param capacity initial slots, a power of two in [2, 2^30]
   * @param frames machine frames (sizes `slotOfMfn`)
   * @param moves told where hints go on a rebuild
   */
  constructor(
    capacity: number,
    frames: number,
    private readonly moves: EsxHintMoves,
  ) {
    invariant(
      Number.isInteger(capacity) && capacity >= 2 && capacity <= ESX_MAX_CAPACITY && (capacity & (capacity - 1)) === 0,
      `esx table: capacity ${capacity} is not a power of two in [2, 2^30]`,
    );
    this.keys = new Uint32Array(capacity);
    this.kinds = new Uint8Array(capacity);
    this.refs = new Int32Array(capacity);
    this.doms = new Uint16Array(capacity);
    this.slotOfMfn = new Int32Array(frames).fill(NO_SLOT);
    this.mask = capacity - 1;
    this.limit = limitFor(capacity);
  }

  /** Shared-frame entries. */
  get shared(): number {
    return this.sharedCount;
  }
  /** Hint entries. */
  get hints(): number {
    return this.hintCount;
  }
  /** Tombstone slots. */
  get tombstones(): number {
    return this.tombstoneCount;
  }
  /** Slots. */
  get capacity(): number {
    return this.kinds.length;
  }
  /** Rebuilds so far. */
  get rebuilds(): number {
    return this.rebuildCount;
  }
  /** Machine frames covered by `slotOfMfn`. */
  get frames(): number {
    return this.slotOfMfn.length;
  }

  /** Bytes of the typed arrays: 11 a slot plus 4 a machine frame. */
  bytes(): number {
    return (
      this.keys.byteLength + this.kinds.byteLength + this.refs.byteLength + this.doms.byteLength + this.slotOfMfn.byteLength
    );
  }

  /** Kind of slot `s`. */
  kind(s: number): EsxSlot {
    return this.kinds[s] as EsxSlot;
  }
  /** Hash key of slot `s`. */
  key(s: number): number {
    return this.keys[s]!;
  }
  /** Mfn of the shared entry in slot `s`. */
  mfn(s: number): Mfn {
    return this.refs[s] as Mfn;
  }
  /** Domain of the hint in slot `s`. */
  hintDom(s: number): DomId {
    return this.doms[s] as DomId;
  }
  /** Gfn of the hint in slot `s`. */
  hintGfn(s: number): Gfn {
    return this.refs[s] as Gfn;
  }

  /** Slot of `mfn`'s shared entry, or NO_SLOT. */
  slotOf(mfn: Mfn): number {
    return mfn >= 0 && mfn < this.slotOfMfn.length ? this.slotOfMfn[mfn]! : NO_SLOT;
  }

  /** First slot holding an entry under `key`, or NO_SLOT. */
  first(key: number): number {
    return this.scan(homeSlot(key >>> 0, this.mask), key >>> 0);
  }

  /** Next slot after `s` holding an entry under `key`, or NO_SLOT. */
  next(s: number, key: number): number {
    return this.scan((s + 1) & this.mask, key >>> 0);
  }

  private scan(from: number, key: number): number {
    const kinds = this.kinds;
    const keys = this.keys;
    const mask = this.mask;
    // Terminates: the load limit keeps at least one empty slot.
    for (let i = from; ; i = (i + 1) & mask) {
      const k = kinds[i]!;
      if (k === EsxSlot.empty) return NO_SLOT;
      if (k >= EsxSlot.shared && keys[i] === key) return i;
    }
  }

  /** Adds a shared entry for `mfn` under `key`; returns its slot. A frame entered twice is an InvariantError. */
  insertShared(key: number, mfn: Mfn): number {
    if (!(mfn >= 0 && mfn < this.slotOfMfn.length)) throw new InvariantError(`esx table: mfn ${mfn} outside machine memory`);
    if (this.slotOfMfn[mfn] !== NO_SLOT) throw new InvariantError(`esx table: mfn ${mfn} already has a shared entry`);
    const s = this.place(key, EsxSlot.shared, mfn, 0);
    this.slotOfMfn[mfn] = s;
    this.sharedCount++;
    return s;
  }

  /** Adds a hint for `dom`'s page `gfn` under `key`; returns its slot. */
  insertHint(key: number, dom: DomId, gfn: Gfn): number {
    const s = this.place(key, EsxSlot.hint, gfn, dom);
    this.hintCount++;
    return s;
  }

  /** Turns the hint in slot `s` into a shared entry for `mfn`, keeping its key (the content it hashed to). */
  hintToShared(s: number, mfn: Mfn): void {
    if (this.kinds[s] !== EsxSlot.hint) throw new InvariantError(`esx table: slot ${s} holds no hint`);
    if (this.slotOfMfn[mfn] !== NO_SLOT) throw new InvariantError(`esx table: mfn ${mfn} already has a shared entry`);
    this.kinds[s] = EsxSlot.shared;
    this.refs[s] = mfn;
    this.doms[s] = 0;
    this.slotOfMfn[mfn] = s;
    this.hintCount--;
    this.sharedCount++;
  }

  /** Empties slot `s`, which must hold an entry. */
  removeSlot(s: number): void {
    const kinds = this.kinds;
    const k = kinds[s];
    if (k === EsxSlot.shared) {
      this.slotOfMfn[this.refs[s]!] = NO_SLOT;
      this.sharedCount--;
    } else if (k === EsxSlot.hint) {
      this.hintCount--;
    } else {
      throw new InvariantError(`esx table: remove of slot ${s}, which holds no entry`);
    }
    const mask = this.mask;
    if (kinds[(s + 1) & mask] !== EsxSlot.empty) {
      kinds[s] = EsxSlot.tombstone;
      this.tombstoneCount++;
      return;
    }
    // No probe sequence runs past an empty slot, so this slot and the tombstones just before it
    // end every sequence through them: they can become empty again.
    kinds[s] = EsxSlot.empty;
    for (let i = (s - 1) & mask; kinds[i] === EsxSlot.tombstone; i = (i - 1) & mask) {
      kinds[i] = EsxSlot.empty;
      this.tombstoneCount--;
    }
  }

  /**
   * Broken invariants of the table itself: every entry reachable from its home slot, `slotOfMfn`
   * and the counts agree with the slots, one empty slot at least.
   */
  audit(): string[] {
    const problems: string[] = [];
    let shared = 0;
    let hints = 0;
    let tombstones = 0;
    const kinds = this.kinds;
    for (let s = 0; s < kinds.length; s++) {
      const k = kinds[s]!;
      if (k === EsxSlot.empty) continue;
      if (k === EsxSlot.tombstone) {
        tombstones++;
        continue;
      }
      if (k === EsxSlot.shared) {
        shared++;
        const mfn = this.refs[s]!;
        if (mfn < 0 || mfn >= this.slotOfMfn.length) problems.push(`slot ${s}: mfn ${mfn} outside machine memory`);
        else if (this.slotOfMfn[mfn] !== s) problems.push(`slot ${s}: mfn ${mfn} but slotOf says ${this.slotOfMfn[mfn]}`);
      } else if (k === EsxSlot.hint) {
        hints++;
      } else {
        problems.push(`slot ${s}: unknown kind ${k}`);
        continue;
      }
      for (let j = homeSlot(this.keys[s]!, this.mask); j !== s; j = (j + 1) & this.mask) {
        if (kinds[j] === EsxSlot.empty) {
          problems.push(`slot ${s}: unreachable from its home slot`);
          break;
        }
      }
    }
    for (let m = 0; m < this.slotOfMfn.length; m++) {
      const s = this.slotOfMfn[m]!;
      if (s !== NO_SLOT && (s < 0 || s >= kinds.length || kinds[s] !== EsxSlot.shared || this.refs[s] !== m)) {
        problems.push(`slotOf of mfn ${m} names slot ${s}, which does not hold it`);
      }
    }
    if (shared !== this.sharedCount) problems.push(`${shared} shared entries but the count says ${this.sharedCount}`);
    if (hints !== this.hintCount) problems.push(`${hints} hints but the count says ${this.hintCount}`);
    if (tombstones !== this.tombstoneCount) problems.push(`${tombstones} tombstones but the count says ${this.tombstoneCount}`);
    if (kinds.length - shared - hints - tombstones < 1) problems.push('no empty slot left, probes would not end');
    return problems;
  }

  private place(key: number, kind: EsxSlot, ref: number, dom: number): number {
    if (this.sharedCount + this.hintCount + this.tombstoneCount >= this.limit) this.rebuild();
    const kinds = this.kinds;
    const mask = this.mask;
    // Callers never enter the same entry twice, so the first free slot will do; reusing a
    // tombstone keeps probe sequences short.
    let i = homeSlot(key >>> 0, mask);
    while (kinds[i]! >= EsxSlot.shared) i = (i + 1) & mask;
    if (kinds[i] === EsxSlot.tombstone) this.tombstoneCount--;
    kinds[i] = kind;
    this.keys[i] = key >>> 0;
    this.refs[i] = ref;
    this.doms[i] = dom;
    return i;
  }

  /**
   * Rebuilds without tombstones: at the same capacity when the entries fill at most half of the
   * limit (churn left mostly tombstones), else at double capacity. Reports every moved hint.
   */
  private rebuild(): void {
    const oldKeys = this.keys;
    const oldKinds = this.kinds;
    const oldRefs = this.refs;
    const oldDoms = this.doms;
    let capacity = oldKinds.length;
    if (this.sharedCount + this.hintCount + 1 > limitFor(capacity) / 2) {
      invariant(capacity < ESX_MAX_CAPACITY, `esx table: full at ${capacity} slots`);
      capacity *= 2;
    }
    const keys = new Uint32Array(capacity);
    const kinds = new Uint8Array(capacity);
    const refs = new Int32Array(capacity);
    const doms = new Uint16Array(capacity);
    const mask = capacity - 1;
    this.keys = keys;
    this.kinds = kinds;
    this.refs = refs;
    this.doms = doms;
    this.mask = mask;
    this.limit = limitFor(capacity);
    this.tombstoneCount = 0;
    this.rebuildCount++;
    for (let s = 0; s < oldKinds.length; s++) {
      const k = oldKinds[s]!;
      if (k < EsxSlot.shared) continue;
      const key = oldKeys[s]!;
      let i = homeSlot(key, mask);
      while (kinds[i] !== EsxSlot.empty) i = (i + 1) & mask;
      kinds[i] = k;
      keys[i] = key;
      refs[i] = oldRefs[s]!;
      doms[i] = oldDoms[s]!;
      if (k === EsxSlot.shared) this.slotOfMfn[oldRefs[s]!] = i;
      else this.moves.hintMoved(oldDoms[s] as DomId, oldRefs[s] as Gfn, i);
    }
  }
}

function limitFor(capacity: number): number {
  // At least one slot stays empty so that every probe sequence ends; load at most one half.
  return Math.min(capacity - 1, Math.max(1, Math.floor(capacity / 2)));
}
