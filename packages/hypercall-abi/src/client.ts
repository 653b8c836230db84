import type { DomId, Gfn, HypercallPort } from '@pagevisor/types';
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

  private call(req: HypercallRequest): HypercallResponse {
    const res = decodeResponse(req.op, this.port.hypercall(this.caller, encodeRequest(req)));
    if (res.rc < 0) throw errorFromRc(res.rc, req.op, res.message);
    return res;
  }
}
