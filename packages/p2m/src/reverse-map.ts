import {
  asDomId,
  asGfn,
  asMfn,
  InvariantError,
  type DomId,
  type Gfn,
  type Mfn,
  type ReverseMap,
} from '@pagevisor/types';
import { NO_RMAP_ENTRY, type ArrayP2mTable } from './p2m-table.js';

/** End of a list (and of the free-entry stack). */
const NIL = -1;

/** Bytes of metadata per reverse-map entry: dom 2 + gfn 4 + mfn 4 + next 4 + prev 4. */
export const RMAP_BYTES_PER_ENTRY = 18;
/** Bytes of metadata per machine frame: list head 4 + count 4. */
export const RMAP_BYTES_PER_FRAME = 8;

/**
 * The reverse map of shared frames as a pool of entries in parallel typed arrays. Each machine
 * frame has a doubly linked list of its entries (head and count per frame); each (dom, gfn) finds
 * its entry through its table's `rmapEntry`, so add and remove are O(1). Free entries form a stack
 * linked through `next`; when it is empty the pool doubles (amortised O(1)).
 *
 * Every entry also records its mfn, so removing (dom, gfn) under the wrong frame is caught instead
 * of corrupting two lists.
 */
export class ArrayReverseMap implements ReverseMap {
  private readonly totalFrames: number;
  private readonly tableOf: (dom: DomId) => ArrayP2mTable | undefined;
  private readonly head: Int32Array;
  private readonly counts: Uint32Array;
  private entryDom: Uint16Array;
  private entryGfn: Int32Array;
  private entryMfn: Int32Array;
  private next: Int32Array;
  private prev: Int32Array;
  private freeTop = NIL;
  private used = 0;

  /**
   * A reverse map for `totalFrames` machine frames whose entries start at `initialEntries` and
   * double when full. `tableOf` resolves a domain to its table (for the per-gfn entry index).
   */
  constructor(
    totalFrames: number,
    tableOf: (dom: DomId) => ArrayP2mTable | undefined,
    initialEntries: number,
  ) {
    if (!Number.isSafeInteger(totalFrames) || totalFrames < 0 || totalFrames > 0x7fffffff) {
      throw new RangeError(`totalFrames ${totalFrames} is not an integer in 0 .. 2^31-1`);
    }
    if (!Number.isSafeInteger(initialEntries) || initialEntries < 1) {
      throw new RangeError(`initialEntries ${initialEntries} is not a positive integer`);
    }
    this.totalFrames = totalFrames;
    this.tableOf = tableOf;
    this.head = new Int32Array(totalFrames).fill(NIL);
    this.counts = new Uint32Array(totalFrames);
    this.entryDom = new Uint16Array(0);
    this.entryGfn = new Int32Array(0);
    this.entryMfn = new Int32Array(0);
    this.next = new Int32Array(0);
    this.prev = new Int32Array(0);
    this.grow(initialEntries);
  }

  /** Entries in the pool, used or free. */
  get capacity(): number {
    return this.next.length;
  }

  /** Entries in use (mappings recorded across all frames). */
  get size(): number {
    return this.used;
  }

  /** Bytes held by the reverse map's typed arrays. */
  metadataBytes(): number {
    return (
      this.head.byteLength +
      this.counts.byteLength +
      this.entryDom.byteLength +
      this.entryGfn.byteLength +
      this.entryMfn.byteLength +
      this.next.byteLength +
      this.prev.byteLength
    );
  }

  /** Records that `dom`'s `gfn` maps `mfn`; InvariantError if (dom, gfn) already has an entry. */
  add(mfn: Mfn, dom: DomId, gfn: Gfn): void {
    this.checkMfn(mfn, 'add');
    const table = this.tableFor(dom, gfn, 'add');
    if (table.rmapEntry[gfn] !== NO_RMAP_ENTRY) {
      throw new InvariantError(
        `rmap add: d${dom} gfn ${gfn} already maps mfn ${this.entryMfn[table.rmapEntry[gfn]!]}`,
      );
    }
    if (this.freeTop === NIL) this.grow(this.capacity * 2);
    const e = this.freeTop;
    this.freeTop = this.next[e]!;
    this.entryDom[e] = dom;
    this.entryGfn[e] = gfn;
    this.entryMfn[e] = mfn;
    const first = this.head[mfn]!;
    this.next[e] = first;
    this.prev[e] = NIL;
    if (first !== NIL) this.prev[first] = e;
    this.head[mfn] = e;
    this.counts[mfn]!++;
    this.used++;
    table.rmapEntry[gfn] = e;
    table.noteRmapEntries(1);
  }

  /** Forgets that `dom`'s `gfn` maps `mfn`; InvariantError if that mapping is not recorded. */
  remove(mfn: Mfn, dom: DomId, gfn: Gfn): void {
    this.checkMfn(mfn, 'remove');
    const table = this.tableFor(dom, gfn, 'remove');
    const e = table.rmapEntry[gfn]!;
    if (e === NO_RMAP_ENTRY) {
      throw new InvariantError(`rmap remove: d${dom} gfn ${gfn} has no entry (for mfn ${mfn})`);
    }
    if (this.entryMfn[e] !== mfn) {
      throw new InvariantError(`rmap remove: d${dom} gfn ${gfn} maps mfn ${this.entryMfn[e]}, not mfn ${mfn}`);
    }
    const n = this.next[e]!;
    const p = this.prev[e]!;
    if (p === NIL) this.head[mfn] = n;
    else this.next[p] = n;
    if (n !== NIL) this.prev[n] = p;
    this.counts[mfn]!--;
    this.used--;
    table.rmapEntry[gfn] = NO_RMAP_ENTRY;
    table.noteRmapEntries(-1);
    // Clearing the fields makes a stale index visible in audits instead of looking valid.
    this.entryDom[e] = 0;
    this.entryGfn[e] = NIL;
    this.entryMfn[e] = NIL;
    this.prev[e] = NIL;
    this.next[e] = this.freeTop;
    this.freeTop = e;
  }

  /** Mappings recorded for `mfn`. */
  count(mfn: Mfn): number {
    this.checkMfn(mfn, 'count');
    return this.counts[mfn]!;
  }

  /**
   * Calls `fn` for every mapping of `mfn`, most recently added first. The mappings are read
   * before the first call, so `fn` may change the reverse map.
   */
  forEach(mfn: Mfn, fn: (dom: DomId, gfn: Gfn) => void): void {
    this.checkMfn(mfn, 'forEach');
    const n = this.counts[mfn]!;
    const doms = new Uint16Array(n);
    const gfns = new Int32Array(n);
    let i = 0;
    for (let e = this.head[mfn]!; e !== NIL; e = this.next[e]!) {
      if (i >= n) throw new InvariantError(`rmap: list of mfn ${mfn} is longer than its count ${n}`);
      doms[i] = this.entryDom[e]!;
      gfns[i] = this.entryGfn[e]!;
      i++;
    }
    if (i !== n) throw new InvariantError(`rmap: list of mfn ${mfn} has ${i} entries, count says ${n}`);
    for (let k = 0; k < n; k++) fn(asDomId(doms[k]!), asGfn(gfns[k]!));
  }

  /** Machine frames with at least one mapping, in ascending order. */
  frames(): Mfn[] {
    const out: Mfn[] = [];
    for (let m = 0; m < this.totalFrames; m++) if (this.counts[m]! > 0) out.push(asMfn(m));
    return out;
  }

  /**
   * Broken invariants of the pool, in words (empty when sound): list links, counts, entries'
   * mfns, back-pointers from the tables, and every entry's p2m entry being (mfn, ram_shared).
   * `ramShared` is the ram_shared type value, passed in to keep this file free of p2m semantics.
   */
  audit(ramShared: number): string[] {
    const problems: string[] = [];
    let listed = 0;
    for (let m = 0; m < this.totalFrames; m++) {
      let len = 0;
      let p = NIL;
      for (let e = this.head[m]!; e !== NIL; e = this.next[e]!) {
        if (len > this.used) {
          problems.push(`mfn ${m}: list has a cycle`);
          break;
        }
        len++;
        if (this.prev[e] !== p) problems.push(`mfn ${m}: entry ${e} prev ${this.prev[e]}, expected ${p}`);
        if (this.entryMfn[e] !== m) problems.push(`mfn ${m}: entry ${e} records mfn ${this.entryMfn[e]}`);
        const dom = asDomId(this.entryDom[e]!);
        const gfn = asGfn(this.entryGfn[e]!);
        const table = this.tableOf(dom);
        if (table === undefined || gfn < 0 || gfn >= table.size) {
          problems.push(`mfn ${m}: entry ${e} names d${dom} gfn ${gfn}, which does not exist`);
        } else {
          if (table.rmapEntry[gfn] !== e) {
            problems.push(`mfn ${m}: d${dom} gfn ${gfn} points at entry ${table.rmapEntry[gfn]}, not ${e}`);
          }
          if (table.mfn(gfn) !== m || table.type(gfn) !== ramShared) {
            problems.push(
              `mfn ${m}: d${dom} gfn ${gfn} is (${table.mfn(gfn)}, type ${table.type(gfn)}), not (${m}, ram_shared)`,
            );
          }
        }
        p = e;
      }
      if (len !== this.counts[m]) problems.push(`mfn ${m}: ${len} entries listed, count ${this.counts[m]}`);
      listed += len;
    }
    if (listed !== this.used) problems.push(`${listed} entries listed, ${this.used} in use`);
    let free = 0;
    for (let e = this.freeTop; e !== NIL && free <= this.capacity; e = this.next[e]!) free++;
    if (free + this.used !== this.capacity) {
      problems.push(`${free} free + ${this.used} used entries != capacity ${this.capacity}`);
    }
    return problems;
  }

  private grow(capacity: number): void {
    const old = this.next.length;
    if (capacity <= old || capacity > 0x7fffffff) throw new InvariantError(`rmap: cannot grow to ${capacity} entries`);
    this.entryDom = resize(this.entryDom, new Uint16Array(capacity));
    this.entryGfn = resize(this.entryGfn, new Int32Array(capacity));
    this.entryMfn = resize(this.entryMfn, new Int32Array(capacity));
    this.next = resize(this.next, new Int32Array(capacity));
    this.prev = resize(this.prev, new Int32Array(capacity));
    // Push the new entries so that the lowest index is popped first: deterministic reuse order.
    for (let e = capacity - 1; e >= old; e--) {
      this.entryGfn[e] = NIL;
      this.entryMfn[e] = NIL;
      this.prev[e] = NIL;
      this.next[e] = this.freeTop;
      this.freeTop = e;
    }
  }

  private checkMfn(mfn: number, op: string): void {
    // Plain ifs, not invariant(): its message would be built on every add and remove.
    if (mfn >>> 0 !== mfn || mfn >= this.totalFrames) {
      throw new InvariantError(`rmap ${op}: mfn ${mfn} out of range 0 .. ${this.totalFrames - 1}`);
    }
  }

  private tableFor(dom: DomId, gfn: Gfn, op: string): ArrayP2mTable {
    const table = this.tableOf(dom);
    if (table === undefined) throw new InvariantError(`rmap ${op}: domain ${dom} has no p2m table`);
    if (gfn >>> 0 !== gfn || gfn >= table.size) {
      throw new InvariantError(`rmap ${op}: gfn ${gfn} out of range of d${dom}`);
    }
    return table;
  }
}

function resize<T extends Uint16Array | Int32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
