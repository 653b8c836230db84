import { asDomId, DOMID_SELF, PAGE_SIZE, type DomId, type Gfn, type HypercallPort } from '@pagevisor/types';
import type { TmemOid } from './dispatch.js';
import { TMEM_POOL_PERSIST } from './op-numbers.js';
import { errorFromRc } from './errno.js';
import { encodeRequest } from './request-codec.js';
import type { HypercallRequest } from './request.js';
import { decodeResponse, type HypercallResponse } from './response-codec.js';

/**
 * The guest side of the ABI: each method encodes one request, issues it through `port` as
 * `caller`, decodes the response and returns the result. Bad arguments throw HypervisorError
 * (EINVAL) before anything is sent; a failed hypercall (rc < 0) throws HypervisorError with errno
 * -rc, the op name and the hypervisor's message.
 */
export class HypercallClient {
  private readonly port: HypercallPort;
  /** The domain issuing the hypercalls. */
  readonly caller: DomId;

  constructor(port: HypercallPort, caller: DomId) {
    this.port = port;
    this.caller = caller;
  }

  /** Backs the extents of 2^extentOrder pages at `gfns`; returns the number of extents populated. */
  populatePhysmap(domid: DomId, gfns: readonly number[], extentOrder = 0, memFlags = 0): number {
    return this.call({ op: 'populate_physmap', domid, extentOrder, memFlags, gfns: [...gfns] }).rc;
  }

  /** Asks for `nrExtents` new extents; returns the base gfn of each extent populated. */
  increaseReservation(domid: DomId, nrExtents: number, extentOrder = 0, memFlags = 0): number[] {
    return this.call({ op: 'increase_reservation', domid, nrExtents, extentOrder, memFlags }).gfns!;
  }

  /** Releases the extents at `gfns`; returns the number of extents released. */
  decreaseReservation(domid: DomId, gfns: readonly number[], extentOrder = 0): number {
    return this.call({ op: 'decrease_reservation', domid, extentOrder, gfns: [...gfns] }).rc;
  }

  /** Pages `domid` holds. */
  currentReservation(domid: DomId): number {
    return this.call({ op: 'current_reservation', domid }).rc;
  }

  /** Pages `domid` may hold. */
  maximumReservation(domid: DomId): number {
    return this.call({ op: 'maximum_reservation', domid }).rc;
  }

  /** Reads `length` bytes at `offset` of page `gfn`. */
  readPage(domid: DomId, gfn: Gfn, offset: number, length: number): Uint8Array {
    return this.call({ op: 'read_page', domid, gfn, offset, length }).data!;
  }

  /** Writes `data` at `offset` of page `gfn`. */
  writePage(domid: DomId, gfn: Gfn, offset: number, data: Uint8Array): void {
    this.call({ op: 'write_page', domid, gfn, offset, data });
  }

  /** Nominates page `gfn` for sharing; returns its handle. */
  nominateGfn(domid: DomId, gfn: Gfn): number {
    return this.call({ op: 'sharing_nominate_gfn', domid, gfn }).handle!;
  }

  /** Makes page `clientGfn` of `clientDomid` map the frame of page `sourceGfn` of `sourceDomid`. */
  share(
    sourceDomid: DomId,
    sourceGfn: Gfn,
    sourceHandle: number,
    clientDomid: DomId,
    clientGfn: Gfn,
    clientHandle: number,
  ): void {
    this.call({ op: 'sharing_share', sourceDomid, sourceGfn, sourceHandle, clientDomid, clientGfn, clientHandle });
  }

  /** Nominates page `gfn` for paging out. */
  pagingNominate(domid: DomId, gfn: Gfn): void {
    this.call({ op: 'paging_nominate', domid, gfn });
  }

  /** Drops the frame of nominated page `gfn`; the page is then paged out. */
  pagingEvict(domid: DomId, gfn: Gfn): void {
    this.call({ op: 'paging_evict', domid, gfn });
  }

  /** Backs paged-out page `gfn` with a frame again, loaded with `data` (PAGE_SIZE bytes) when given. */
  pagingPrep(domid: DomId, gfn: Gfn, data?: Uint8Array): void {
    this.call(data === undefined ? { op: 'paging_prep', domid, gfn } : { op: 'paging_prep', domid, gfn, data });
  }

  /** Highest gfn `domid` has populated (0 when none). */
  maximumGpfn(domid: DomId): number {
    return this.call({ op: 'maximum_gpfn', domid }).rc;
  }

  /** Claims free frames so `domid` can grow to `nrPages` pages in total; 0 cancels the claim. */
  claimPages(domid: DomId, nrPages: number): void {
    this.call({ op: 'claim_pages', domid, nrPages });
  }

  /** Frames sharing saves, host-wide (control domain only). */
  sharingFreedPages(): number {
    return this.call({ op: 'get_sharing_freed_pages', domid: DOMID_SELF }).rc;
  }

  /** Shared frames in use, host-wide (control domain only). */
  sharingSharedPages(): number {
    return this.call({ op: 'get_sharing_shared_pages', domid: DOMID_SELF }).rc;
  }

  /** Linux madvise `advice` (Madvise.*) over `count` pages from `gfn`. */
  madvise(domid: DomId, gfn: Gfn, count: number, advice: number): void {
    this.call({ op: 'madvise', domid, gfn, count, advice });
  }

  /** Mappings of the frame behind page `gfn` (1 for a private page). */
  debugGfn(domid: DomId, gfn: Gfn): number {
    return this.call({ op: 'sharing_debug_gfn', domid, gfn }).rc;
  }

  /** Maps the nominated source page's frame, shared, at the client's unpopulated `clientGfn`. */
  addPhysmap(sourceDomid: DomId, sourceGfn: Gfn, sourceHandle: number, clientDomid: DomId, clientGfn: Gfn): void {
    this.call({ op: 'sharing_add_physmap', sourceDomid, sourceGfn, sourceHandle, clientDomid, clientGfn });
  }

  /** Broken invariants of the host, 0 when sound (control domain only). */
  sharingAudit(): number {
    return this.call({ op: 'sharing_audit', domid: DOMID_SELF }).rc;
  }

  /** Shares every identical page of [firstGfn, lastGfn] between two domains; returns the pages shared. */
  rangeShare(sourceDomid: DomId, clientDomid: DomId, firstGfn: Gfn, lastGfn: Gfn): number {
    return this.call({ op: 'sharing_range_share', sourceDomid, clientDomid, firstGfn, lastGfn }).rc;
  }

  /** Makes the empty domain `child` a copy-on-write fork of `parent`. */
  fork(child: DomId, parent: DomId): void {
    this.call({ op: 'sharing_fork', domid: child, parentDomid: parent });
  }

  /** Drops the fork's own pages: it maps its parent's again. */
  forkReset(domid: DomId): void {
    this.call({ op: 'sharing_fork_reset', domid });
  }

  /** A new tmem pool of `domid`, persistent or ephemeral; returns its id. */
  tmemNewPool(domid: DomId, persistent: boolean): number {
    return this.call({ op: 'tmem_new_pool', domid, flags: persistent ? TMEM_POOL_PERSIST : 0 }).rc;
  }

  /** Drops tmem pool `poolId` and its pages. */
  tmemDestroyPool(domid: DomId, poolId: number): void {
    this.call({ op: 'tmem_destroy_pool', domid, poolId });
  }

  /** Stores `page` (PAGE_SIZE bytes) at the key; true when stored, false when an ephemeral pool had no room. */
  tmemPutPage(domid: DomId, poolId: number, oid: TmemOid, index: number, page: Uint8Array): boolean {
    return this.call({ op: 'tmem_put_page', ...key(domid, poolId, oid), index, data: page }).rc === 1;
  }

  /** The page at the key, or undefined (an ephemeral pool gives a page once). */
  tmemGetPage(domid: DomId, poolId: number, oid: TmemOid, index: number): Uint8Array | undefined {
    const res = this.call({ op: 'tmem_get_page', ...key(domid, poolId, oid), index });
    return res.rc === 1 ? res.data!.slice() : undefined;
  }

  /** Drops the page at the key; true when one was there. */
  tmemFlushPage(domid: DomId, poolId: number, oid: TmemOid, index: number): boolean {
    return this.call({ op: 'tmem_flush_page', ...key(domid, poolId, oid), index }).rc === 1;
  }

  /** Drops every page of the object; returns how many. */
  tmemFlushObject(domid: DomId, poolId: number, oid: TmemOid): number {
    return this.call({ op: 'tmem_flush_object', ...key(domid, poolId, oid) }).rc;
  }

  /** Creates a domain with no memory (control domain only); returns its id. */
  createDomain(maxPages: number, gfnCount = maxPages, trustGroup = 0): DomId {
    return asDomId(this.call({ op: 'domctl_createdomain', domid: 0, maxPages, gfnCount, trustGroup }).rc);
  }

  /** Destroys `domid` (control domain only). */
  destroyDomain(domid: DomId): void {
    this.call({ op: 'domctl_destroydomain', domid });
  }

  /** Pauses `domid` (control domain only). */
  pauseDomain(domid: DomId): void {
    this.call({ op: 'domctl_pausedomain', domid });
  }

  /** Unpauses `domid` (control domain only). */
  unpauseDomain(domid: DomId): void {
    this.call({ op: 'domctl_unpausedomain', domid });
  }

  /** Sets the most pages `domid` may hold (control domain only). */
  setMaxPages(domid: DomId, maxPages: number): void {
    this.call({ op: 'domctl_max_mem', domid, maxMemKb: maxPages * (PAGE_SIZE / 1024) });
  }

  /** Enables or disables sharing of `domid`'s pages (control domain only). */
  setSharing(domid: DomId, enable: boolean): void {
    this.call({ op: 'domctl_sharing_control', domid, enable: enable ? 1 : 0 });
  }

  private call(req: HypercallRequest): HypercallResponse {
    // Typed requests: validated once, by the dispatcher that decodes them.
    const res = decodeResponse(req.op, this.port.hypercall(this.caller, encodeRequest(req, { validate: false })));
    if (res.rc < 0) throw errorFromRc(res.rc, req.op, res.message);
    return res;
  }
}

function key(domid: DomId, poolId: number, oid: TmemOid) {
  return { domid, poolId, oid0: oid[0], oid1: oid[1], oid2: oid[2] };
}
