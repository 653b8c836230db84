/**
 * Hypercall numbers. `memory_op` is Xen's (`__HYPERVISOR_memory_op` in xen/include/public/xen.h).
 * The page read/write hypercalls have no Xen equivalent (a Xen guest touches its pages with loads
 * and stores); pagevisor numbers them from 0x1000 up, far above Xen's range (which ends below 64),
 * so they can never collide with a Xen hypercall.
 */
export const Hypercall = {
  /** Xen's `__HYPERVISOR_memory_op`: reservation, physmap, paging and sharing sub-operations. */
  memory_op: 12,
  /** pagevisor only: read bytes of one guest page. */
  read_page: 0x1000,
  /** pagevisor only: write bytes into one guest page. */
  write_page: 0x1001,
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
  /** `XENMEM_paging_op`: page-out and page-in of guest pages, selected by {@link PagingOp}. */
  paging_op: 20,
  /** `XENMEM_sharing_op`: memory-sharing operations, selected by {@link SharingOp}. */
  sharing_op: 22,
} as const;

/** Sub-operations of `XENMEM_sharing_op`, as Xen's `XENMEM_sharing_op_*`. */
export const SharingOp = {
  /** `XENMEM_sharing_op_nominate_gfn`: mark a page as a sharing candidate; yields a handle. */
  nominate_gfn: 0,
  /** `XENMEM_sharing_op_share`: merge a client page into a source page, both nominated. */
  share: 2,
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
