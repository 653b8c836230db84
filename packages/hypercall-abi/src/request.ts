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
  'read_page',
  'write_page',
  'sharing_nominate_gfn',
  'sharing_share',
  'paging_nominate',
  'paging_evict',
  'paging_prep',
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

/** A decoded hypercall: one of the request shapes above, tagged by `op`. */
export type HypercallRequest =
  | IncreaseReservationRequest
  | DecreaseReservationRequest
  | PopulatePhysmapRequest
  | CurrentReservationRequest
  | MaximumReservationRequest
  | ReadPageRequest
  | WritePageRequest
  | SharingNominateGfnRequest
  | SharingShareRequest
  | PagingNominateRequest
  | PagingEvictRequest
  | PagingPrepRequest;

/** The request shape of operation `K`. */
export type HypercallRequestOf<K extends HypercallOp> = Extract<HypercallRequest, { op: K }>;
