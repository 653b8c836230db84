/**
 * Simulated CPU cost of the hypervisor's primitive operations, in nanoseconds. The hypervisor adds
 * these up per domain as simulated CPU time; the defaults are of the order measured for 4 KiB pages
 * on a current x86 core.
 */
export interface CostModel {
  /** Entering and leaving the hypervisor for one hypercall (default 300). */
  readonly hypercallNs: number;
  /** Taking a guest page fault into the hypervisor, e.g. a write to a shared page (default 1000). */
  readonly faultNs: number;
  /** Reading or writing one p2m entry (default 20). */
  readonly p2mUpdateNs: number;
  /** Allocating or freeing one frame (default 50). */
  readonly frameAllocNs: number;
  /** Copying one 4 KiB page (default 250). */
  readonly pageCopyNs: number;
  /** Zeroing one 4 KiB page (default 150). */
  readonly pageZeroNs: number;
  /** Hashing one 4 KiB page (default 400). */
  readonly pageHashNs: number;
  /** Comparing two 4 KiB pages in full (default 200). */
  readonly pageCompareNs: number;
}

/** Cost model used when none is given. */
export const DEFAULT_COST_MODEL: CostModel = Object.freeze({
  hypercallNs: 300,
  faultNs: 1000,
  p2mUpdateNs: 20,
  frameAllocNs: 50,
  pageCopyNs: 250,
  pageZeroNs: 150,
  pageHashNs: 400,
  pageCompareNs: 200,
});
