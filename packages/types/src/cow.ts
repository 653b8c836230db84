import type { DomId, Gfn, Mfn } from './ids.js';
import type { P2mTable } from './p2m.js';

/** How a copy-on-write fault was resolved. */
export const CowOutcome = {
  /** The page got a new frame with a copy of the shared content. */
  copied: 0,
  /** The writer was the last sharer and kept the frame, now private. */
  kept: 1,
  /** The page mapped the zero frame and got a new zero-filled frame. */
  zeroAllocated: 2,
} as const;

/** One of the {@link CowOutcome} values. */
export type CowOutcome = (typeof CowOutcome)[keyof typeof CowOutcome];

/**
 * The copy-on-write fault handler: makes a ram_shared entry private and writable.
 */
export interface CowFaultHandler {
  /**
   * Unshares `table`'s entry for `gfn` (of domain `dom`), which must be ram_shared. When
   * `willOverwrite` is true the caller writes the whole page next, so no copy or zeroing is needed.
   * Returns the outcome; the entry is then ram_rw with a private frame. Throws
   * HypervisorError(ENOMEM) and changes nothing when a frame is needed and none is free.
   */
  unshare(dom: DomId, table: P2mTable, gfn: Gfn, willOverwrite: boolean): CowOutcome;
  /** Drops `dom`'s mapping of shared frame `mfn` at `gfn` (on free); frees the frame if it was the last. */
  release(dom: DomId, gfn: Gfn, mfn: Mfn): void;
}
