import { FrameFlags, HypervisorError, INVALID_MFN, P2M_TYPE_NAMES, P2mType, asGfn, type DomId, type Gfn, type Mfn } from '@pagevisor/types';
import { hasFrame, type Domain, type HostCore } from './core.js';
import { checkCanGrow } from './memory-ops.js';

// The sharing ops (XENMEM_sharing_op, as Xen's mem_sharing.c): nominate, share, add_physmap,
// range_share, fork, and the host-wide sharing figures.

/** Frames sharing saves host-wide (XENMEM_get_sharing_freed_pages): mappings of shared frames minus those frames. */
export function sharingFreedPages(h: HostCore): number {
  const c = sharingCounts(h);
  return c.sharing + c.zeroPages;
}

/** Shared frames mapped at least once, the zero frame included (XENMEM_get_sharing_shared_pages). */
export function sharingSharedPages(h: HostCore): number {
  const c = sharingCounts(h);
  return c.mapped + (c.zeroPages > 0 ? 1 : 0);
}

/**
 * Shared frames other than the zero frame mapped at least once (`mapped`) and twice or more
 * (`shared`), their mappings beyond the first (`sharing`, KSM's pages_sharing), and the zero
 * frame's mappings (a shared frame's refcount is its number of mappings): O(1) from the frame
 * table's own counts when it keeps them, else by a walk.
 */
export function sharingCounts(h: HostCore): { mapped: number; shared: number; sharing: number; zeroPages: number } {
  const kept = h.frames.sharedFrameCounts?.();
  return kept === undefined ? sharingCountsByWalk(h) : { ...kept, zeroPages: h.frames.refcount(h.zeroMfn) };
}

/** {@link sharingCounts} by a walk of the frame table, for a table that keeps no counts. */
function sharingCountsByWalk(h: HostCore): { mapped: number; shared: number; sharing: number; zeroPages: number } {
  const frames = h.frames;
  let mapped = 0;
  let shared = 0;
  let sharing = 0;
  for (let m = 0; m < frames.totalFrames; m++) {
    if (m === h.zeroMfn || (frames.flags(m as Mfn) & FrameFlags.shared) === 0) continue;
    const refs = frames.refcount(m as Mfn);
    if (refs > 0) {
      mapped++;
      sharing += refs - 1;
    }
    if (refs > 1) shared++;
  }
  return { mapped, shared, sharing, zeroPages: frames.refcount(h.zeroMfn) };
}

// ---- sharing ops (XENMEM_sharing_op) ------------------------------------------------------

/**
 * Nominates `gfn` for sharing (XENMEM_sharing_op_nominate_gfn): its frame becomes shared
 * (read-only, copy-on-write) and gets a handle, returned, that a later `share` must present.
 */
export function nominateGfn(h: HostCore, dom: DomId, gfn: Gfn): number {
  const op = 'sharing_nominate_gfn';
  const d = h.domain(op, dom);
  h.checkGfn(op, d, gfn);
  checkSharing(h, op, d);
  const t = d.table.type(gfn);
  if (t !== P2mType.ram_rw && t !== P2mType.ram_shared) {
    throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} cannot be shared: it has no frame`);
  }
  const mfn = d.table.mfn(gfn);
  if (mfn === h.zeroMfn) throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} maps the zero frame, which is shared already`);
  h.makeShared(mfn);
  if (h.handles.length === 0) h.handles = new Float64Array(h.frames.totalFrames);
  if (h.handles[mfn] === 0) h.handles[mfn] = h.nextHandle++;
  h.charge(d, h.costModel.hypercallNs);
  return h.handles[mfn]!;
}

/**
 * Shares the client page's content with the source page (XENMEM_sharing_op_share): every
 * mapping of the client frame moves to the source frame, and the client frame is freed. Both
 * handles must be current; the client's stops working.
 */
export function share(h: HostCore, sourceDom: DomId, sourceGfn: Gfn, sourceHandle: number, clientDom: DomId, clientGfn: Gfn, clientHandle: number): void {
  const op = 'sharing_share';
  const { s, c, smfn } = sourceAndClient(h, op, sourceDom, sourceGfn, sourceHandle, clientDom, clientGfn);
  const cmfn = nominatedFrame(h, op, c, clientGfn, clientHandle, 'client');
  checkFrameSharing(h, op, cmfn);
  if (smfn === cmfn) return;
  if (!h.memory.framesEqual(smfn, cmfn)) {
    throw new HypervisorError('EINVAL', op, `source dom ${sourceDom} gfn ${sourceGfn} and client dom ${clientDom} gfn ${clientGfn} differ in content`);
  }
  // forEach reads every mapping before the first call, so the callback may move them.
  h.p2m.rmap.forEach(cmfn, (dom, gfn) => {
    h.cow.release(dom, gfn, cmfn);
    h.mapShared(h.domain(op, dom), gfn, smfn);
  });
  h.dropFrameKeys(cmfn, c.id);
  // The source frame gained the client's mappings: offered again when the strategy holds it not.
  h.offerShared(smfn);
  h.charge(s, h.costModel.hypercallNs + h.costModel.pageCompareNs);
}

/**
 * Maps the nominated source page's frame, shared, at the client's unpopulated `clientGfn`
 * (XENMEM_sharing_op_add_physmap); the client holds one page more.
 */
export function addPhysmap(h: HostCore, sourceDom: DomId, sourceGfn: Gfn, sourceHandle: number, clientDom: DomId, clientGfn: Gfn): void {
  const op = 'sharing_add_physmap';
  const { s, c, smfn } = sourceAndClient(h, op, sourceDom, sourceGfn, sourceHandle, clientDom, clientGfn);
  if (c.table.type(clientGfn) !== P2mType.invalid) throw new HypervisorError('EEXIST', op, `client dom ${clientDom} gfn ${clientGfn} is already populated`);
  checkCanGrow(h, op, c, 1, 0);
  h.mapShared(c, clientGfn, smfn);
  h.frames.addTotPages(clientDom, 1);
  h.charge(s, h.costModel.hypercallNs + h.costModel.p2mUpdateNs);
}

/**
 * Shares every page of [firstGfn, lastGfn] that both domains back with frames of equal content
 * (XENMEM_sharing_op_range_share): the client page comes to map the source page's frame.
 * Returns the pages newly shared.
 */
export function rangeShare(h: HostCore, sourceDom: DomId, clientDom: DomId, firstGfn: Gfn, lastGfn: Gfn): number {
  const op = 'sharing_range_share';
  const s = h.domain(op, sourceDom);
  const c = h.domain(op, clientDom);
  if (s === c) throw new HypervisorError('EINVAL', op, `source and client are both dom ${sourceDom}`);
  if (!Number.isInteger(firstGfn) || !Number.isInteger(lastGfn) || firstGfn < 0 || lastGfn < firstGfn || lastGfn >= Math.min(s.table.size, c.table.size)) {
    throw new HypervisorError('EINVAL', op, `range [${firstGfn}, ${lastGfn}] is not within both doms' guest frames (${s.table.size}, ${c.table.size})`);
  }
  checkMayShare(h, op, s, c);
  let shared = 0;
  for (let g = firstGfn; g <= lastGfn; g++) {
    const gfn = asGfn(g);
    if (!hasFrame(s.table.type(gfn)) || !hasFrame(c.table.type(gfn))) continue;
    const smfn = s.table.mfn(gfn);
    if (smfn === c.table.mfn(gfn)) continue;
    // A page another domain with sharing disabled maps stays as it is.
    if (disabledMapper(h, smfn) !== undefined || disabledMapper(h, c.table.mfn(gfn)) !== undefined) continue;
    h.charge(s, h.costModel.pageCompareNs);
    if (!h.memory.framesEqual(smfn, c.table.mfn(gfn))) continue;
    h.remapShared(c, gfn, smfn);
    shared++;
  }
  h.charge(s, h.costModel.hypercallNs);
  return shared;
}

/** Mappings of the frame behind `dom`'s page `gfn` (XENMEM_sharing_op_debug_gfn): 1 for a private page. */
export function debugGfn(h: HostCore, dom: DomId, gfn: Gfn): number {
  const op = 'sharing_debug_gfn';
  const d = h.domain(op, dom);
  h.checkGfn(op, d, gfn);
  const t = d.table.type(gfn);
  if (t === P2mType.ram_shared) return h.frames.refcount(d.table.mfn(gfn));
  if (t === P2mType.ram_rw || t === P2mType.paging_out) return 1;
  throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} is ${P2M_TYPE_NAMES[t]}: it has no frame`);
}

/**
 * Makes the empty domain `child` a copy-on-write fork of `parent` (XENMEM_sharing_op_fork):
 * every page of the parent is shared with the child at once (Xen populates a fork lazily, on
 * first access; the result a guest sees is the same). Paged-out pages share their swap slot,
 * or are copied into the child's own area in per-domain mode. The child inherits the parent's
 * mergeable advice.
 */
export function fork(h: HostCore, child: DomId, parent: DomId): void {
  const op = 'sharing_fork';
  const c = h.domain(op, child);
  const p = h.domain(op, parent);
  if (c === p) throw new HypervisorError('EINVAL', op, `dom ${child} cannot fork itself`);
  checkMayShare(h, op, p, c);
  if (c.parent !== undefined) throw new HypervisorError('EBUSY', op, `dom ${child} is already a fork of dom ${c.parent}`);
  // A domain with forks of its own would become an ancestor of itself if `parent` descends from
  // it; then neither could ever be destroyed. Xen forks only a paused domain with no forks.
  if (c.forks > 0) throw new HypervisorError('EBUSY', op, `dom ${child} is the parent of ${c.forks} live fork(s)`);
  if (h.frames.totPages(child) > 0 || h.maximumGpfnOf(c) >= 0) throw new HypervisorError('EBUSY', op, `dom ${child} already holds pages`);
  checkRoomForParent(h, op, p, c);
  checkParentSharing(h, op, p);
  mapParentPages(h, op, p, c);
  c.parent = parent;
  p.forks++;
  h.dedup.domainForked?.(parent, child);
  h.charge(c, h.costModel.hypercallNs);
}

/** Drops the fork's own pages so that it maps its parent's again (XENMEM_sharing_op_fork_reset). */
export function forkReset(h: HostCore, dom: DomId): void {
  const op = 'sharing_fork_reset';
  const c = h.domain(op, dom);
  if (c.parent === undefined) throw new HypervisorError('EINVAL', op, `dom ${dom} is not a fork`);
  const p = h.domain(op, c.parent);
  checkMayShare(h, op, p, c);
  // The parent may have grown, or the fork's max_pages shrunk, since the fork.
  checkRoomForParent(h, op, p, c);
  checkParentSharing(h, op, p);
  // The swap slots are the one step that can fail: copy them before the fork loses anything.
  const slots = copyParentSlots(h, op, p, c);
  for (let g = 0; g < c.table.size; g++) {
    if (c.table.type(asGfn(g)) !== P2mType.invalid) h.releasePage(c, asGfn(g));
  }
  h.frames.addTotPages(dom, -h.frames.totPages(dom));
  mapParentPages(h, op, p, c, slots);
  h.charge(c, h.costModel.hypercallNs);
}

/** Refuses when `c` cannot hold every page of `p`: its guest-physical space (EINVAL) or max_pages (E2BIG). */
function checkRoomForParent(h: HostCore, op: string, p: Domain, c: Domain): void {
  const top = h.maximumGpfnOf(p);
  if (top >= c.table.size) throw new HypervisorError('EINVAL', op, `dom ${c.id} has ${c.table.size} guest frames, parent dom ${p.id} uses gfns up to ${top}`);
  if (h.frames.maxPages(c.id) < h.frames.totPages(p.id)) {
    throw new HypervisorError('E2BIG', op, `dom ${c.id}'s max_pages ${h.frames.maxPages(c.id)} is below the ${h.frames.totPages(p.id)} pages of dom ${p.id}`);
  }
}

/** Maps every page of `p` into the empty `c`, shared; `slots` are `c`'s copies of `p`'s paged-out pages. */
function mapParentPages(h: HostCore, op: string, p: Domain, c: Domain, slots = copyParentSlots(h, op, p, c)): void {
  let next = 0;
  for (let g = 0; g < p.table.size; g++) {
    const gfn = asGfn(g);
    const t = p.table.type(gfn);
    if (t === P2mType.invalid) continue;
    if (t === P2mType.populate_on_demand) c.table.set(gfn, INVALID_MFN, P2mType.populate_on_demand);
    else if (t === P2mType.paged) c.table.set(gfn, slots[next++]! as Mfn, P2mType.paged);
    else {
      const mfn = p.table.mfn(gfn);
      h.makeShared(mfn);
      h.mapShared(c, gfn, mfn);
    }
    h.charge(c, h.costModel.p2mUpdateNs);
  }
  h.frames.addTotPages(c.id, h.frames.totPages(p.id));
}

/** `c`'s references to the swap slots of `p`'s paged-out pages, in gfn order; all or none. */
function copyParentSlots(h: HostCore, op: string, p: Domain, c: Domain): number[] {
  const slots: number[] = [];
  if (h.pager === undefined) return slots;
  try {
    for (let g = 0; g < p.table.size; g++) {
      if (p.table.type(asGfn(g)) === P2mType.paged) slots.push(h.pager.copySlot(op, p.id, c.id, p.table.mfn(asGfn(g))));
    }
  } catch (e) {
    for (const slot of slots) h.pager.releaseSlot(c.id, slot);
    throw e;
  }
  return slots;
}

/** EOPNOTSUPP when a frame of `p` is mapped by a domain with sharing disabled (a fork would share it). */
function checkParentSharing(h: HostCore, op: string, p: Domain): void {
  // Uniform sharing means no domain has it disabled.
  if (h.uniformSharing) return;
  for (let g = 0; g < p.table.size; g++) {
    if (hasFrame(p.table.type(asGfn(g)))) checkFrameSharing(h, op, p.table.mfn(asGfn(g)));
  }
}

/** EOPNOTSUPP when a domain mapping `mfn` has sharing disabled: no new sharer may join it. */
function checkFrameSharing(h: HostCore, op: string, mfn: Mfn): void {
  const dom = disabledMapper(h, mfn);
  if (dom !== undefined) throw new HypervisorError('EOPNOTSUPP', op, `mfn ${mfn} is mapped by dom ${dom}, whose sharing is disabled`);
}

/** A domain mapping `mfn` with sharing disabled, if any (never for the zero frame). */
function disabledMapper(h: HostCore, mfn: Mfn): DomId | undefined {
  if (mfn === h.zeroMfn || h.uniformSharing) return undefined;
  if ((h.frames.flags(mfn) & FrameFlags.shared) === 0) {
    const owner = h.frames.owner(mfn);
    return h.domainsById.get(owner)?.sharing === false ? owner : undefined;
  }
  let found: DomId | undefined;
  h.p2m.rmap.forEach(mfn, (dom) => {
    if (h.domainsById.get(dom)?.sharing === false) found = dom;
  });
  return found;
}

/** Refuses sharing between `a` and `b` when either has it disabled (EOPNOTSUPP) or their trust groups differ (EPERM). */
function checkMayShare(h: HostCore, op: string, a: Domain, b: Domain): void {
  checkSharing(h, op, a);
  checkSharing(h, op, b);
  if (a.trustGroup !== b.trustGroup) {
    throw new HypervisorError('EPERM', op, `dom ${a.id} (trust group ${a.trustGroup}) and dom ${b.id} (trust group ${b.trustGroup}) may not share`);
  }
}

function checkSharing(h: HostCore, op: string, d: Domain): void {
  if (!d.sharing) throw new HypervisorError('EOPNOTSUPP', op, `sharing is disabled for dom ${d.id}`);
}

/** The checks share and add_physmap have in common: both domains, gfns, sharing, the source's handle. */
function sourceAndClient(h: HostCore, op: string, sourceDom: DomId, sourceGfn: Gfn, sourceHandle: number, clientDom: DomId, clientGfn: Gfn): { s: Domain; c: Domain; smfn: Mfn } {
  const s = h.domain(op, sourceDom);
  const c = h.domain(op, clientDom);
  h.checkGfn(op, s, sourceGfn);
  h.checkGfn(op, c, clientGfn);
  checkMayShare(h, op, s, c);
  const smfn = nominatedFrame(h, op, s, sourceGfn, sourceHandle, 'source');
  checkFrameSharing(h, op, smfn);
  return { s, c, smfn };
}

function nominatedFrame(h: HostCore, op: string, d: Domain, gfn: Gfn, handle: number, which: string): Mfn {
  const mfn = d.table.mfn(gfn);
  if (d.table.type(gfn) !== P2mType.ram_shared || mfn === h.zeroMfn || h.handleOf(mfn) !== handle || handle === 0) {
    throw new HypervisorError('ENOENT', op, `${which} handle ${handle} is not current for dom ${d.id} gfn ${gfn}`);
  }
  return mfn;
}


