/*
 * Every number below that names a Xen constant is Xen's, and xen-numbers.test.ts holds each one
 * against a table transcribed from Xen's public headers (xen/include/public): a number that
 * drifts, a Xen-named number missing from that table, or a pagevisor-only number that collides
 * with one of Xen's fails it.
 */

/**
 * Hypercall numbers. `memory_op`, `domctl` and `tmem_op` are Xen's (`__HYPERVISOR_*` in
 * xen/include/public/xen.h). The page read/write hypercalls (a Xen guest touches its pages with
 * loads and stores) and madvise have no Xen equivalent; pagevisor numbers them from 0x1000 up, far
 * above Xen's range (which ends below 64), so they can never collide with a Xen hypercall.
 */
export const Hypercall = {
  /** Xen's `__HYPERVISOR_memory_op`: reservation, physmap, paging and sharing sub-operations. */
  memory_op: 12,
  /** Xen's `__HYPERVISOR_domctl`: domain control by the control domain, selected by {@link DomCtl}. */
  domctl: 36,
  /** Xen's `__HYPERVISOR_tmem_op`: transcendent memory pools, selected by {@link TmemCmd}. */
  tmem_op: 38,
  /** pagevisor only: read bytes of one guest page. */
  read_page: 0x1000,
  /** pagevisor only: write bytes into one guest page. */
  write_page: 0x1001,
  /** pagevisor only: advice on a range of guest pages (Linux madvise: DONTNEED, MERGEABLE, UNMERGEABLE). */
  madvise: 0x1002,
} as const;

/** `memory_op` sub-operation numbers, as Xen's `XENMEM_*` (xen/include/public/memory.h). */
export const XenMem = {
  /** `XENMEM_increase_reservation`: give the domain new extents; returns extents done. */
  increase_reservation: 0,
  /** `XENMEM_decrease_reservation`: release the extents at the given gfns; returns extents done. */
  decrease_reservation: 1,
  /** `XENMEM_current_reservation`: pages the domain holds (tot_pages). */
  current_reservation: 3,
  /** `XENMEM_maximum_reservation`: pages the domain may hold (max_pages). */
  maximum_reservation: 4,
  /** `XENMEM_populate_physmap`: back the given gfns with memory; returns extents done. */
  populate_physmap: 6,
  /**
   * `XENMEM_maximum_gpfn`: highest guest frame number the domain has populated. Xen's 2 is
   * `XENMEM_maximum_ram_page` (the host's highest machine frame), which this ABI does not have.
   */
  maximum_gpfn: 14,
  /** `XENMEM_get_sharing_freed_pages`: machine frames sharing saves, host-wide. */
  get_sharing_freed_pages: 18,
  /** `XENMEM_get_sharing_shared_pages`: shared machine frames in use, host-wide. */
  get_sharing_shared_pages: 19,
  /** `XENMEM_paging_op`: page-out and page-in of guest pages, selected by {@link PagingOp}. */
  paging_op: 20,
  /** `XENMEM_sharing_op`: memory-sharing operations, selected by {@link SharingOp}. */
  sharing_op: 22,
  /** `XENMEM_claim_pages`: reserve free frames for a domain's coming reservation. */
  claim_pages: 24,
} as const;

/** Sub-operations of `XENMEM_sharing_op`, as Xen's `XENMEM_sharing_op_*`. */
export const SharingOp = {
  /** `XENMEM_sharing_op_nominate_gfn`: mark a page as a sharing candidate; yields a handle. */
  nominate_gfn: 0,
  /** `XENMEM_sharing_op_share`: merge a client page into a source page, both nominated. */
  share: 2,
  /** `XENMEM_sharing_op_debug_gfn`: how many mappings share the frame behind a page. */
  debug_gfn: 3,
  /** `XENMEM_sharing_op_add_physmap`: map a nominated source page into an empty client gfn. */
  add_physmap: 6,
  /** `XENMEM_sharing_op_audit`: check the sharing state; returns the number of problems. */
  audit: 7,
  /** `XENMEM_sharing_op_range_share`: share every identical page of a gfn range between two domains. */
  range_share: 8,
  /** `XENMEM_sharing_op_fork`: make an empty domain a copy-on-write fork of a parent. */
  fork: 9,
  /** `XENMEM_sharing_op_fork_reset`: drop a fork's own pages so it maps its parent's again. */
  fork_reset: 10,
} as const;

/** `XEN_DOMCTL_*` commands of `__HYPERVISOR_domctl` (xen/include/public/domctl.h). */
export const DomCtl = {
  /** `XEN_DOMCTL_createdomain`: a new domain with no memory; returns its id. */
  createdomain: 1,
  /** `XEN_DOMCTL_destroydomain`: release every page of a domain and remove it. */
  destroydomain: 2,
  /** `XEN_DOMCTL_pausedomain`: stop a domain's accesses (EAGAIN) until unpaused. */
  pausedomain: 3,
  /** `XEN_DOMCTL_unpausedomain`: let a paused domain run again. */
  unpausedomain: 4,
  /** `XEN_DOMCTL_max_mem`: set the most memory a domain may hold (max_pages), in KiB. */
  max_mem: 11,
  /** `XEN_DOMCTL_mem_sharing_op` with `XEN_DOMCTL_MEM_SHARING_CONTROL`: enable or disable sharing. */
  mem_sharing_op: 57,
} as const;

/** `XEN_DOMCTL_MEM_SHARING_CONTROL`: the mem_sharing_op that turns sharing on or off. */
export const XEN_DOMCTL_MEM_SHARING_CONTROL = 0;

/** Commands of `__HYPERVISOR_tmem_op`, as Xen's `TMEM_*` (xen/include/public/tmem.h). */
export const TmemCmd = {
  /** `TMEM_NEW_POOL`: a new pool of the calling domain; returns its id. */
  new_pool: 1,
  /** `TMEM_DESTROY_POOL`: drop a pool and every page in it. */
  destroy_pool: 2,
  /** `TMEM_PUT_PAGE`: store a page under (pool, object, index); returns 1 stored, 0 not. */
  put_page: 4,
  /** `TMEM_GET_PAGE`: fetch a page; returns 1 found (an ephemeral page is then dropped), 0 not. */
  get_page: 5,
  /** `TMEM_FLUSH_PAGE`: drop one page; returns 1 when one was there, else 0. */
  flush_page: 6,
  /** `TMEM_FLUSH_OBJECT`: drop every page of an object; returns the number dropped. */
  flush_object: 7,
} as const;

/** `TMEM_POOL_PERSIST`: a persistent pool (frontswap) keeps every page; without it pages are ephemeral (cleancache). */
export const TMEM_POOL_PERSIST = 1;
/** `TMEM_POOL_SHARED`: a pool shared between domains; refused here (no cross-domain pools). */
export const TMEM_POOL_SHARED = 2;

/** Linux `madvise` advice values this ABI accepts. */
export const Madvise = {
  /** `MADV_DONTNEED`: drop the pages' contents; they read as zeros and are backed again on the next write. */
  dontneed: 4,
  /** `MADV_MERGEABLE`: the pages may be de-duplicated by a scanning strategy (KSM). */
  mergeable: 12,
  /** `MADV_UNMERGEABLE`: unmerge the pages and stop scanning them. */
  unmergeable: 13,
} as const;

/** Sub-operations of `XENMEM_paging_op`, as Xen's `XENMEM_paging_op_*`. */
export const PagingOp = {
  /** `XENMEM_paging_op_nominate`: mark a page as a candidate for paging out. */
  nominate: 0,
  /** `XENMEM_paging_op_evict`: drop a nominated page's frame; the page is then paged out. */
  evict: 1,
  /** `XENMEM_paging_op_prep`: back a paged-out page with a frame again, loading its content if given. */
  prep: 2,
} as const;

/** `XENMEMF_populate_on_demand`: populate without frames; the first access allocates one. */
export const XENMEMF_populate_on_demand = 1 << 16;

/** Every `memFlags` bit this ABI accepts; any other bit is refused with EINVAL. */
export const MEM_FLAGS_KNOWN = XENMEMF_populate_on_demand;

/** Largest extent count of one reservation op (`nrExtents`, or the length of `gfns`). */
export const MAX_EXTENTS = 1 << 20;
