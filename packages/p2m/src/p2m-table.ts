import { INVALID_MFN, InvariantError, P2mType, type DomId, type Gfn, type Mfn, type P2mTable } from '@pagevisor/types';

/** `rmapPrev` value of a gfn that has no reverse-map entry. */
export const NO_RMAP_ENTRY = -2;

/** Highest {@link P2mType} value, for validating `set`. */
export const MAX_P2M_TYPE = Math.max(...Object.values(P2mType));

/**
 * One domain's p2m table in typed arrays indexed by gfn: the machine frame (Int32Array,
 * {@link INVALID_MFN} when none) and the {@link P2mType} (Uint8Array), that is
 * {@link ArrayP2mTable.BYTES_PER_GFN} = 5 bytes per guest frame; and, once the table has a
 * reverse-map entry, the gfn's links in its frame's reverse-map list (`rmapNext`, `rmapPrev`:
 * {@link ArrayP2mTable.RMAP_BYTES_PER_GFN} = 8 more bytes per guest frame).
 *
 * Tables are normally made by `ArrayP2m.createTable`; `idBase` and the links belong to that
 * p2m's reverse map.
 */
export class ArrayP2mTable implements P2mTable {
  /** Bytes of metadata per guest frame: 4 (mfn) + 1 (type). */
  static readonly BYTES_PER_GFN = 5;
  /** Bytes per guest frame of the reverse-map links, once the table has had a mapping: next 4 + prev 4. */
  static readonly RMAP_BYTES_PER_GFN = 8;

  /** The domain this table maps. */
  readonly dom: DomId;
  /** Guest frames 0 .. size-1 exist. */
  readonly size: number;
  /**
   * Reverse-map id of gfn 0: gfn `g` is node `idBase + g` of the reverse map's lists. Set by the
   * reverse map when the table joins it (-1 before).
   */
  idBase = -1;
  /**
   * Next node (reverse-map id, -1 at the tail) of each gfn in its frame's list; null until the
   * table's first mapping. Written only by the reverse map; exposed so that it links and unlinks
   * without a call per access.
   */
  rmapNext: Int32Array | null = null;
  /**
   * Previous node of each gfn in its frame's list (-1 at the head, {@link NO_RMAP_ENTRY} when
   * the gfn has no entry); null until the table's first mapping. Written only by the reverse map.
   */
  rmapPrev: Int32Array | null = null;

  private readonly mfns: Int32Array;
  private readonly types: Uint8Array;
  private populatedCount = 0;
  /** Entries of each type, so that counting one type needs no scan. */
  private readonly typeCounts = new Float64Array(MAX_P2M_TYPE + 1);
  private rmapCount = 0;

  /** An all-invalid table of `size` guest frames for `dom`. */
  constructor(dom: DomId, size: number) {
    if (!Number.isSafeInteger(size) || size < 0 || size > 0x7fffffff) {
      throw new RangeError(`p2m table size ${size} is not an integer in 0 .. 2^31-1`);
    }
    this.dom = dom;
    this.size = size;
    this.mfns = new Int32Array(size).fill(INVALID_MFN);
    this.types = new Uint8Array(size);
    this.typeCounts[P2mType.invalid] = size;
  }

  /** Entries whose type is not invalid. */
  get populated(): number {
    return this.populatedCount;
  }

  /** Entries of type `type` (0 for a value that is no type). */
  countOf(type: P2mType): number {
    return this.typeCounts[type] ?? 0;
  }

  /** Reverse-map entries recorded for this domain's gfns. */
  get rmapEntries(): number {
    return this.rmapCount;
  }

  /** Bytes held by this table's typed arrays, the reverse-map links included once allocated. */
  metadataBytes(): number {
    return this.mfns.byteLength + this.types.byteLength + (this.rmapNext?.byteLength ?? 0) + (this.rmapPrev?.byteLength ?? 0);
  }

  /** True when `gfn` has a reverse-map entry. */
  hasRmapEntry(gfn: Gfn): boolean {
    this.check(gfn);
    return this.rmapPrev !== null && this.rmapPrev[gfn] !== NO_RMAP_ENTRY;
  }

  /** Type of the entry for `gfn`; RangeError when `gfn` is out of range. */
  type(gfn: Gfn): P2mType {
    this.check(gfn);
    return this.types[gfn] as P2mType;
  }

  /** Machine frame of `gfn` (INVALID_MFN when none); RangeError when `gfn` is out of range. */
  mfn(gfn: Gfn): Mfn {
    this.check(gfn);
    return this.mfns[gfn] as Mfn;
  }

  /** Sets the entry for `gfn`; RangeError when `gfn` is out of range. */
  set(gfn: Gfn, mfn: Mfn, type: P2mType): void {
    this.check(gfn);
    // Plain ifs, not invariant(): its message would be built on every call of this hot path.
    if ((mfn | 0) !== mfn || mfn < INVALID_MFN) throw new InvariantError(`p2m set: mfn ${mfn} is not a frame number`);
    if ((type & 0xff) !== type || type > MAX_P2M_TYPE) throw new InvariantError(`p2m set: ${type} is not a p2m type`);
    const old = this.types[gfn];
    if (old === P2mType.invalid) {
      if (type !== P2mType.invalid) this.populatedCount++;
    } else if (type === P2mType.invalid) {
      this.populatedCount--;
    }
    this.typeCounts[old!]--;
    this.typeCounts[type]++;
    this.mfns[gfn] = mfn;
    this.types[gfn] = type;
  }

  /** Resets the entry for `gfn` to invalid with no frame; RangeError when `gfn` is out of range. */
  clear(gfn: Gfn): void {
    this.check(gfn);
    const old = this.types[gfn]!;
    if (old !== P2mType.invalid) this.populatedCount--;
    this.typeCounts[old]--;
    this.typeCounts[P2mType.invalid]++;
    this.mfns[gfn] = INVALID_MFN;
    this.types[gfn] = P2mType.invalid;
  }

  /** Records that the reverse map now holds (or no longer holds) an entry for one gfn. */
  noteRmapEntries(delta: 1 | -1): void {
    this.rmapCount += delta;
  }

  private check(gfn: number): void {
    // `>>> 0` rejects negatives, fractions and NaN in one comparison.
    if (gfn >>> 0 !== gfn || gfn >= this.size) {
      throw new RangeError(`gfn ${gfn} out of range 0 .. ${this.size - 1} of domain ${this.dom}`);
    }
  }
}
