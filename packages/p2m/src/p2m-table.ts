import { INVALID_MFN, InvariantError, P2mType, type DomId, type Gfn, type Mfn, type P2mTable } from '@pagevisor/types';

/** Highest {@link P2mType} value, for validating `set`. */
export const MAX_P2M_TYPE = Math.max(...Object.values(P2mType));
if (MAX_P2M_TYPE > 0xff) throw new Error(`p2m: ${MAX_P2M_TYPE} types do not fit a byte`);
// A table starts as zeros, which must read as invalid entries.
if ((P2mType.invalid as number) !== 0) throw new Error('p2m: the invalid type must be 0');
/**
 * Largest frame number (or swap slot, for paged entries) an entry holds: 2^30 - 1, so machines
 * of up to 4 TiB of 4 KiB frames (and swap areas of up to 2^30 slots).
 */
export const P2M_MAX_MFN = 2 ** 30 - 1;

/**
 * One domain's p2m table in two typed arrays indexed by gfn: an Int32Array of machine frames (or
 * a paged entry's swap slot; {@link INVALID_MFN} when none), each kept as its bitwise complement
 * so that a word of zeros is INVALID_MFN, and a Uint8Array of {@link P2mType}s, where 0 is
 * `invalid`: 5 bytes per guest frame. A new table is all zeros, so its pages of memory are only
 * taken as entries are first set (a table of 2^30 gfns costs what its populated gfns touch).
 * Types are counted as they are set, so counting one type needs no scan.
 *
 * Tables are normally made by `ArrayP2m.createTable`; `idBase` belongs to that p2m's reverse map.
 */
export class ArrayP2mTable implements P2mTable {
  /** Bytes of metadata per guest frame: a 32-bit machine frame and an 8-bit type. */
  static readonly BYTES_PER_GFN = 5;

  /** The domain this table maps. */
  readonly dom: DomId;
  /** Guest frames 0 .. size-1 exist. */
  readonly size: number;
  /**
   * Reverse-map id of gfn 0: gfn `g` is node `idBase + g` in the reverse map's lists. Set by the
   * reverse map when the table joins it (-1 before).
   */
  idBase = -1;

  /** `~mfn` of each gfn: 0 is INVALID_MFN. */
  private readonly mfns: Int32Array;
  /** {@link P2mType} of each gfn: 0 is `invalid`. */
  private readonly types: Uint8Array;
  private populatedCount = 0;
  /** Entries of each type, so that counting one type needs no scan. */
  private readonly typeCounts = new Float64Array(MAX_P2M_TYPE + 1);

  /** An all-invalid table of `size` guest frames for `dom`. */
  constructor(dom: DomId, size: number) {
    if (!Number.isSafeInteger(size) || size < 0 || size > 0x7fffffff) {
      throw new RangeError(`p2m table size ${size} is not an integer in 0 .. 2^31-1`);
    }
    this.dom = dom;
    this.size = size;
    // All zeros: (~INVALID_MFN, invalid) in every entry, and no page touched until set.
    this.mfns = new Int32Array(size);
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

  /** Bytes held by this table's typed arrays. */
  metadataBytes(): number {
    return this.mfns.byteLength + this.types.byteLength;
  }

  /** Type of the entry for `gfn`; RangeError when `gfn` is out of range. */
  type(gfn: Gfn): P2mType {
    this.check(gfn);
    return this.types[gfn]! as P2mType;
  }

  /** Machine frame of `gfn` (INVALID_MFN when none); RangeError when `gfn` is out of range. */
  mfn(gfn: Gfn): Mfn {
    this.check(gfn);
    return ~this.mfns[gfn]! as Mfn;
  }

  /** Sets the entry for `gfn`; RangeError when `gfn` is out of range. */
  set(gfn: Gfn, mfn: Mfn, type: P2mType): void {
    this.check(gfn);
    // Plain ifs, not invariant(): its message would be built on every call of this hot path.
    if ((mfn | 0) !== mfn || mfn < INVALID_MFN || mfn > P2M_MAX_MFN) {
      throw new InvariantError(`p2m set: mfn ${mfn} is not a frame number in -1 .. ${P2M_MAX_MFN}`);
    }
    if ((type & 0xff) !== type || type > MAX_P2M_TYPE) throw new InvariantError(`p2m set: ${type} is not a p2m type`);
    const old = this.types[gfn]!;
    if (old === P2mType.invalid) {
      if (type !== P2mType.invalid) this.populatedCount++;
    } else if (type === P2mType.invalid) {
      this.populatedCount--;
    }
    this.typeCounts[old]--;
    this.typeCounts[type]++;
    this.mfns[gfn] = ~mfn;
    this.types[gfn] = type;
  }

  /** Resets the entry for `gfn` to invalid with no frame; RangeError when `gfn` is out of range. */
  clear(gfn: Gfn): void {
    this.check(gfn);
    const old = this.types[gfn]!;
    if (old !== P2mType.invalid) this.populatedCount--;
    this.typeCounts[old]--;
    this.typeCounts[P2mType.invalid]++;
    this.mfns[gfn] = ~INVALID_MFN;
    this.types[gfn] = P2mType.invalid;
  }

  private check(gfn: number): void {
    // `>>> 0` rejects negatives, fractions and NaN in one comparison.
    if (gfn >>> 0 !== gfn || gfn >= this.size) {
      throw new RangeError(`gfn ${gfn} out of range 0 .. ${this.size - 1} of domain ${this.dom}`);
    }
  }
}
