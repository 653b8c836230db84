/**
 * The operations of the ABI, by name. The name is the `op` tag of a {@link HypercallRequest},
 * the `op` of every HypervisorError the ABI throws, and the key of its layout table.
 */
export const HYPERCALL_OPS = [
  'increase_reservation',
  'decrease_reservation',
  'populate_physmap',
  'current_reservation',
  'maximum_reservation',
  'maximum_gpfn',
  'claim_pages',
  'get_sharing_freed_pages',
  'get_sharing_shared_pages',
  'read_page',
  'write_page',
  'madvise',
  'sharing_nominate_gfn',
  'sharing_share',
  'sharing_debug_gfn',
  'sharing_add_physmap',
  'sharing_audit',
  'sharing_range_share',
  'sharing_fork',
  'sharing_fork_reset',
  'paging_nominate',
  'paging_evict',
  'paging_prep',
  'tmem_new_pool',
  'tmem_destroy_pool',
  'tmem_put_page',
  'tmem_get_page',
  'tmem_flush_page',
  'tmem_flush_object',
  'domctl_createdomain',
  'domctl_destroydomain',
  'domctl_pausedomain',
  'domctl_unpausedomain',
  'domctl_max_mem',
  'domctl_sharing_control',
] as const;

/** Name of an operation of the ABI. */
export type HypercallOp = (typeof HYPERCALL_OPS)[number];

/**
 * `XENMEM_increase_reservation`: give `domid` `nrExtents` new extents of 2^extentOrder pages,
 * wherever the hypervisor chooses. The response lists the base gfn of each extent populated.
 */
export interface IncreaseReservationRequest {
  readonly op: 'increase_reservation';
  readonly domid: number;
  readonly nrExtents: number;
  readonly extentOrder: number;
  readonly memFlags: number;
}

/** `XENMEM_decrease_reservation`: release the extents of 2^extentOrder pages starting at each gfn. */
export interface DecreaseReservationRequest {
  readonly op: 'decrease_reservation';
  readonly domid: number;
  readonly extentOrder: number;
  readonly gfns: number[];
}

/** `XENMEM_populate_physmap`: back the extents of 2^extentOrder pages starting at each gfn. */
export interface PopulatePhysmapRequest {
  readonly op: 'populate_physmap';
  readonly domid: number;
  readonly extentOrder: number;
  readonly memFlags: number;
  readonly gfns: number[];
}

/** `XENMEM_current_reservation`: pages `domid` holds. */
export interface CurrentReservationRequest {
  readonly op: 'current_reservation';
  readonly domid: number;
}

/** `XENMEM_maximum_reservation`: pages `domid` may hold. */
export interface MaximumReservationRequest {
  readonly op: 'maximum_reservation';
  readonly domid: number;
}

/** `XENMEM_maximum_gpfn`: highest gfn `domid` has populated (0 when none). */
export interface MaximumGpfnRequest {
  readonly op: 'maximum_gpfn';
  readonly domid: number;
}

/**
 * `XENMEM_claim_pages`: reserve free frames so that `domid` can grow to `nrPages` pages in total
 * while other domains' reservations cannot take them; 0 cancels the claim.
 */
export interface ClaimPagesRequest {
  readonly op: 'claim_pages';
  readonly domid: number;
  readonly nrPages: number;
}

/** `XENMEM_get_sharing_freed_pages`: host-wide; `domid` must be DOMID_SELF. */
export interface GetSharingFreedPagesRequest {
  readonly op: 'get_sharing_freed_pages';
  readonly domid: number;
}

/** `XENMEM_get_sharing_shared_pages`: host-wide; `domid` must be DOMID_SELF. */
export interface GetSharingSharedPagesRequest {
  readonly op: 'get_sharing_shared_pages';
  readonly domid: number;
}

/** pagevisor only: read `length` bytes at `offset` of page `gfn`. */
export interface ReadPageRequest {
  readonly op: 'read_page';
  readonly domid: number;
  readonly gfn: number;
  readonly offset: number;
  readonly length: number;
}

/** pagevisor only: write `data` at `offset` of page `gfn`. */
export interface WritePageRequest {
  readonly op: 'write_page';
  readonly domid: number;
  readonly gfn: number;
  readonly offset: number;
  readonly data: Uint8Array;
}

/** pagevisor only: Linux madvise `advice` (see Madvise) over `count` pages from `gfn`. */
export interface MadviseRequest {
  readonly op: 'madvise';
  readonly domid: number;
  readonly gfn: number;
  readonly count: number;
  readonly advice: number;
}

/** `XENMEM_sharing_op_nominate_gfn`: nominate page `gfn` for sharing; the response carries its handle. */
export interface SharingNominateGfnRequest {
  readonly op: 'sharing_nominate_gfn';
  readonly domid: number;
  readonly gfn: number;
}

/**
 * `XENMEM_sharing_op_share`: make the client page map the source page's frame. Both pages must
 * have been nominated and still carry the handles given.
 */
export interface SharingShareRequest {
  readonly op: 'sharing_share';
  readonly sourceDomid: number;
  readonly sourceGfn: number;
  readonly sourceHandle: number;
  readonly clientDomid: number;
  readonly clientGfn: number;
  readonly clientHandle: number;
}

/** `XENMEM_sharing_op_debug_gfn`: mappings of the frame behind page `gfn`. */
export interface SharingDebugGfnRequest {
  readonly op: 'sharing_debug_gfn';
  readonly domid: number;
  readonly gfn: number;
}

/**
 * `XENMEM_sharing_op_add_physmap`: map the nominated source page's frame, shared, at the client's
 * unpopulated `clientGfn`.
 */
export interface SharingAddPhysmapRequest {
  readonly op: 'sharing_add_physmap';
  readonly sourceDomid: number;
  readonly sourceGfn: number;
  readonly sourceHandle: number;
  readonly clientDomid: number;
  readonly clientGfn: number;
}

/** `XENMEM_sharing_op_audit`: the number of broken invariants (0: sound); host-wide, `domid` must be DOMID_SELF. */
export interface SharingAuditRequest {
  readonly op: 'sharing_audit';
  readonly domid: number;
}

/**
 * `XENMEM_sharing_op_range_share`: for each gfn in [firstGfn, lastGfn], share the source and client
 * pages when both have frames and equal contents.
 */
export interface SharingRangeShareRequest {
  readonly op: 'sharing_range_share';
  readonly sourceDomid: number;
  readonly clientDomid: number;
  readonly firstGfn: number;
  readonly lastGfn: number;
}

/** `XENMEM_sharing_op_fork`: make the empty domain `domid` a copy-on-write fork of `parentDomid`. */
export interface SharingForkRequest {
  readonly op: 'sharing_fork';
  readonly domid: number;
  readonly parentDomid: number;
}

/** `XENMEM_sharing_op_fork_reset`: drop the fork's own pages; it maps its parent's again. */
export interface SharingForkResetRequest {
  readonly op: 'sharing_fork_reset';
  readonly domid: number;
}

/** `XENMEM_paging_op_nominate`: nominate page `gfn` of `domid` for paging out. */
export interface PagingNominateRequest {
  readonly op: 'paging_nominate';
  readonly domid: number;
  readonly gfn: number;
}

/** `XENMEM_paging_op_evict`: drop the frame of nominated page `gfn`; the page is then paged out. */
export interface PagingEvictRequest {
  readonly op: 'paging_evict';
  readonly domid: number;
  readonly gfn: number;
}

/**
 * `XENMEM_paging_op_prep`: back paged-out page `gfn` with a frame again. With `data` (exactly
 * PAGE_SIZE bytes) the page is loaded with it in the same call, as Xen's prep with a buffer
 * ("prep/load"); without, the pager fills the page afterwards.
 */
export interface PagingPrepRequest {
  readonly op: 'paging_prep';
  readonly domid: number;
  readonly gfn: number;
  readonly data?: Uint8Array;
}

/** `TMEM_NEW_POOL`: a new pool of `domid`; `flags` TMEM_POOL_PERSIST or 0 (ephemeral). */
export interface TmemNewPoolRequest {
  readonly op: 'tmem_new_pool';
  readonly domid: number;
  readonly flags: number;
}

/** `TMEM_DESTROY_POOL`: drop pool `poolId` of `domid` and its pages. */
export interface TmemDestroyPoolRequest {
  readonly op: 'tmem_destroy_pool';
  readonly domid: number;
  readonly poolId: number;
}

/** A tmem page key: pool, object id (three 64-bit words) and page index. */
export interface TmemKey {
  readonly domid: number;
  readonly poolId: number;
  readonly oid0: number;
  readonly oid1: number;
  readonly oid2: number;
}

/** `TMEM_PUT_PAGE`: store `data` (PAGE_SIZE bytes) at (pool, object, index). */
export interface TmemPutPageRequest extends TmemKey {
  readonly op: 'tmem_put_page';
  readonly index: number;
  readonly data: Uint8Array;
}

/** `TMEM_GET_PAGE`: fetch the page at (pool, object, index). */
export interface TmemGetPageRequest extends TmemKey {
  readonly op: 'tmem_get_page';
  readonly index: number;
}

/** `TMEM_FLUSH_PAGE`: drop the page at (pool, object, index). */
export interface TmemFlushPageRequest extends TmemKey {
  readonly op: 'tmem_flush_page';
  readonly index: number;
}

/** `TMEM_FLUSH_OBJECT`: drop every page of (pool, object). */
export interface TmemFlushObjectRequest extends TmemKey {
  readonly op: 'tmem_flush_object';
}

/**
 * `XEN_DOMCTL_createdomain`: a new domain with no memory. `domid` must be 0 (the hypervisor picks
 * the id, returned as rc).
 */
export interface DomctlCreatedomainRequest {
  readonly op: 'domctl_createdomain';
  readonly domid: number;
  readonly maxPages: number;
  readonly gfnCount: number;
  readonly trustGroup: number;
}

/** `XEN_DOMCTL_destroydomain`. */
export interface DomctlDestroydomainRequest {
  readonly op: 'domctl_destroydomain';
  readonly domid: number;
}

/** `XEN_DOMCTL_pausedomain`. */
export interface DomctlPausedomainRequest {
  readonly op: 'domctl_pausedomain';
  readonly domid: number;
}

/** `XEN_DOMCTL_unpausedomain`. */
export interface DomctlUnpausedomainRequest {
  readonly op: 'domctl_unpausedomain';
  readonly domid: number;
}

/** `XEN_DOMCTL_max_mem`: max_pages becomes `maxMemKb` / 4. */
export interface DomctlMaxMemRequest {
  readonly op: 'domctl_max_mem';
  readonly domid: number;
  readonly maxMemKb: number;
}

/** `XEN_DOMCTL_mem_sharing_op` / `XEN_DOMCTL_MEM_SHARING_CONTROL`: `enable` 1 or 0. */
export interface DomctlSharingControlRequest {
  readonly op: 'domctl_sharing_control';
  readonly domid: number;
  readonly enable: number;
}

/** A decoded hypercall: one of the request shapes above, tagged by `op`. */
export type HypercallRequest =
  | IncreaseReservationRequest
  | DecreaseReservationRequest
  | PopulatePhysmapRequest
  | CurrentReservationRequest
  | MaximumReservationRequest
  | MaximumGpfnRequest
  | ClaimPagesRequest
  | GetSharingFreedPagesRequest
  | GetSharingSharedPagesRequest
  | ReadPageRequest
  | WritePageRequest
  | MadviseRequest
  | SharingNominateGfnRequest
  | SharingShareRequest
  | SharingDebugGfnRequest
  | SharingAddPhysmapRequest
  | SharingAuditRequest
  | SharingRangeShareRequest
  | SharingForkRequest
  | SharingForkResetRequest
  | PagingNominateRequest
  | PagingEvictRequest
  | PagingPrepRequest
  | TmemNewPoolRequest
  | TmemDestroyPoolRequest
  | TmemPutPageRequest
  | TmemGetPageRequest
  | TmemFlushPageRequest
  | TmemFlushObjectRequest
  | DomctlCreatedomainRequest
  | DomctlDestroydomainRequest
  | DomctlPausedomainRequest
  | DomctlUnpausedomainRequest
  | DomctlMaxMemRequest
  | DomctlSharingControlRequest;

/** The request shape of operation `K`. */
export type HypercallRequestOf<K extends HypercallOp> = Extract<HypercallRequest, { op: K }>;
