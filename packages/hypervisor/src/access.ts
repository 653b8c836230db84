import { CowOutcome, HypervisorError, INVALID_MFN, P2mType, PAGE_SIZE, type DomId, type Gfn, type Mfn } from '@pagevisor/types';
import type { Domain, HostCore } from './core.js';
import { SwapIn } from './pager.js';

// Guest loads and stores, and the faults they take (as Xen's p2m and copy-on-write fault paths):
// not hypercalls, the accesses a guest's CPU makes.

/** A guest load: copies bytes of page `gfn` into `dst`. Unbacked (populate-on-demand) pages read as zeros. */
export function readPage(h: HostCore, dom: DomId, gfn: Gfn, offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
  const op = 'read_page';
  const d = h.domain(op, dom);
  checkAccess(h, op, d, gfn, offset, length, dst, dstOffset);
  if (d.table.type(gfn) === P2mType.invalid) throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} is not populated`);
  const t = present(h, op, d, gfn, false);
  if (t === P2mType.ram_rw || t === P2mType.ram_shared || t === P2mType.paging_out) {
    const mfn = d.table.mfn(gfn);
    h.memory.read(mfn, offset, dst, dstOffset, length);
    if (h.pager !== undefined) {
      if (mfn !== h.zeroMfn) h.pager.touch(mfn);
      h.pager.reclaim();
    }
  } else if (t === P2mType.populate_on_demand) {
    dst.fill(0, dstOffset, dstOffset + length);
  } else {
    throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} is not populated`);
  }
}

/**
 * A guest store: writes bytes into page `gfn`. A write to a shared page takes a copy-on-write
 * fault; a whole-page write goes through the dedup strategy when it is inline, and may end up
 * sharing an existing frame with the same content.
 */
export function writePage(h: HostCore, dom: DomId, gfn: Gfn, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
  const op = 'write_page';
  const d = h.domain(op, dom);
  checkAccess(h, op, d, gfn, offset, length, src, srcOffset);
  if (d.table.type(gfn) === P2mType.invalid) throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} is not populated`);
  present(h, op, d, gfn, true);
  // Any store cancels a paging nomination (the page is no longer a candidate for evict). A
  // nominated page is private and resident: nothing below can refuse the store after this.
  if (d.table.type(gfn) === P2mType.paging_out) d.table.set(gfn, d.table.mfn(gfn), P2mType.ram_rw);
  if (length === PAGE_SIZE && h.dedup.inline) {
    writeWholePageInline(h, d, gfn, src, srcOffset);
  } else {
    const mfn = writableFrame(h, d, gfn, length === PAGE_SIZE);
    h.memory.write(mfn, offset, src, srcOffset, length);
  }
  if (h.pager !== undefined) {
    const mfn = d.table.mfn(gfn);
    if (mfn !== h.zeroMfn) h.pager.touch(mfn);
    h.pager.reclaim();
  }
}

/**
 * The type of `gfn` once it is present: with swap, a paged-out page is first brought back in
 * (evicting another when no frame is free), and one frame is kept free for the access. A
 * paused domain is refused with EAGAIN; a failed swap-in pauses it and throws EIO.
 */
function present(h: HostCore, op: string, d: Domain, gfn: Gfn, forWrite: boolean): P2mType {
  if (d.paused) throw new HypervisorError('EAGAIN', op, `dom ${d.id} is paused`);
  const pager = h.pager;
  if (pager === undefined) return d.table.type(gfn);
  const t = d.table.type(gfn);
  // One free frame covers what this access may allocate: a swap-in, a copy-on-write copy or a
  // populate-on-demand frame. Evicting may pick this very page: it is then swapped back in.
  if (t === P2mType.paged || (forWrite && (t === P2mType.ram_shared || t === P2mType.populate_on_demand))) pager.ensureFree(1);
  if (d.table.type(gfn) !== P2mType.paged) return d.table.type(gfn);
  if (h.frames.freeFrames === 0) throw new HypervisorError('ENOMEM', op, `no free machine frame to swap in dom ${d.id} gfn ${gfn}`);
  let how: SwapIn;
  try {
    how = pager.faultIn(op, d.id, gfn);
  } catch (e) {
    if (e instanceof HypervisorError && e.errnoName === 'EIO') d.paused = true;
    throw e;
  }
  const c = h.costModel;
  h.charge(d, c.faultNs + (how === SwapIn.newFrame ? c.frameAllocNs + c.pageCopyNs : how === SwapIn.deduped ? c.pageCompareNs + c.p2mUpdateNs : c.p2mUpdateNs));
  return d.table.type(gfn);
}

/** Makes `gfn` a private writable frame (unsharing or backing it) and returns it. Throws ENOMEM first. */
export function writableFrame(h: HostCore, d: Domain, gfn: Gfn, willOverwrite: boolean): Mfn {
  const t = d.table.type(gfn);
  const c = h.costModel;
  if (t === P2mType.ram_shared) {
    const old = d.table.mfn(gfn);
    const outcome = h.cow.unshare(d.id, d.table, gfn, willOverwrite);
    if (outcome === CowOutcome.zeroAllocated) d.zeroFaults++;
    else d.cowFaults++;
    // The page no longer maps the zero frame: KSM counts it out of ksm_zero_pages at this fault.
    if (old === h.zeroMfn) h.dedup.zeroPageUnmapped?.(d.id, gfn);
    h.charge(d, c.faultNs + (outcome === CowOutcome.kept ? c.p2mUpdateNs : c.frameAllocNs + (willOverwrite ? 0 : outcome === CowOutcome.copied ? c.pageCopyNs : c.pageZeroNs)));
    // The last sharer keeps the frame and is about to write it: its handle and swap-cache slot go.
    if (outcome === CowOutcome.kept) h.dropFrameKeys(old, d.id);
    faulted(h, d.table.mfn(gfn));
  } else if (t === P2mType.populate_on_demand) {
    const mfn = h.allocFrameFor('write_page', d, gfn);
    if (!willOverwrite) h.memory.zeroFrame(mfn);
    d.table.set(gfn, mfn, P2mType.ram_rw);
    h.charge(d, c.faultNs + c.frameAllocNs);
    faulted(h, mfn);
  } else {
    const mfn = d.table.mfn(gfn);
    // The content of an indexed frame is about to change under the index (and the swap cache).
    h.forgetFrame(mfn, d.id);
    if (h.writeEpoch !== undefined && h.writeEpoch[mfn] !== h.scanEpoch + 1 && (h.dedup.isMergeable?.(d.id, gfn) ?? true)) {
      // Uniform writes: an unmerged candidate takes the fault a merged one would (VUsion
      // write-protects every candidate and copies it on write), at the copy-on-write cost.
      h.charge(d, c.faultNs + c.frameAllocNs + (willOverwrite ? 0 : c.pageCopyNs));
      d.cowFaults++;
      faulted(h, mfn);
    }
  }
  return d.table.mfn(gfn);
}

/** Uniform writes: frame `mfn` has taken its write fault for this scanner pass. */
function faulted(h: HostCore, mfn: Mfn): void {
  if (h.writeEpoch !== undefined) h.writeEpoch[mfn] = h.scanEpoch + 1;
}

function writeWholePageInline(h: HostCore, d: Domain, gfn: Gfn, src: Uint8Array, srcOffset: number): void {
  const page = srcOffset === 0 && src.length === PAGE_SIZE ? src : src.subarray(srcOffset, srcOffset + PAGE_SIZE);
  const c = h.costModel;
  const hash = h.memory.hashPage(page);
  if (!h.mayDedup(d, page)) {
    // Kept out of the index as well, so that no other domain can merge onto this page.
    const mfn = writableFrame(h, d, gfn, true);
    h.memory.write(mfn, 0, page, 0, PAGE_SIZE);
    h.charge(d, c.pageHashNs + c.pageCopyNs);
    return;
  }
  // The store lands in a frame before its content can be looked up: refused (ENOMEM) before
  // the lookup when that needs a frame and none is free, so a refusal moves no counter.
  if (h.frames.freeFrames === 0 && needsNewFrame(h, d, gfn)) {
    throw new HypervisorError('ENOMEM', 'write_page', `no free machine frame for dom ${d.id} gfn ${gfn}`);
  }
  const match = h.dedup.lookup(page, hash, d.id);
  if (match !== INVALID_MFN && h.mayShareFrame(d, match)) {
    h.charge(d, c.pageHashNs + c.pageCompareNs);
    if (match === d.table.mfn(gfn)) return; // already holds this content
    h.remapShared(d, gfn, match);
    h.charge(d, c.p2mUpdateNs);
    return;
  }
  const mfn = writableFrame(h, d, gfn, true); // may refuse with ENOMEM: charge nothing before
  h.memory.write(mfn, 0, page, 0, PAGE_SIZE);
  // An offer: the strategy may index the frame or not.
  h.dedup.insert(mfn, hash, 'miss');
  h.charge(d, c.pageHashNs + c.pageCopyNs);
  // Uniform writes: the page is a candidate again, so its next write faults as if it had merged.
  if (h.writeEpoch !== undefined) h.writeEpoch[mfn] = 0;
}

/** Whether a write to `d`'s page `gfn` takes a frame: it has none, or maps a frame others map too. */
function needsNewFrame(h: HostCore, d: Domain, gfn: Gfn): boolean {
  const t = d.table.type(gfn);
  if (t === P2mType.populate_on_demand) return true;
  if (t !== P2mType.ram_shared) return false;
  const mfn = d.table.mfn(gfn);
  return mfn === h.zeroMfn || h.frames.refcount(mfn) > 1;
}

function checkAccess(h: HostCore, op: string, d: Domain, gfn: Gfn, offset: number, length: number, buf: Uint8Array, bufOffset: number): void {
  h.checkGfn(op, d, gfn);
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > PAGE_SIZE) {
    throw new HypervisorError('EINVAL', op, `bytes [${offset}, ${offset + length}) are not within a ${PAGE_SIZE}-byte page`);
  }
  if (!Number.isInteger(bufOffset) || bufOffset < 0 || bufOffset + length > buf.length) {
    throw new HypervisorError('EFAULT', op, `buffer of ${buf.length} bytes has no room for ${length} bytes at ${bufOffset}`);
  }
}
