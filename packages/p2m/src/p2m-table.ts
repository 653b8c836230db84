import { INVALID_MFN, InvariantError, P2mType, type DomId, type Gfn, type Mfn, type P2mTable } from '@pagevisor/types';

/** Entry index meaning "no reverse-map entry". */
export const NO_RMAP_ENTRY = -1;

/** Highest {@link P2mType} value, for validating `set`. */
const MAX_P2M_TYPE = Math.max(...Object.values(P2mType));

/**
 * One domain's p2m table in three typed arrays indexed by gfn: the machine frame (Int32Array,
 * {@link INVALID_MFN} when none), the {@link P2mType} (Uint8Array) and the index of the gfn's
 * reverse-map entry (Int32Array, -1 when none) so that the reverse map removes it in O(1).
 * That is {@link ArrayP2mTable.BYTES_PER_GFN} = 9 bytes per guest frame.
 *
 * Tables are normally made by `ArrayP2m.createTable`; `rmapEntry` belongs to that p2m's reverse map.
 */
export class ArrayP2mTable implements P2mTable {
  /** Bytes of metadata per guest frame: 4 (mfn) + 1 (type) + 4 (reverse-map entry index). */
  static readonly BYTES_PER_GFN = 9;

  /** The domain this table maps. */
  readonly dom: DomId;
  /** Guest frames 0 .. size-1 exist. */
  readonly size: number;
  /**
   * Reverse-map entry of each gfn (-1 when none). Written only by the reverse map of the p2m that
   * created this table; exposed so it can do so without a call per access.
   */
  readonly rmapEntry: Int32Array;

  private readonly mfns: Int32Array;
  private readonly types: Uint8Array;
  private populatedCount = 0;
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
    this.rmapEntry = new Int32Array(size).fill(NO_RMAP_ENTRY);
  }

  /** Entries whose type is not invalid. */
  get populated(): number {
    return this.populatedCount;
  }

  /** Reverse-map entries recorded for this domain's gfns. */
  get rmapEntries(): number {
    return this.rmapCount;
  }

  /** Bytes held by this table's typed arrays. */
  metadataBytes(): number {
    return this.mfns.byteLength + this.types.byteLength + this.rmapEntry.byteLength;
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
    this.mfns[gfn] = mfn;
    this.types[gfn] = type;
  }

  /** Resets the entry for `gfn` to invalid with no frame; RangeError when `gfn` is out of range. */
  clear(gfn: Gfn): void {
    this.check(gfn);
    if (this.types[gfn] !== P2mType.invalid) this.populatedCount--;
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
