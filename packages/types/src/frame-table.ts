import type { DomId, Gfn, Mfn } from './ids.js';

/**
 * A strategy that hands out blocks of 2^order contiguous machine frames (Xen's page_alloc).
 * It knows only which frames are free; ownership and counts live in the {@link FrameTable}.
 */
export interface FrameAllocator {
  /** Name of the strategy, e.g. `"buddy"`. */
  readonly name: string;
  /** Frames managed, free or not. */
  readonly totalFrames: number;
  /** Frames currently free. */
  readonly freeFrames: number;
  /** Allocates 2^order contiguous frames; returns the first, or INVALID_MFN when none is free. */
  alloc(order: number): Mfn;
  /** Returns the block of 2^order frames starting at `mfn` (as allocated). */
  free(mfn: Mfn, order: number): void;
  /** True when frame `mfn` is free. */
  isFree(mfn: Mfn): boolean;
}

/** Flags of a frame in the frame table (one byte per frame). */
export const FrameFlags = {
  /** Content shared copy-on-write: read-only for every mapper. */
  shared: 1 << 0,
  /** The hypervisor's zero frame: all zeros, never written, never freed. */
  zero: 1 << 1,
} as const;

/**
 * The frame table: per machine frame its owner, the guest frame that maps it (the m2p, for
 * private frames), a reference count and flags, all in typed arrays. Plus per-domain accounting
 * of `tot_pages` against `max_pages`, as Xen keeps in `struct domain`.
 */
export interface FrameTable {
  /** Frames of machine RAM. */
  readonly totalFrames: number;
  /** Frames currently free. */
  readonly freeFrames: number;
  /** Allocates one frame for `owner` mapped at `gfn`, refcount 1; INVALID_MFN when none is free. */
  allocFrame(owner: DomId, gfn: Gfn): Mfn;
  /** Frees frame `mfn`: owner DOMID_INVALID, refcount 0, flags 0. */
  freeFrame(mfn: Mfn): void;
  /** True when frame `mfn` is free. */
  isFree(mfn: Mfn): boolean;
  /** Owner of frame `mfn` (DOMID_COW when shared, DOMID_INVALID when free). */
  owner(mfn: Mfn): DomId;
  /**
   * Guest frame mapping a private frame (the m2p entry); INVALID_GFN for a free frame. For a
   * shared frame, what the reverse map keeps there (pagevisor's frame table lends it its m2p
   * words as anchors): not a mapping to rely on.
   */
  gfn(mfn: Mfn): Gfn;
  /** Sets owner and m2p entry of frame `mfn`. */
  setOwner(mfn: Mfn, owner: DomId, gfn: Gfn): void;
  /** Reference count: mappings of the frame. */
  refcount(mfn: Mfn): number;
  /** Adds `delta` to the reference count and returns the new count. */
  addRef(mfn: Mfn, delta: number): number;
  /** Flags of frame `mfn` (see {@link FrameFlags}). */
  flags(mfn: Mfn): number;
  /** Sets the flags of frame `mfn`. */
  setFlags(mfn: Mfn, flags: number): void;
  /**
   * Optional, O(1): over the frames flagged shared, the zero frame (flagged zero) aside, those
   * with a mapping (`mapped`), with two or more (`shared`), and the mappings beyond each one's
   * first (`sharing`). Without it the
   * hypervisor walks the frame table for these figures at every sample.
   */
  sharedFrameCounts?(): { mapped: number; shared: number; sharing: number };

  /** Starts accounting for `dom` with a limit of `maxPages`. */
  addDomain(dom: DomId, maxPages: number): void;
  /** Stops accounting for `dom`; its tot_pages must be 0. */
  removeDomain(dom: DomId): void;
  /** True when `dom` is accounted. */
  hasDomain(dom: DomId): boolean;
  /** Pages the domain holds (populated guest frames). */
  totPages(dom: DomId): number;
  /** Largest tot_pages the domain may reach. */
  maxPages(dom: DomId): number;
  /** Sets max_pages (may be below tot_pages: then only frees succeed). */
  setMaxPages(dom: DomId, maxPages: number): void;
  /** Adds `delta` to tot_pages. */
  addTotPages(dom: DomId, delta: number): void;
}
