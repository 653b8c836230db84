import {
  asDomId,
  asGfn,
  asMfn,
  HypervisorError,
  InvariantError,
  P2mType,
  type DomId,
  type Gfn,
  type Mfn,
  type ReverseMap,
} from '@pagevisor/types';
import { NO_RMAP_ENTRY, type ArrayP2mTable } from './p2m-table.js';

/** End of a list; also the `rmapPrev` of a list's head. */
const NIL = -1;

/** Bytes of metadata per machine frame: list head 4 + count 4. */
export const RMAP_BYTES_PER_FRAME = 8;
/** Bytes of metadata per guest frame of a table that has had a mapping: its links, next 4 + prev 4. */
export const RMAP_BYTES_PER_GFN = 8;
/** Reverse-map ids are handed to tables in chunks of 2^12: a table takes whole chunks of ids. */
export const RMAP_ID_CHUNK_SHIFT = 12;
/** Bytes counted per chunk of the id directory (one reference). */
const BYTES_PER_CHUNK = 8;
/** Ids stay below 2^31 so that they fit an Int32Array beside NIL and NO_RMAP_ENTRY. */
const MAX_CHUNKS = 2 ** 31 / 2 ** RMAP_ID_CHUNK_SHIFT;

/**
 * The reverse map of shared frames as doubly linked lists threaded through the p2m tables, as
 * Xen threads its lists through `page_info`: every gfn of a table is node `idBase + gfn`, its
 * links live in the table's `rmapNext`/`rmapPrev` (allocated at the table's first mapping), and
 * each machine frame has a list head and a count. Add and remove are O(1); nothing is allocated
 * per mapping. A mapping costs no more than the gfn's links, which every gfn of a table that
 * shares has: 8 bytes a guest frame instead of a pool entry (dom, gfn, mfn, next, prev) plus a
 * per-gfn entry index.
 *
 * Ids are handed out by chunks of 2^{@link RMAP_ID_CHUNK_SHIFT}; a directory maps each chunk
 * to its table, so a node's table is one array load away. A node records no frame: removing
 * (dom, gfn) under the wrong frame is caught by the gfn's p2m entry (still (mfn, ram_shared)
 * while callers unmap it) or, for a head, by the frame's list head.
 */
export class ArrayReverseMap implements ReverseMap {
  private readonly totalFrames: number;
  private readonly tableOf: (dom: DomId) => ArrayP2mTable | undefined;
  private readonly head: Int32Array;
  private readonly counts: Uint32Array;
  /** Table of each chunk of ids (undefined: free). */
  private readonly chunkTables: (ArrayP2mTable | undefined)[] = [];
  private used = 0;

  /**
   * A reverse map for `totalFrames` machine frames. `tableOf` resolves a domain to its table
   * (registered with {@link register}).
   */
  constructor(totalFrames: number, tableOf: (dom: DomId) => ArrayP2mTable | undefined) {
    if (!Number.isSafeInteger(totalFrames) || totalFrames < 0 || totalFrames > 0x7fffffff) {
      throw new RangeError(`totalFrames ${totalFrames} is not an integer in 0 .. 2^31-1`);
    }
    this.totalFrames = totalFrames;
    this.tableOf = tableOf;
    this.head = new Int32Array(totalFrames).fill(NIL);
    this.counts = new Uint32Array(totalFrames);
  }

  /** Entries in use (mappings recorded across all frames). */
  get size(): number {
    return this.used;
  }

  /**
   * Bytes held by the reverse map's own arrays: heads and counts per frame, and the id
   * directory. The links are in the tables and counted by their `metadataBytes()`.
   */
  metadataBytes(): number {
    return this.head.byteLength + this.counts.byteLength + this.chunkTables.length * BYTES_PER_CHUNK;
  }

  /**
   * Gives `table` a range of ids, the first free run of chunks large enough (a table of size 0
   * takes none). ENOMEM when the 2^31 ids are all taken by live tables; nothing changes then.
   */
  register(table: ArrayP2mTable): void {
    const chunks = Math.ceil(table.size / 2 ** RMAP_ID_CHUNK_SHIFT);
    const dir = this.chunkTables;
    let start = 0;
    let run = 0;
    for (let c = 0; c < dir.length && run < chunks; c++) {
      if (dir[c] === undefined) {
        if (run === 0) start = c;
        run++;
      } else run = 0;
    }
    // Not enough free chunks inside: extend from the end (reusing the trailing free run).
    if (run < chunks) start = dir.length - run;
    if (start + chunks > MAX_CHUNKS) {
      throw new HypervisorError('ENOMEM', 'createdomain', `no reverse-map ids left for d${table.dom}'s ${table.size} guest frames`);
    }
    for (let c = start; c < start + chunks; c++) dir[c] = table;
    table.idBase = start * 2 ** RMAP_ID_CHUNK_SHIFT;
  }

  /** Frees `table`'s ids; it must have no entries left. */
  unregister(table: ArrayP2mTable): void {
    if (table.rmapEntries !== 0) throw new InvariantError(`rmap: d${table.dom} still has ${table.rmapEntries} entries`);
    const dir = this.chunkTables;
    const first = table.idBase >>> RMAP_ID_CHUNK_SHIFT;
    for (let c = first; c < dir.length && dir[c] === table; c++) dir[c] = undefined;
    while (dir.length > 0 && dir[dir.length - 1] === undefined) dir.length--;
    table.idBase = -1;
  }

  /** Records that `dom`'s `gfn` maps `mfn`; InvariantError if (dom, gfn) already has an entry. */
  add(mfn: Mfn, dom: DomId, gfn: Gfn): void {
    this.checkMfn(mfn, 'add');
    const table = this.tableFor(dom, gfn, 'add');
    let prev = table.rmapPrev;
    let next = table.rmapNext;
    if (prev === null || next === null) {
      prev = table.rmapPrev = new Int32Array(table.size).fill(NO_RMAP_ENTRY);
      next = table.rmapNext = new Int32Array(table.size).fill(NIL);
    }
    if (prev[gfn] !== NO_RMAP_ENTRY) {
      throw new InvariantError(`rmap add: d${dom} gfn ${gfn} already has an entry (p2m maps mfn ${table.mfn(gfn)})`);
    }
    const id = table.idBase + gfn;
    const first = this.head[mfn]!;
    next[gfn] = first;
    prev[gfn] = NIL;
    if (first !== NIL) {
      const t = this.chunkTables[first >>> RMAP_ID_CHUNK_SHIFT]!;
      t.rmapPrev![first - t.idBase] = id;
    }
    this.head[mfn] = id;
    this.counts[mfn]!++;
    this.used++;
    table.noteRmapEntries(1);
  }

  /** Forgets that `dom`'s `gfn` maps `mfn`; InvariantError if that mapping is not recorded. */
  remove(mfn: Mfn, dom: DomId, gfn: Gfn): void {
    this.checkMfn(mfn, 'remove');
    const table = this.tableFor(dom, gfn, 'remove');
    const prev = table.rmapPrev;
    const next = table.rmapNext!;
    const p = prev === null ? NO_RMAP_ENTRY : prev[gfn]!;
    if (p === NO_RMAP_ENTRY) {
      throw new InvariantError(`rmap remove: d${dom} gfn ${gfn} has no entry (for mfn ${mfn})`);
    }
    const id = table.idBase + gfn;
    const mapped = table.type(gfn) === P2mType.ram_shared ? table.mfn(gfn) : mfn;
    if (mapped !== mfn || (p === NIL ? this.head[mfn] !== id : this.counts[mfn] === 0)) {
      throw new InvariantError(`rmap remove: d${dom} gfn ${gfn} is not in the list of mfn ${mfn}`);
    }
    const n = next[gfn]!;
    if (p === NIL) this.head[mfn] = n;
    else {
      const t = this.chunkTables[p >>> RMAP_ID_CHUNK_SHIFT]!;
      t.rmapNext![p - t.idBase] = n;
    }
    if (n !== NIL) {
      const t = this.chunkTables[n >>> RMAP_ID_CHUNK_SHIFT]!;
      t.rmapPrev![n - t.idBase] = p;
    }
    this.counts[mfn]!--;
    this.used--;
    prev![gfn] = NO_RMAP_ENTRY;
    next[gfn] = NIL;
    table.noteRmapEntries(-1);
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
    for (let id = this.head[mfn]!; id !== NIL; ) {
      if (i >= n) throw new InvariantError(`rmap: list of mfn ${mfn} is longer than its count ${n}`);
      const t = this.chunkTables[id >>> RMAP_ID_CHUNK_SHIFT]!;
      doms[i] = t.dom;
      gfns[i] = id - t.idBase;
      i++;
      id = t.rmapNext![id - t.idBase]!;
    }
    if (i !== n) throw new InvariantError(`rmap: list of mfn ${mfn} has ${i} entries, count says ${n}`);
    for (let k = 0; k < n; k++) fn(asDomId(doms[k]!), asGfn(gfns[k]!));
  }

  /**
   * Frames other than `except` with two mappings or more (`shared`), and their mappings beyond
   * the first (`sharing`): KSM's pages_shared and pages_sharing, without listing the frames.
   */
  sharingCounts(except: Mfn): { shared: number; sharing: number } {
    const counts = this.counts;
    let shared = 0;
    let sharing = 0;
    for (let m = 0; m < counts.length; m++) {
      const n = counts[m]!;
      if (n >= 2 && m !== except) {
        shared++;
        sharing += n - 1;
      }
    }
    return { shared, sharing };
  }

  /** Machine frames with at least one mapping, in ascending order. */
  frames(): Mfn[] {
    const out: Mfn[] = [];
    for (let m = 0; m < this.totalFrames; m++) if (this.counts[m]! > 0) out.push(asMfn(m));
    return out;
  }

  /**
   * Broken invariants of the lists, in words (empty when sound): links, counts, nodes naming
   * registered gfns that have entries, and every node's p2m entry being (mfn, ram_shared).
   * `ramShared` is the ram_shared type value.
   */
  audit(ramShared: number): string[] {
    const problems: string[] = [];
    let listed = 0;
    for (let m = 0; m < this.totalFrames; m++) {
      let len = 0;
      let p = NIL;
      for (let id = this.head[m]!; id !== NIL; ) {
        if (len > this.used) {
          problems.push(`mfn ${m}: list has a cycle`);
          break;
        }
        len++;
        const table = id >= 0 ? this.chunkTables[id >>> RMAP_ID_CHUNK_SHIFT] : undefined;
        const gfn = table === undefined ? -1 : id - table.idBase;
        if (table === undefined || gfn >= table.size || table.rmapPrev === null || table.rmapNext === null) {
          problems.push(`mfn ${m}: node ${id} names no gfn of a live table`);
          break;
        }
        const dom = table.dom;
        if (table.rmapPrev[gfn] !== p) problems.push(`mfn ${m}: d${dom} gfn ${gfn} prev ${table.rmapPrev[gfn]}, expected ${p}`);
        if (table.mfn(asGfn(gfn)) !== m || table.type(asGfn(gfn)) !== ramShared) {
          problems.push(`mfn ${m}: d${dom} gfn ${gfn} is (${table.mfn(asGfn(gfn))}, type ${table.type(asGfn(gfn))}), not (${m}, ram_shared)`);
        }
        p = id;
        id = table.rmapNext[gfn]!;
      }
      if (len !== this.counts[m]) problems.push(`mfn ${m}: ${len} entries listed, count ${this.counts[m]}`);
      listed += len;
    }
    if (listed !== this.used) problems.push(`${listed} entries listed, ${this.used} in use`);
    return problems;
  }

  private checkMfn(mfn: number, op: string): void {
    // Plain ifs, not invariant(): its message would be built on every add and remove.
    if (mfn >>> 0 !== mfn || mfn >= this.totalFrames) {
      throw new InvariantError(`rmap ${op}: mfn ${mfn} out of range 0 .. ${this.totalFrames - 1}`);
    }
  }

  private tableFor(dom: DomId, gfn: Gfn, op: string): ArrayP2mTable {
    const table = this.tableOf(dom);
    if (table === undefined || table.idBase < 0) throw new InvariantError(`rmap ${op}: domain ${dom} has no p2m table`);
    if (gfn >>> 0 !== gfn || gfn >= table.size) {
      throw new InvariantError(`rmap ${op}: gfn ${gfn} out of range of d${dom}`);
    }
    return table;
  }
}
