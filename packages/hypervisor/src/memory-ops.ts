import { HypervisorError, INVALID_MFN, MAX_ORDER, P2mType, asGfn, type DomId, type Gfn } from '@pagevisor/types';
import type { Domain, HostCore } from './core.js';

// The memory ops (XENMEM_*, as Xen's common/memory.c): a domain's reservation grows and shrinks.

/** `memFlags` bit asking populate_physmap for populate-on-demand entries (Xen's XENMEMF_populate_on_demand). */
export const MEMF_POPULATE_ON_DEMAND = 1 << 16;
/** Linux `MADV_DONTNEED`. */
export const MADV_DONTNEED = 4;

/**
 * Populates the extents of 2^order pages starting at each of `gfns` (XENMEM_populate_physmap).
 * New pages read as zeros: they map the shared zero frame when the dedup strategy says so,
 * get a zeroed frame otherwise, or stay frameless with MEMF_POPULATE_ON_DEMAND.
 * Returns the number of extents populated (all of them, or it throws and changes nothing).
 */
export function populatePhysmap(h: HostCore, dom: DomId, gfns: ArrayLike<number>, extentOrder: number, memFlags: number): number {
  const op = 'populate_physmap';
  const d = h.domain(op, dom);
  const pages = checkExtents(op, d, gfns, extentOrder, false);
  const pod = (memFlags & MEMF_POPULATE_ON_DEMAND) !== 0;
  const frames = pod || h.dedup.populateZero ? 0 : pages;
  checkCanGrow(h, op, d, pages, frames);
  const n = 1 << extentOrder;
  for (let i = 0; i < gfns.length; i++) {
    for (let g = gfns[i]!; g < gfns[i]! + n; g++) populatePage(h, d, asGfn(g), pod);
  }
  h.frames.addTotPages(dom, pages);
  const claimed = Math.min(d.claim, frames);
  d.claim -= claimed;
  h.outstandingClaims -= claimed;
  h.charge(d, h.costModel.hypercallNs);
  h.pager?.reclaim();
  return gfns.length;
}

/**
 * Populates `nrExtents` extents of 2^order pages at the lowest unpopulated, aligned guest
 * frames (XENMEM_increase_reservation; Xen returns machine frames to PV guests, this
 * hypervisor returns the guest frames). Returns the first gfn of each extent.
 */
export function increaseReservation(h: HostCore, dom: DomId, nrExtents: number, extentOrder: number, memFlags: number): Gfn[] {
  const op = 'increase_reservation';
  const d = h.domain(op, dom);
  checkOrder(op, extentOrder);
  if (!Number.isSafeInteger(nrExtents) || nrExtents < 0) {
    throw new HypervisorError('EINVAL', op, `nrExtents must be a non-negative integer, got ${nrExtents}`);
  }
  const n = 1 << extentOrder;
  const found: Gfn[] = [];
  for (let g = 0; g + n <= d.table.size && found.length < nrExtents; g += n) {
    let free = true;
    for (let k = g; k < g + n && free; k++) free = d.table.type(asGfn(k)) === P2mType.invalid;
    if (free) found.push(asGfn(g));
  }
  if (found.length < nrExtents) {
    throw new HypervisorError('ENOMEM', op, `dom ${dom} has room for ${found.length} of ${nrExtents} extents of order ${extentOrder}`);
  }
  populatePhysmap(h, dom, found, extentOrder, memFlags);
  return found;
}

/** Releases the extents at `gfns` (XENMEM_decrease_reservation); returns the number released. */
export function decreaseReservation(h: HostCore, dom: DomId, gfns: ArrayLike<number>, extentOrder: number): number {
  const op = 'decrease_reservation';
  const d = h.domain(op, dom);
  const pages = checkExtents(op, d, gfns, extentOrder, true);
  const n = 1 << extentOrder;
  for (let i = 0; i < gfns.length; i++) {
    for (let g = gfns[i]!; g < gfns[i]! + n; g++) h.releasePage(d, asGfn(g));
  }
  h.frames.addTotPages(dom, -pages);
  h.charge(d, h.costModel.hypercallNs);
  return gfns.length;
}

/** Pages `dom` holds (XENMEM_current_reservation). */
export function currentReservation(h: HostCore, dom: DomId): number {
  h.domain('current_reservation', dom);
  return h.frames.totPages(dom);
}

/** Most pages `dom` may hold (XENMEM_maximum_reservation). */
export function maximumReservation(h: HostCore, dom: DomId): number {
  h.domain('maximum_reservation', dom);
  return h.frames.maxPages(dom);
}

/** Highest gfn `dom` has populated, 0 when none (XENMEM_maximum_gpfn). */
export function maximumGpfn(h: HostCore, dom: DomId): number {
  return Math.max(0, h.maximumGpfnOf(h.domain('maximum_gpfn', dom)));
}

/**
 * Claims free frames so that `dom` can grow to `nrPages` pages in total while other domains'
 * reservations leave them alone (XENMEM_claim_pages, as Xen's domain_set_outstanding_pages);
 * 0 cancels the claim. Claims hold against reservation growth (populate_physmap,
 * increase_reservation), which consumes them; faults (copy-on-write, swap-in) do not see them.
 */
export function claimPages(h: HostCore, dom: DomId, nrPages: number): void {
  const op = 'claim_pages';
  const d = h.domain(op, dom);
  if (!Number.isSafeInteger(nrPages) || nrPages < 0) throw new HypervisorError('EINVAL', op, `nrPages must be a non-negative integer, got ${nrPages}`);
  if (nrPages === 0) {
    h.outstandingClaims -= d.claim;
    d.claim = 0;
    return;
  }
  if (d.claim > 0) throw new HypervisorError('EINVAL', op, `dom ${dom} holds a claim of ${d.claim} pages already; cancel it with 0 first`);
  const tot = h.frames.totPages(dom);
  const max = h.frames.maxPages(dom);
  if (nrPages <= tot || nrPages > max) {
    throw new HypervisorError('EINVAL', op, `a claim must be above the ${tot} pages dom ${dom} holds and at most its max_pages ${max}, got ${nrPages}`);
  }
  const claim = nrPages - tot;
  const available = h.frames.freeFrames - h.outstandingClaims;
  if (claim > available) throw new HypervisorError('ENOMEM', op, `claim of ${claim} frames, ${available} free and unclaimed`);
  d.claim = claim;
  h.outstandingClaims += claim;
}

/**
 * MADV_DONTNEED on `count` pages from `gfn`: the pages' contents go; they read as zeros and get a
 * frame again on their next write (populate-on-demand entries), still counted as held.
 */
export function dropPages(h: HostCore, dom: DomId, gfn: Gfn, count: number): void {
  const op = 'madvise';
  const d = h.domain(op, dom);
  h.checkRange(op, d, gfn, count);
  for (let g = gfn; g < gfn + count; g++) {
    const t = d.table.type(asGfn(g));
    if (t === P2mType.invalid || t === P2mType.populate_on_demand) continue;
    h.dropMapping(d, asGfn(g));
    d.table.set(asGfn(g), INVALID_MFN, P2mType.populate_on_demand);
    h.charge(d, h.costModel.p2mUpdateNs);
  }
}

/**
 * Refuses growth past max_pages (E2BIG, as Xen's assign_pages) or past the free frames other
 * domains have not claimed (ENOMEM).
 */
export function checkCanGrow(h: HostCore, op: string, d: Domain, pages: number, frames: number): void {
  const tot = h.frames.totPages(d.id);
  const max = h.frames.maxPages(d.id);
  if (tot + pages > max) {
    throw new HypervisorError('E2BIG', op, `dom ${d.id} would hold ${tot + pages} pages, over its max_pages ${max}`);
  }
  if (frames === 0) return;
  const need = frames + h.outstandingClaims - d.claim;
  if (need > h.frames.freeFrames && !h.pager?.ensureFree(need)) {
    const claimed = h.outstandingClaims - d.claim;
    throw new HypervisorError('ENOMEM', op, `${frames} frames needed, ${h.frames.freeFrames} free${claimed > 0 ? ` of which ${claimed} claimed by other domains` : ''}`);
  }
}

function populatePage(h: HostCore, d: Domain, gfn: Gfn, pod: boolean): void {
  const c = h.costModel;
  if (pod) {
    d.table.set(gfn, INVALID_MFN, P2mType.populate_on_demand);
    h.charge(d, c.p2mUpdateNs);
  } else if (h.dedup.populateZero) {
    h.mapShared(d, gfn, h.zeroMfn);
    h.charge(d, c.p2mUpdateNs);
  } else {
    const mfn = h.allocFrameFor('populate_physmap', d, gfn);
    h.memory.zeroFrame(mfn);
    d.table.set(gfn, mfn, P2mType.ram_rw);
    h.pager?.touch(mfn);
    h.charge(d, c.frameAllocNs + c.pageZeroNs + c.p2mUpdateNs);
  }
}

function checkOrder(op: string, extentOrder: number): void {
  if (!Number.isInteger(extentOrder) || extentOrder < 0 || extentOrder > MAX_ORDER) {
    throw new HypervisorError('EINVAL', op, `extent order must be an integer in [0, ${MAX_ORDER}], got ${extentOrder}`);
  }
}

/**
 * Checks every extent before anything changes: aligned, in range, no overlaps, and every page
 * populated (`populated` true) or not (false). Returns the number of pages.
 */
function checkExtents(op: string, d: Domain, gfns: ArrayLike<number>, extentOrder: number, populated: boolean): number {
  checkOrder(op, extentOrder);
  const n = 1 << extentOrder;
  // Strictly ascending extents cannot repeat: a Set is needed only once they stop ascending.
  let seen: Set<number> | undefined;
  let last = -1;
  for (let i = 0; i < gfns.length; i++) {
    const first = gfns[i]!;
    if (!Number.isInteger(first) || first < 0 || first + n > d.table.size) {
      throw new HypervisorError('EINVAL', op, `extent ${i} (gfn ${first}, order ${extentOrder}) is outside dom ${d.id}'s ${d.table.size} guest frames`);
    }
    if (first % n !== 0) {
      throw new HypervisorError('EINVAL', op, `extent ${i}: gfn ${first} is not aligned to order ${extentOrder}`);
    }
    if (seen === undefined && first <= last) {
      seen = new Set<number>();
      for (let k = 0; k < i; k++) seen.add(gfns[k]!);
    }
    if (seen !== undefined) {
      if (seen.has(first)) throw new HypervisorError('EINVAL', op, `extent ${i}: gfn ${first} is named twice`);
      seen.add(first);
    }
    last = first;
    for (let g = first; g < first + n; g++) {
      const isPopulated = d.table.type(asGfn(g)) !== P2mType.invalid;
      if (isPopulated !== populated) {
        throw populated
          ? new HypervisorError('EINVAL', op, `dom ${d.id} gfn ${g} is not populated`)
          : new HypervisorError('EEXIST', op, `dom ${d.id} gfn ${g} is already populated`);
      }
    }
  }
  return gfns.length * n;
}
