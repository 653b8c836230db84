/** Memory figures of one domain. */
export interface DomainStats {
  /** Domain id. */
  readonly domId: number;
  /** Name given at creation. */
  readonly name: string;
  /** Populated guest pages (Xen's tot_pages). */
  readonly totPages: number;
  /** Limit on totPages (Xen's max_pages). */
  readonly maxPages: number;
  /** Pages mapping a frame of their own. */
  readonly privatePages: number;
  /** Pages mapping a shared frame other than the zero frame. */
  readonly sharedPages: number;
  /** Pages mapping the zero frame. */
  readonly zeroPages: number;
  /** Pages populated on demand, not yet backed. */
  readonly podPages: number;
  /** Pages whose content is in swap, not in RAM. */
  readonly pagedPages: number;
  /** Writes to a shared frame that copied it or, as its last sharer, kept it. */
  readonly cowFaults: number;
  /** Writes to a page mapping the zero frame, which gave it a frame of its own. */
  readonly zeroFaults: number;
  /** Simulated CPU time the hypervisor spent for this domain, in ns. */
  readonly cpuNs: number;
}

/** Memory figures of the whole host. */
export interface TotalsStats {
  /** Populated guest pages over all domains. */
  readonly guestPages: number;
  /** Machine frames in use (not free), the zero frame included. */
  readonly machineFramesUsed: number;
  /** Machine frames free. */
  readonly machineFramesFree: number;
  /** Frames other than the zero frame mapped by two or more pages (KSM's pages_shared). */
  readonly pagesShared: number;
  /** Extra mappings of those frames: the pages sharing saves (KSM's pages_sharing). */
  readonly pagesSharing: number;
  /** Pages mapping the zero frame. */
  readonly zeroPages: number;
  /** Pages whose content is in swap, not in RAM. */
  readonly pagedPages: number;
  /** Copy-on-write faults on shared frames over all domains (see DomainStats.cowFaults). */
  readonly cowFaults: number;
  /** Zero-frame write faults over all domains (see DomainStats.zeroFaults). */
  readonly zeroFaults: number;
  /**
   * Percentage of guest pages that sharing spares a frame of their own:
   * (guestPages - pagedPages - machineFramesUsed) / guestPages (pages out on swap do not count).
   */
  readonly savedPct: number;
  /** Simulated hypervisor CPU time over all domains, in ns. */
  readonly cpuNs: number;
  /** Simulated CPU time the dedup strategy spent on its own (scanning), in ns. */
  readonly dedupCpuNs: number;
}
