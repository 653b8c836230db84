import type { DomId, Gfn, Mfn } from './ids.js';
import type { P2mType } from './p2m-type.js';

/**
 * One domain's guest-frame -> machine-frame table: per guest frame a machine frame and a
 * {@link P2mType}, in typed arrays indexed by gfn.
 */
export interface P2mTable {
  /** The domain this table maps. */
  readonly dom: DomId;
  /** Guest frames 0 .. size-1 exist; anything else is out of range. */
  readonly size: number;
  /** Entries whose type is not invalid. */
  readonly populated: number;
  /** Type of the entry for `gfn`. */
  type(gfn: Gfn): P2mType;
  /** Machine frame of `gfn` (INVALID_MFN when it has none). */
  mfn(gfn: Gfn): Mfn;
  /** Sets the entry for `gfn`. */
  set(gfn: Gfn, mfn: Mfn, type: P2mType): void;
  /** Resets the entry for `gfn` to invalid with no frame. */
  clear(gfn: Gfn): void;
}

/**
 * The reverse map of shared frames: for each shared machine frame, every (domain, gfn) that maps
 * it. A mapping is added before the p2m entry is set to (frame, ram_shared) and removed while the
 * entry still says so.
 */
export interface ReverseMap {
  /** Records that `dom`'s `gfn` maps `mfn`. */
  add(mfn: Mfn, dom: DomId, gfn: Gfn): void;
  /** Forgets that `dom`'s `gfn` maps `mfn`; it must have been added. */
  remove(mfn: Mfn, dom: DomId, gfn: Gfn): void;
  /** Mappings recorded for `mfn`. */
  count(mfn: Mfn): number;
  /** Calls `fn` for every mapping of `mfn` (not for the hot path). */
  forEach(mfn: Mfn, fn: (dom: DomId, gfn: Gfn) => void): void;
  /** Machine frames that have at least one mapping (not for the hot path). */
  frames(): Iterable<Mfn>;
}

/** All domains' p2m tables and the reverse map. */
export interface P2m {
  /** Creates an all-invalid table of `size` guest frames for `dom`. */
  createTable(dom: DomId, size: number): P2mTable;
  /** Drops `dom`'s table; every entry must be invalid and no reverse-map entry may remain. */
  destroyTable(dom: DomId): void;
  /** `dom`'s table, or undefined. */
  table(dom: DomId): P2mTable | undefined;
  /** Domains that have a table, in creation order. */
  domains(): Iterable<DomId>;
  /** The reverse map of shared frames. */
  readonly rmap: ReverseMap;
}
