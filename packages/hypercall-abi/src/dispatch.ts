import {
  asDomId,
  asGfn,
  DOMID_SELF,
  HypervisorError,
  InvariantError,
  isRealDomId,
  PAGE_SIZE,
  type DomId,
  type Gfn,
} from '@pagevisor/types';
import { errorResponse } from './errno.js';
import { TMEM_POOL_PERSIST } from './op-numbers.js';
import { decodeRequest } from './request-codec.js';
import { HYPERCALL_OPS, type HypercallOp, type HypercallRequest } from './request.js';
import { encodeResponseInto, type HypercallResponse } from './response-codec.js';

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
  /** Highest gfn `domid` has populated (0 when none). */
  maximumGpfn(caller: DomId, domid: DomId): number;
  /** Claims free frames so `domid` can grow to `nrPages` pages in total; 0 cancels the claim. */
  claimPages(caller: DomId, domid: DomId, nrPages: number): void;
  /** Frames sharing saves, host-wide. */
  sharingFreedPages(caller: DomId): number;
  /** Shared frames in use, host-wide. */
  sharingSharedPages(caller: DomId): number;
  /** Linux madvise `advice` (Madvise.*) over `count` pages from `gfn`. */
  madvise(caller: DomId, domid: DomId, gfn: Gfn, count: number, advice: number): void;
  /** Mappings of the frame behind page `gfn`. */
  debugGfn(caller: DomId, domid: DomId, gfn: Gfn): number;
  /** Maps the nominated source page's frame at the client's unpopulated `clientGfn`. */
  addPhysmap(caller: DomId, sourceDomid: DomId, sourceGfn: Gfn, sourceHandle: number, clientDomid: DomId, clientGfn: Gfn): void;
  /** Broken invariants of the host (0: sound). */
  sharingAudit(caller: DomId): number;
  /** Shares every identical page of [firstGfn, lastGfn] between the two domains; returns the pages shared. */
  rangeShare(caller: DomId, sourceDomid: DomId, clientDomid: DomId, firstGfn: Gfn, lastGfn: Gfn): number;
  /** Makes empty domain `child` a copy-on-write fork of `parent`. */
  fork(caller: DomId, child: DomId, parent: DomId): void;
  /** Drops the fork's own pages: it maps its parent's again. */
  forkReset(caller: DomId, domid: DomId): void;
  /** A new tmem pool of `domid`; returns its id. */
  tmemNewPool(caller: DomId, domid: DomId, persistent: boolean): number;
  /** Drops tmem pool `poolId` of `domid`. */
  tmemDestroyPool(caller: DomId, domid: DomId, poolId: number): void;
  /** Stores `page` (a view of the request: copy it to keep it); true when stored. */
  tmemPutPage(caller: DomId, domid: DomId, poolId: number, oid: TmemOid, index: number, page: Uint8Array): boolean;
  /** The page at the key (a new PAGE_SIZE array), or undefined when there is none. */
  tmemGetPage(caller: DomId, domid: DomId, poolId: number, oid: TmemOid, index: number): Uint8Array | undefined;
  /** Drops the page at the key; true when one was there. */
  tmemFlushPage(caller: DomId, domid: DomId, poolId: number, oid: TmemOid, index: number): boolean;
  /** Drops every page of the object; returns how many. */
  tmemFlushObject(caller: DomId, domid: DomId, poolId: number, oid: TmemOid): number;
  /** A new domain with no memory; returns its id. */
  createDomain(caller: DomId, maxPages: number, gfnCount: number, trustGroup: number): DomId;
  /** Destroys `domid`. */
  destroyDomain(caller: DomId, domid: DomId): void;
  /** Pauses `domid`: its accesses are refused with EAGAIN. */
  pauseDomain(caller: DomId, domid: DomId): void;
  /** Lets `domid` run again. */
  unpauseDomain(caller: DomId, domid: DomId): void;
  /** Sets the most pages `domid` may hold. */
  setMaxPages(caller: DomId, domid: DomId, maxPages: number): void;
  /** Enables or disables sharing of `domid`'s pages. */
  setSharing(caller: DomId, domid: DomId, enable: boolean): void;
}

/** A tmem object id: three 64-bit words, each a safe integer. */
export type TmemOid = readonly [number, number, number];

/**
 * Runs one hypercall for domain `caller`: decodes and validates `request`, refuses a caller
 * that is not a real domain id (ESRCH for a reserved id such as DOMID_SELF, EINVAL for a negative
 * or non-integer one), resolves DOMID_SELF to `caller`, calls `handler` and encodes its result.
 * A refused request
 * (HypervisorError from decoding or from the handler) becomes a response with rc = -errno and the
 * error's message; a request refused while decoding never reaches the handler. Any other
 * exception is a bug and propagates.
 *
 * The response is a new Uint8Array; one of 65 to 1024 bytes is a view into a pool of 8 KiB
 * shared with other responses, as Node's small Buffers are: read it through its own byteOffset
 * and length (`new DataView(res.buffer, res.byteOffset, res.byteLength)`), and copy it
 * (`res.slice()`) before transferring its buffer to another thread.
 */
export function dispatchHypercall(handler: HypercallHandler, caller: DomId, request: Uint8Array): Uint8Array {
  let req: HypercallRequest;
  try {
    req = decodeRequest(request);
  } catch (e) {
    if (!(e instanceof HypervisorError)) throw e;
    // Errors raised before the op was known carry a hypercall name instead (e.g. memory_op): keep it.
    const op = (HYPERCALL_OPS as readonly string[]).includes(e.op) ? e.op : undefined;
    // An error response has no op-specific body, so any op encodes it.
    return encodeResponseInto('current_reservation', errorResponse(e, op), responseBuffer);
  }
  let res: HypercallResponse;
  try {
    // The gate's own argument: a caller that is not a domain (DOMID_SELF passed through, a
    // reserved id, NaN) is refused like any other bad argument, never trusted.
    if (!isRealDomId(caller)) {
      const integer = Number.isInteger(caller) && caller >= 0;
      throw new HypervisorError(integer ? 'ESRCH' : 'EINVAL', req.op, `caller ${String(caller)} is not a ${integer ? 'live ' : ''}domain id`);
    }
    res = call(handler, caller, req);
  } catch (e) {
    if (!(e instanceof HypervisorError)) throw e;
    res = errorResponse(e, req.op);
  }
  return encodeResponseInto(req.op, res, responseBuffer);
}

// Responses are new buffers, but one of more than 64 bytes is a view into a shared pool, as
// Node's small Buffers are: V8 allocates a typed array of up to 64 bytes inside its heap in a
// few nanoseconds, a larger one with a buffer of its own (allocated, tracked, finalized by the
// GC) in about 230 ns, which was a third of a 64-byte read_page (an 88-byte response) through
// the dispatcher. A pool is never reused (when full a new one is made), so each response's
// bytes are its own and start zeroed; a response kept alive keeps its pool (8 KiB) alive.
// Past POOLED_MAX the allocation is small beside the copying, and each buffer is its own.
const ON_HEAP_MAX = 64;
const POOLED_MAX = 1024;
const POOL_BYTES = 8192;
let pool = new ArrayBuffer(POOL_BYTES);
let poolUsed = 0;

function responseBuffer(length: number): Uint8Array {
  if (length <= ON_HEAP_MAX || length > POOLED_MAX) return new Uint8Array(length);
  if (poolUsed + length > POOL_BYTES) {
    pool = new ArrayBuffer(POOL_BYTES);
    poolUsed = 0;
  }
  const buf = new Uint8Array(pool, poolUsed, length);
  // 8-byte aligned, as a buffer of its own is.
  poolUsed += (length + 7) & ~7;
  return buf;
}

function call(h: HypercallHandler, caller: DomId, req: HypercallRequest): HypercallResponse {
  const op = req.op;
  switch (op) {
    case 'increase_reservation': {
      const gfns = h.increaseReservation(caller, self(caller, req.domid), req.nrExtents, req.extentOrder, req.memFlags);
      if (gfns.length > req.nrExtents) throw new InvariantError(`${op}: handler returned ${gfns.length} gfns for ${req.nrExtents}`);
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
      if (data.length !== req.length) throw new InvariantError(`${op}: handler returned ${data.length} bytes for ${req.length}`);
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
    case 'maximum_gpfn':
      return count(op, h.maximumGpfn(caller, self(caller, req.domid)), Number.MAX_SAFE_INTEGER);
    case 'claim_pages':
      h.claimPages(caller, self(caller, req.domid), req.nrPages);
      return { rc: 0 };
    case 'get_sharing_freed_pages':
      return count(op, h.sharingFreedPages(caller), Number.MAX_SAFE_INTEGER);
    case 'get_sharing_shared_pages':
      return count(op, h.sharingSharedPages(caller), Number.MAX_SAFE_INTEGER);
    case 'madvise':
      h.madvise(caller, self(caller, req.domid), asGfn(req.gfn), req.count, req.advice);
      return { rc: 0 };
    case 'sharing_debug_gfn':
      return count(op, h.debugGfn(caller, self(caller, req.domid), asGfn(req.gfn)), Number.MAX_SAFE_INTEGER);
    case 'sharing_add_physmap':
      h.addPhysmap(
        caller,
        self(caller, req.sourceDomid),
        asGfn(req.sourceGfn),
        req.sourceHandle,
        self(caller, req.clientDomid),
        asGfn(req.clientGfn),
      );
      return { rc: 0 };
    case 'sharing_audit':
      return count(op, h.sharingAudit(caller), Number.MAX_SAFE_INTEGER);
    case 'sharing_range_share': {
      const shared = h.rangeShare(
        caller,
        self(caller, req.sourceDomid),
        self(caller, req.clientDomid),
        asGfn(req.firstGfn),
        asGfn(req.lastGfn),
      );
      return count(op, shared, req.lastGfn - req.firstGfn + 1);
    }
    case 'sharing_fork':
      h.fork(caller, self(caller, req.domid), self(caller, req.parentDomid));
      return { rc: 0 };
    case 'sharing_fork_reset':
      h.forkReset(caller, self(caller, req.domid));
      return { rc: 0 };
    case 'tmem_new_pool':
      return count(op, h.tmemNewPool(caller, self(caller, req.domid), req.flags === TMEM_POOL_PERSIST), 0xffff_ffff);
    case 'tmem_destroy_pool':
      h.tmemDestroyPool(caller, self(caller, req.domid), req.poolId);
      return { rc: 0 };
    case 'tmem_put_page':
      return { rc: h.tmemPutPage(caller, self(caller, req.domid), req.poolId, oidOf(req), req.index, req.data) ? 1 : 0 };
    case 'tmem_get_page': {
      const page = h.tmemGetPage(caller, self(caller, req.domid), req.poolId, oidOf(req), req.index);
      if (page === undefined) return { rc: 0 };
      if (page.length !== PAGE_SIZE) throw new InvariantError(`${op}: handler returned ${page.length} bytes`);
      return { rc: 1, data: page };
    }
    case 'tmem_flush_page':
      return { rc: h.tmemFlushPage(caller, self(caller, req.domid), req.poolId, oidOf(req), req.index) ? 1 : 0 };
    case 'tmem_flush_object':
      return count(op, h.tmemFlushObject(caller, self(caller, req.domid), req.poolId, oidOf(req)), Number.MAX_SAFE_INTEGER);
    case 'domctl_createdomain':
      return count(op, h.createDomain(caller, req.maxPages, req.gfnCount, req.trustGroup), DOMID_SELF - 1);
    case 'domctl_destroydomain':
      h.destroyDomain(caller, self(caller, req.domid));
      return { rc: 0 };
    case 'domctl_pausedomain':
      h.pauseDomain(caller, self(caller, req.domid));
      return { rc: 0 };
    case 'domctl_unpausedomain':
      h.unpauseDomain(caller, self(caller, req.domid));
      return { rc: 0 };
    case 'domctl_max_mem':
      h.setMaxPages(caller, self(caller, req.domid), req.maxMemKb / (PAGE_SIZE / 1024));
      return { rc: 0 };
    case 'domctl_sharing_control':
      h.setSharing(caller, self(caller, req.domid), req.enable === 1);
      return { rc: 0 };
  }
}

function oidOf(req: { readonly oid0: number; readonly oid1: number; readonly oid2: number }): TmemOid {
  return [req.oid0, req.oid1, req.oid2];
}

/** DOMID_SELF names the calling domain. */
function self(caller: DomId, domid: number): DomId {
  return domid === DOMID_SELF ? caller : asDomId(domid);
}

function count(op: HypercallOp, done: number, max: number): HypercallResponse {
  // A negative count would read as an errno: handlers must throw instead. (Not invariant(): its
  // message would be built on every call.)
  if (!(Number.isSafeInteger(done) && done >= 0 && done <= max)) throw new InvariantError(`${op}: handler returned count ${done}`);
  return { rc: done };
}
