/**
 * Type of a guest-frame -> machine-frame entry, after Xen's `p2m_type_t`.
 * Stored in a byte per guest frame beside its machine frame, so the values must stay below 256;
 * `invalid` is 0, what a new table's zeros read as.
 */
export const P2mType = {
  /** Not populated: no frame, an access is refused. */
  invalid: 0,
  /** A private, writable frame. */
  ram_rw: 1,
  /** A frame shared copy-on-write (possibly the zero frame); a write unshares it. */
  ram_shared: 2,
  /** Populated without a frame; the first access allocates one (reads see zeros). */
  populate_on_demand: 3,
  /** Nominated for paging out; still backed by its frame. */
  paging_out: 4,
  /** Paged out: the content lives in a swap slot, no frame. */
  paged: 5,
  /** Being paged back in. */
  paging_in: 6,
} as const;

/** One of the {@link P2mType} values. */
export type P2mType = (typeof P2mType)[keyof typeof P2mType];

/** Names of the p2m types, indexed by value. */
export const P2M_TYPE_NAMES: readonly string[] = Object.entries(P2mType)
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name);

/** True when the entry is backed by a machine frame that can be read. */
export function p2mHasFrame(t: P2mType): boolean {
  return t === P2mType.ram_rw || t === P2mType.ram_shared || t === P2mType.paging_out;
}
