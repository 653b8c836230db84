import type { DomId, P2mTable } from '@pagevisor/types';

/** Bits of an item's flags byte. */
export const ItemFlags = {
  /** The page is mergeable (MADV_MERGEABLE, or PR_SET_MEMORY_MERGE for the whole domain). */
  mergeable: 1 << 0,
  /** An rmap item exists for the page (it was scanned and is still there). */
  item: 1 << 1,
  /** The item is a node of an unstable tree (UNSTABLE_FLAG). */
  unstable: 1 << 2,
  /** Parity of the unstable-tree generation the item was inserted in (the kernel's seqnr bits). */
  parity: 1 << 3,
  /** The item hangs off a stable node (STABLE_FLAG). */
  stable: 1 << 4,
  /** KSM merged the page onto the zero frame (use_zero_pages); counted in ksm_zero_pages. */
  zero: 1 << 5,
} as const;

/**
 * What KSM knows of one domain (the kernel's ksm_mm_slot plus the mm's KSM counters). Its pages'
 * items are the range [base, base + size) of the item arrays: item = base + gfn.
 */
export class DomainSlot {
  /** First item of the domain's range. */
  base = -1;
  /** Gfns with the mergeable bit. */
  mergeable = 0;
  /** Items of the domain (mm->ksm_rmap_items). */
  rmapItems = 0;
  /** Items hanging off stable nodes (mm->ksm_merging_pages). */
  mergingPages = 0;
  /** Pages KSM merged onto the zero frame (mm->ksm_zero_pages). */
  zeroPages = 0;
  /** PR_SET_MEMORY_MERGE is on. */
  mergeAny = false;

  constructor(
    /** The domain. */
    readonly dom: DomId,
    /** Its p2m table. */
    readonly table: P2mTable,
    /** Its gfns, the table's size. */
    readonly size: number,
  ) {}

  /** True when scanning the domain has something to do (pages to scan, items or zero pages to correct). */
  get busy(): boolean {
    return this.mergeable > 0 || this.rmapItems > 0 || this.zeroPages > 0;
  }
}

/** Items per chunk of the item space: ranges are whole chunks, so an item's domain is one array read. */
const CHUNK_SHIFT = 6;
const CHUNK = 1 << CHUNK_SHIFT;

/**
 * Per-page KSM metadata (the kernel's rmap_item, 64 bytes there) as parallel typed arrays over one
 * item space, each domain owning a contiguous range of its table's size:
 *
 * - `left`, `right` (Int32): children in the unstable tree; for an item of a stable node, `left`
 *   is the node and `right` the next item of the node's list;
 * - `checksum` (Uint32): the page's checksum at its last scan (oldchecksum); for an item of a
 *   stable node, the previous item of the list (0xffffffff: none) — the node keeps the checksum;
 * - `flags` (Uint8, {@link ItemFlags}), `age` and `skips` (Uint8, smart_scan).
 *
 * {@link BYTES_PER_RMAP_ITEM} bytes per page, against Linux's 64.
 */
export class RmapItems {
  left = new Int32Array(0);
  right = new Int32Array(0);
  checksum = new Uint32Array(0);
  flags = new Uint8Array(0);
  age = new Uint8Array(0);
  skips = new Uint8Array(0);
  /** Domain slot of each chunk of items. */
  private chunkSlot: (DomainSlot | undefined)[] = [];
  /** End of the used item space. */
  private end = 0;
  /** Free ranges below `end`, as [base, size] pairs of whole chunks. */
  private readonly holes: Array<[number, number]> = [];

  /** Items the arrays hold. */
  get capacity(): number {
    return this.flags.length;
  }

  /** Bytes of the arrays and the chunk table. */
  get bytes(): number {
    return (
      this.left.byteLength +
      this.right.byteLength +
      this.checksum.byteLength +
      this.flags.byteLength +
      this.age.byteLength +
      this.skips.byteLength +
      this.chunkSlot.length * 8
    );
  }

  /** The slot that owns item `i`. */
  slotOf(i: number): DomainSlot {
    return this.chunkSlot[i >>> CHUNK_SHIFT]!;
  }

  /**
   * Gives `slot` a range of `slot.size` items, all zero (no flags), reusing a hole when one fits.
   * Returns true when the arrays were reallocated (links must be re-read).
   */
  allocRange(slot: DomainSlot): boolean {
    const size = Math.max(CHUNK, Math.ceil(slot.size / CHUNK) * CHUNK);
    let base = -1;
    for (let h = 0; h < this.holes.length; h++) {
      const [hb, hs] = this.holes[h]!;
      if (hs < size) continue;
      base = hb;
      if (hs === size) this.holes.splice(h, 1);
      else this.holes[h] = [hb + size, hs - size];
      break;
    }
    let grew = false;
    if (base < 0) {
      base = this.end;
      this.end += size;
      if (this.end > this.capacity) {
        this.grow(this.end);
        grew = true;
      }
    }
    slot.base = base;
    for (let c = base >>> CHUNK_SHIFT; c < (base + size) >>> CHUNK_SHIFT; c++) this.chunkSlot[c] = slot;
    return grew;
  }

  /** Returns `slot`'s range to the free space, cleared. */
  freeRange(slot: DomainSlot): void {
    const size = Math.max(CHUNK, Math.ceil(slot.size / CHUNK) * CHUNK);
    const base = slot.base;
    this.flags.fill(0, base, base + size);
    this.checksum.fill(0, base, base + size);
    this.age.fill(0, base, base + size);
    this.skips.fill(0, base, base + size);
    this.left.fill(-1, base, base + size);
    this.right.fill(-1, base, base + size);
    for (let c = base >>> CHUNK_SHIFT; c < (base + size) >>> CHUNK_SHIFT; c++) this.chunkSlot[c] = undefined;
    this.holes.push([base, size]);
    this.holes.sort((a, b) => a[0] - b[0]);
    // Coalesce neighbours, and give back the tail of the space.
    for (let h = this.holes.length - 1; h > 0; h--) {
      const prev = this.holes[h - 1]!;
      const cur = this.holes[h]!;
      if (prev[0] + prev[1] === cur[0]) {
        prev[1] += cur[1];
        this.holes.splice(h, 1);
      }
    }
    const last = this.holes[this.holes.length - 1];
    if (last !== undefined && last[0] + last[1] === this.end) {
      this.end = last[0];
      this.holes.pop();
    }
    slot.base = -1;
  }

  private grow(capacity: number): void {
    this.left = resized(this.left, capacity, -1);
    this.right = resized(this.right, capacity, -1);
    this.checksum = resized(this.checksum, capacity, 0);
    this.flags = resized(this.flags, capacity, 0);
    this.age = resized(this.age, capacity, 0);
    this.skips = resized(this.skips, capacity, 0);
  }
}

/** Bytes of metadata per page KSM tracks (per rmap item): 4 + 4 + 4 + 1 + 1 + 1. */
export const BYTES_PER_RMAP_ITEM = 15;

/**
 * sizeof(struct ksm_rmap_item) on x86_64: what Linux charges per rmap item in `general_profit`
 * and in /proc/PID/ksm_stat's `ksm_process_profit`. KSM's counters use it; pagevisor's own
 * metadata is {@link BYTES_PER_RMAP_ITEM} an item.
 */
export const KSM_RMAP_ITEM_BYTES = 64;

function resized<T extends Int32Array | Uint32Array | Uint8Array>(a: T, capacity: number, fill: number): T {
  const b = new (a.constructor as new (n: number) => T)(capacity);
  b.set(a);
  if (fill !== 0) b.fill(fill, a.length);
  return b;
}
