import {
  asDomId,
  asGfn,
  DOMID_SELF,
  HypervisorError,
  invariant,
  isRealDomId,
  type DomId,
  type Gfn,
} from '@pagevisor/types';
import { errorResponse } from './errno.js';
import { decodeRequest } from './request-codec.js';
import { HYPERCALL_OPS, type HypercallOp, type HypercallRequest } from './request.js';
import { encodeResponse, type HypercallResponse } from './response-codec.js';

/**
 * The hypervisor side of the ABI: one method per operation, called with validated arguments and
 * DOMID_SELF already replaced by the caller. Privilege checks are the handler's. Expected failures
 * throw HypervisorError and change nothing; the dispatcher turns them into rc = -errno. Anything
 * else thrown is a bug and propagates.
 */
export interface HypercallHandler {
  /** Populates `nrExtents` extents of 2^extentOrder pages; returns the base gfn of each extent done. */
  increaseReservation(caller: DomId, domid: DomId, nrExtents: number, extentOrder: number, memFlags: number): number[];
  /** Releases the extents at `gfns`; returns the number of extents released. */
  decreaseReservation(caller: DomId, domid: DomId, gfns: readonly number[], extentOrder: number): number;
  /** Backs the extents at `gfns`; returns the number of extents populated. */
  populatePhysmap(caller: DomId, domid: DomId, gfns: readonly number[], extentOrder: number, memFlags: number): number;
  /** Pages `domid` holds. */
  currentReservation(caller: DomId, domid: DomId): number;
  /** Pages `domid` may hold. */
  maximumReservation(caller: DomId, domid: DomId): number;
  /** `length` bytes at `offset` of page `gfn` (a new array of exactly `length` bytes). */
  readPage(caller: DomId, domid: DomId, gfn: Gfn, offset: number, length: number): Uint8Array;
  /** Writes `data` at `offset` of page `gfn`. `data` may be a view of the request: copy it to keep it. */
  writePage(caller: DomId, domid: DomId, gfn: Gfn, offset: number, data: Uint8Array): void;
  /** Nominates page `gfn` for sharing; returns its handle. */
  nominateGfn(caller: DomId, domid: DomId, gfn: Gfn): number;
  /** Makes the client page map the source page's frame. */
  share(
    caller: DomId,
    sourceDomid: DomId,
    sourceGfn: Gfn,
    sourceHandle: number,
    clientDomid: DomId,
    clientGfn: Gfn,
    clientHandle: number,
  ): void;
  /** Nominates page `gfn` for paging out (XENMEM_paging_op_nominate). */
  pagingNominate(caller: DomId, domid: DomId, gfn: Gfn): void;
  /** Drops the frame of nominated page `gfn`, which is then paged out (XENMEM_paging_op_evict). */
  pagingEvict(caller: DomId, domid: DomId, gfn: Gfn): void;
  /**
   * Backs paged-out page `gfn` with a frame again (XENMEM_paging_op_prep); when `data` is given
   * (exactly PAGE_SIZE bytes) the page is loaded with it. `data` may be a view of the request:
   * copy it to keep it.
   */
  pagingPrep(caller: DomId, domid: DomId, gfn: Gfn, data: Uint8Array | undefined): void;
}

/**
 * Runs one hypercall for domain `caller` (a real domain id): decodes and validates `request`,
 * resolves DOMID_SELF to `caller`, calls `handler` and encodes its result. A refused request
 * (HypervisorError from decoding or from the handler) becomes a response with rc = -errno and the
 * error's message; a request refused while decoding never reaches the handler. Any other
 * exception is a bug and propagates.
 */
export function dispatchHypercall(handler: HypercallHandler, caller: DomId, request: Uint8Array): Uint8Array {
  invariant(isRealDomId(caller), `dispatchHypercall: caller ${caller} is not a real domain id`);
  let req: HypercallRequest;
  try {
    req = decodeRequest(request);
  } catch (e) {
    if (!(e instanceof HypervisorError)) throw e;
    // Errors raised before the op was known carry a hypercall name instead (e.g. memory_op): keep it.
    const op = (HYPERCALL_OPS as readonly string[]).includes(e.op) ? e.op : undefined;
    // An error response has no op-specific body, so any op encodes it.
    return encodeResponse('current_reservation', errorResponse(e, op));
  }
  let res: HypercallResponse;
  try {
    res = call(handler, caller, req);
  } catch (e) {
    if (!(e instanceof HypervisorError)) throw e;
    res = errorResponse(e, req.op);
  }
  return encodeResponse(req.op, res);
}

function call(h: HypercallHandler, caller: DomId, req: HypercallRequest): HypercallResponse {
  const op = req.op;
  switch (op) {
    case 'increase_reservation': {
      const gfns = h.increaseReservation(caller, self(caller, req.domid), req.nrExtents, req.extentOrder, req.memFlags);
      invariant(gfns.length <= req.nrExtents, `${op}: handler returned ${gfns.length} gfns for ${req.nrExtents}`);
      return { rc: gfns.length, gfns };
    }
    case 'decrease_reservation': {
      const done = h.decreaseReservation(caller, self(caller, req.domid), req.gfns, req.extentOrder);
      return count(op, done, req.gfns.length);
    }
    case 'populate_physmap': {
      const done = h.populatePhysmap(caller, self(caller, req.domid), req.gfns, req.extentOrder, req.memFlags);
      return count(op, done, req.gfns.length);
    }
    case 'current_reservation':
      return count(op, h.currentReservation(caller, self(caller, req.domid)), Number.MAX_SAFE_INTEGER);
    case 'maximum_reservation':
      return count(op, h.maximumReservation(caller, self(caller, req.domid)), Number.MAX_SAFE_INTEGER);
    case 'read_page': {
      const data = h.readPage(caller, self(caller, req.domid), asGfn(req.gfn), req.offset, req.length);
      invariant(data.length === req.length, `${op}: handler returned ${data.length} bytes for ${req.length}`);
      return { rc: 0, data };
    }
    case 'write_page':
      h.writePage(caller, self(caller, req.domid), asGfn(req.gfn), req.offset, req.data);
      return { rc: 0 };
    case 'sharing_nominate_gfn':
      return { rc: 0, handle: h.nominateGfn(caller, self(caller, req.domid), asGfn(req.gfn)) };
    case 'sharing_share':
      h.share(
        caller,
        self(caller, req.sourceDomid),
        asGfn(req.sourceGfn),
        req.sourceHandle,
        self(caller, req.clientDomid),
        asGfn(req.clientGfn),
        req.clientHandle,
      );
      return { rc: 0 };
    case 'paging_nominate':
      h.pagingNominate(caller, self(caller, req.domid), asGfn(req.gfn));
      return { rc: 0 };
    case 'paging_evict':
      h.pagingEvict(caller, self(caller, req.domid), asGfn(req.gfn));
      return { rc: 0 };
    case 'paging_prep':
      h.pagingPrep(caller, self(caller, req.domid), asGfn(req.gfn), req.data);
      return { rc: 0 };
  }
}

/** DOMID_SELF names the calling domain. */
function self(caller: DomId, domid: number): DomId {
  return domid === DOMID_SELF ? caller : asDomId(domid);
}

function count(op: HypercallOp, done: number, max: number): HypercallResponse {
  // A negative count would read as an errno: handlers must throw instead.
  invariant(Number.isSafeInteger(done) && done >= 0 && done <= max, `${op}: handler returned count ${done}`);
  return { rc: done };
}
