import { P2M_MAX_MFN } from '@pagevisor/p2m';
import { InlineDedup } from '@pagevisor/dedup';
import { ArrayFrameTable, BuddyAllocator, FreeListAllocator } from '@pagevisor/frame-allocator';
import { dispatchHypercall } from '@pagevisor/hypercall-abi';
import { createMachineMemory } from '@pagevisor/machine';
import {
  DEFAULT_COST_MODEL,
  HypervisorError,
  type CostModel,
  type DedupIndex,
  type DomId,
  type DomainStats,
  type FrameAllocator,
  type Gfn,
  type GuestMemoryAccess,
  type HypercallPort,
  type MachineMemory,
  type Mfn,
  type TotalsStats,
  type AuditDepth,
} from '@pagevisor/types';
import type { ArrayP2m } from '@pagevisor/p2m';
import type { CowHandler } from '@pagevisor/cow';
import { AbiHandler } from './abi-handler.js';
import * as access from './access.js';
import { auditHypervisor } from './audit.js';
import { HostCore, type Domain } from './core.js';
import * as advising from './dedup-host.js';
import * as mem from './memory-ops.js';
import type { DomainOptions, HypervisorOptions, Mitigations } from './options.js';
import { Pager, type PagerStats } from './pager.js';
import * as paging from './paging.js';
import * as sharing from './sharing.js';
import * as stats from './stats.js';
import type { Tmem, TmemOid } from './tmem.js';

export type { Domain } from './core.js';

/**
 * The memory manager of one host: every frame of machine RAM, every domain's p2m, the shared
 * zero frame, de-duplication and copy-on-write, behind the fault entry points (guest loads and
 * stores) and the hypercall ABI.
 *
 * Every operation either completes or throws a {@link HypervisorError} having changed nothing.
 */
export class Hypervisor implements GuestMemoryAccess, HypercallPort {
  /** Machine RAM. */
  readonly memory: MachineMemory;
  /** The frame table (owners, refcounts, flags, per-domain accounting). */
  readonly frames: ArrayFrameTable;
  /** Every domain's p2m and the reverse map of shared frames. */
  readonly p2m: ArrayP2m;
  /** The de-duplication strategy. */
  readonly dedup: DedupIndex;
  /** The copy-on-write fault handler. */
  readonly cow: CowHandler;
  /** Simulated costs. */
  readonly costModel: CostModel;
  /** The shared zero frame. */
  readonly zeroMfn: Mfn;
  /** NUMA nodes the frames are split into. */
  readonly numaNodes: number;
  /** Paging to swap, when configured. */
  readonly pager: Pager | undefined;
  /** Transcendent memory pools, when configured. */
  readonly tmem: Tmem | undefined;
  /** Side-channel mitigations in force. */
  readonly mitigations: Mitigations;

  private readonly core: HostCore;
  private readonly abi: AbiHandler;

  private constructor(memory: MachineMemory, allocator: FrameAllocator, dedup: DedupIndex, costModel: CostModel, numaNodes: number, options: HypervisorOptions) {
    const h = new HostCore(memory, new ArrayFrameTable(allocator), dedup, costModel, numaNodes, options);
    dedup.attach(advising.dedupHost(h));
    h.pager = options.swap === undefined ? undefined : new Pager(paging.pagerHost(h), options.swap);
    this.core = h;
    this.abi = new AbiHandler(h);
    this.memory = memory;
    this.frames = h.frames;
    this.p2m = h.p2m;
    this.dedup = dedup;
    this.cow = h.cow;
    this.costModel = costModel;
    this.zeroMfn = h.zeroMfn;
    this.numaNodes = numaNodes;
    this.pager = h.pager;
    this.tmem = h.tmem;
    this.mitigations = h.mitigations;
  }

  /** Builds a hypervisor over a new machine of `options.frames` frames. */
  static async create(options: HypervisorOptions): Promise<Hypervisor> {
    const { frames } = options;
    if (!Number.isSafeInteger(frames) || frames < 2 || frames > P2M_MAX_MFN + 1) {
      throw new HypervisorError('EINVAL', 'create', `frames must be an integer in [2, 2^30] (4 TiB, what a p2m entry holds), got ${frames}`);
    }
    const numaNodes = options.numaNodes ?? 1;
    if (!Number.isInteger(numaNodes) || numaNodes < 1 || numaNodes > 64 || numaNodes > frames) {
      throw new HypervisorError('EINVAL', 'create', `numaNodes must be an integer in [1, 64] and at most the frames, got ${numaNodes}`);
    }
    const allocator = typeof options.allocator === 'object' ? options.allocator : makeAllocator(options.allocator ?? 'buddy', frames);
    const contents = options.contents ?? 'bytes';
    if (contents !== 'bytes' && contents !== 'fingerprints') {
      throw new HypervisorError('EINVAL', 'create', `contents must be "bytes" or "fingerprints", got ${JSON.stringify(contents)}`);
    }
    const memory = await createMachineMemory({ frames, contents });
    return new Hypervisor(memory, allocator, options.dedup ?? new InlineDedup(), options.costModel ?? DEFAULT_COST_MODEL, numaNodes, options);
  }

  // ---- domains and domain control (core.ts) ---------------------------------------------------

  /** Creates a domain with no memory; returns its id (1, 2, ...; 0 is the control domain). */
  createDomain(opts: DomainOptions): DomId {
    return this.core.createDomain(opts);
  }

  /** Destroys a domain: every page it maps is released, shared frames lose one sharer. */
  destroyDomain(dom: DomId): void {
    this.core.destroyDomain(dom);
  }

  /** The domain `dom`, or ESRCH naming `op`. */
  domain(op: string, dom: DomId): Domain {
    return this.core.domain(op, dom);
  }

  /** Live domains in creation order. */
  domains(): Domain[] {
    return this.core.domains();
  }

  /** Sharing handle of frame `mfn` (0: none), as nominate_gfn returned it. */
  handleOf(mfn: Mfn): number {
    return this.core.handleOf(mfn);
  }

  /** True when a failed swap-in (or pauseDomain) paused `dom`. */
  isPaused(dom: DomId): boolean {
    return this.core.domain('is_paused', dom).paused;
  }

  /** Pauses `dom` (XEN_DOMCTL_pausedomain): its loads and stores are refused with EAGAIN. */
  pauseDomain(dom: DomId): void {
    this.core.pauseDomain(dom);
  }

  /** Lets a paused domain run again (the swap fault has cleared, or the caller retries). */
  unpauseDomain(dom: DomId): void {
    this.core.unpauseDomain(dom);
  }

  /** Sets the most pages `dom` may hold (XEN_DOMCTL_max_mem); below tot_pages it only stops growth. */
  setMaxPages(dom: DomId, maxPages: number): void {
    this.core.setMaxPages(dom, maxPages);
  }

  /** Enables or disables sharing of `dom`'s pages (XEN_DOMCTL_MEM_SHARING_CONTROL); pages shared already stay shared. */
  setSharing(dom: DomId, enable: boolean): void {
    this.core.setSharing(dom, enable);
  }

  /** The node of frame `mfn`: frames are split into `numaNodes` equal contiguous ranges. */
  nodeOf(mfn: Mfn): number {
    return this.core.nodeOf(mfn);
  }

  // ---- memory ops, XENMEM_* (memory-ops.ts) ----------------------------------------------------

  /**
   * Populates the extents of 2^order pages starting at each of `gfns` (XENMEM_populate_physmap):
   * zero pages, or populate-on-demand entries with MEMF_POPULATE_ON_DEMAND. Returns the extents
   * populated (all of them, or it throws and changes nothing).
   */
  populatePhysmap(dom: DomId, gfns: ArrayLike<number>, extentOrder = 0, memFlags = 0): number {
    return mem.populatePhysmap(this.core, dom, gfns, extentOrder, memFlags);
  }

  /** Populates `nrExtents` extents at the lowest free aligned gfns (XENMEM_increase_reservation); returns their first gfns. */
  increaseReservation(dom: DomId, nrExtents: number, extentOrder = 0, memFlags = 0): Gfn[] {
    return mem.increaseReservation(this.core, dom, nrExtents, extentOrder, memFlags);
  }

  /** Releases the extents at `gfns` (XENMEM_decrease_reservation); returns the number released. */
  decreaseReservation(dom: DomId, gfns: ArrayLike<number>, extentOrder = 0): number {
    return mem.decreaseReservation(this.core, dom, gfns, extentOrder);
  }

  /** Pages `dom` holds (XENMEM_current_reservation). */
  currentReservation(dom: DomId): number {
    return mem.currentReservation(this.core, dom);
  }

  /** Most pages `dom` may hold (XENMEM_maximum_reservation). */
  maximumReservation(dom: DomId): number {
    return mem.maximumReservation(this.core, dom);
  }

  /** Highest gfn `dom` has populated, 0 when none (XENMEM_maximum_gpfn). */
  maximumGpfn(dom: DomId): number {
    return mem.maximumGpfn(this.core, dom);
  }

  /** Claims free frames so that `dom` can grow to `nrPages` pages (XENMEM_claim_pages); 0 cancels. */
  claimPages(dom: DomId, nrPages: number): void {
    mem.claimPages(this.core, dom, nrPages);
  }

  /** Frames claimed by `dom` and not yet allocated. */
  claimOf(dom: DomId): number {
    return this.core.domain('claim_pages', dom).claim;
  }

  /** Linux madvise: MADV_MERGEABLE / MADV_UNMERGEABLE ({@link advise}) or MADV_DONTNEED (the pages read as zeros again). */
  madvise(dom: DomId, gfn: Gfn, count: number, adv: number): void {
    advising.madvise(this.core, dom, gfn, count, adv);
  }

  // ---- transcendent memory, tmem_op (tmem.ts) --------------------------------------------------

  /** A new tmem pool of `dom` (TMEM_NEW_POOL); returns its id. */
  tmemNewPool(dom: DomId, persistent: boolean): number {
    return this.core.tmemFor('tmem_new_pool', dom).newPool(dom, persistent);
  }

  /** Drops `dom`'s tmem pool `pool` and its pages (TMEM_DESTROY_POOL). */
  tmemDestroyPool(dom: DomId, pool: number): void {
    this.core.tmemFor('tmem_destroy_pool', dom).destroyPool(dom, pool);
  }

  /** Stores `page` at (pool, oid, index) (TMEM_PUT_PAGE); false when an ephemeral pool had no room. */
  tmemPutPage(dom: DomId, pool: number, oid: TmemOid, index: number, page: Uint8Array): boolean {
    return this.core.tmemFor('tmem_put_page', dom).putPage(dom, pool, oid, index, page);
  }

  /** Copies the page at (pool, oid, index) into `out` (TMEM_GET_PAGE); false when there is none. */
  tmemGetPage(dom: DomId, pool: number, oid: TmemOid, index: number, out: Uint8Array): boolean {
    return this.core.tmemFor('tmem_get_page', dom).getPage(dom, pool, oid, index, out);
  }

  /** Drops the page at (pool, oid, index) (TMEM_FLUSH_PAGE); true when one was there. */
  tmemFlushPage(dom: DomId, pool: number, oid: TmemOid, index: number): boolean {
    return this.core.tmemFor('tmem_flush_page', dom).flushPage(dom, pool, oid, index);
  }

  /** Drops every page of (pool, oid) (TMEM_FLUSH_OBJECT); returns how many. */
  tmemFlushObject(dom: DomId, pool: number, oid: TmemOid): number {
    return this.core.tmemFor('tmem_flush_object', dom).flushObject(dom, pool, oid);
  }

  // ---- guest loads and stores (access.ts) ------------------------------------------------------

  /** A guest load: copies bytes of page `gfn` into `dst`. Unbacked (populate-on-demand) pages read as zeros. */
  readPage(dom: DomId, gfn: Gfn, offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    access.readPage(this.core, dom, gfn, offset, dst, dstOffset, length);
  }

  /**
   * A guest store: writes bytes into page `gfn`. A write to a shared page takes a copy-on-write
   * fault; a whole-page write goes through an inline dedup strategy, and may share a frame.
   */
  writePage(dom: DomId, gfn: Gfn, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    access.writePage(this.core, dom, gfn, offset, src, srcOffset, length);
  }

  // ---- sharing ops, XENMEM_sharing_op (sharing.ts) ---------------------------------------------

  /** Nominates `gfn` for sharing (nominate_gfn): its frame becomes shared; returns the handle `share` must present. */
  nominateGfn(dom: DomId, gfn: Gfn): number {
    return sharing.nominateGfn(this.core, dom, gfn);
  }

  /** Shares the client page's content with the source page (share): the client frame's mappings move to the source frame. */
  share(sourceDom: DomId, sourceGfn: Gfn, sourceHandle: number, clientDom: DomId, clientGfn: Gfn, clientHandle: number): void {
    sharing.share(this.core, sourceDom, sourceGfn, sourceHandle, clientDom, clientGfn, clientHandle);
  }

  /** Maps the nominated source frame, shared, at the client's unpopulated `clientGfn` (add_physmap). */
  addPhysmap(sourceDom: DomId, sourceGfn: Gfn, sourceHandle: number, clientDom: DomId, clientGfn: Gfn): void {
    sharing.addPhysmap(this.core, sourceDom, sourceGfn, sourceHandle, clientDom, clientGfn);
  }

  /** Shares every page of [firstGfn, lastGfn] that both domains hold with equal content (range_share); returns how many. */
  rangeShare(sourceDom: DomId, clientDom: DomId, firstGfn: Gfn, lastGfn: Gfn): number {
    return sharing.rangeShare(this.core, sourceDom, clientDom, firstGfn, lastGfn);
  }

  /** Mappings of the frame behind `dom`'s page `gfn` (debug_gfn): 1 for a private page. */
  debugGfn(dom: DomId, gfn: Gfn): number {
    return sharing.debugGfn(this.core, dom, gfn);
  }

  /** Makes the empty domain `child` a copy-on-write fork of `parent` (fork). */
  fork(child: DomId, parent: DomId): void {
    sharing.fork(this.core, child, parent);
  }

  /** Drops the fork's own pages so that it maps its parent's again (fork_reset). */
  forkReset(dom: DomId): void {
    sharing.forkReset(this.core, dom);
  }

  /** Frames sharing saves host-wide (XENMEM_get_sharing_freed_pages). */
  sharingFreedPages(): number {
    return sharing.sharingFreedPages(this.core);
  }

  /** Shared frames mapped at least once, the zero frame included (XENMEM_get_sharing_shared_pages). */
  sharingSharedPages(): number {
    return sharing.sharingSharedPages(this.core);
  }

  // ---- paging ops, XENMEM_paging_op (paging.ts; the pager in pager.ts) -------------------------

  /** Nominates a private page for paging out (paging_out); a write before `pagingEvict` cancels it. */
  pagingNominate(dom: DomId, gfn: Gfn): void {
    paging.pagingNominate(this.core, dom, gfn);
  }

  /** Evicts a nominated page to swap: paging_out becomes paged, the frame is freed. */
  pagingEvict(dom: DomId, gfn: Gfn): void {
    paging.pagingEvict(this.core, dom, gfn);
  }

  /** Brings a paged-out page back (prep; with `data`, the pager's copy of its content). */
  pagingPrep(dom: DomId, gfn: Gfn, data?: Uint8Array): void {
    paging.pagingPrep(this.core, dom, gfn, data);
  }

  /** Swap figures (undefined without swap). */
  swapStats(): PagerStats | undefined {
    return this.core.pager?.stats();
  }

  // ---- the dedup strategy: advice and clock (dedup-host.ts) ------------------------------------

  /** Marks `count` pages from `start` mergeable or not (MADV_MERGEABLE / MADV_UNMERGEABLE), for a scanning strategy. */
  advise(dom: DomId, start: Gfn, count: number, mergeable: boolean): void {
    advising.advise(this.core, dom, start, count, mergeable);
  }

  /** Marks all of `dom` mergeable or not, present and future pages (PR_SET_MEMORY_MERGE). */
  setDomainMergeable(dom: DomId, on: boolean): void {
    advising.setDomainMergeable(this.core, dom, on);
  }

  /**
   * Wakes the scanning dedup strategy (one event on the simulated clock): a new scanner pass for
   * the uniform-writes mitigation. Call this rather than `dedup.wake` directly.
   */
  wakeDedup(nowNs: number): void {
    advising.wakeDedup(this.core, nowNs);
  }

  // ---- the hypercall gate (abi-handler.ts) -----------------------------------------------------

  /** Decodes, validates and runs the hypercall in `request` on behalf of `caller`. */
  hypercall(caller: DomId, request: Uint8Array): Uint8Array {
    return dispatchHypercall(this.abi, caller, request);
  }

  // ---- statistics and audit (stats.ts, audit.ts) -----------------------------------------------

  /** Memory figures of one domain. */
  domainStats(dom: DomId): DomainStats {
    return stats.domainStats(this.core, dom);
  }

  /** Memory figures of every live domain, in creation order. */
  allDomainStats(): DomainStats[] {
    return this.core.domains().map((d) => stats.domainStats(this.core, d.id));
  }

  /** Memory figures of the whole host. */
  totals(): TotalsStats {
    return stats.totals(this.core);
  }

  /**
   * Resident frames holding a content another resident frame holds already (0: RAM holds each
   * content once). Hashes every frame in use: for the end of a run and for tests.
   */
  duplicateFrames(): number {
    return stats.duplicateFrames(this.core);
  }

  /**
   * Every broken invariant, in words; empty when the state is sound. `depth` `'sample'` lets the
   * strategy check its costliest invariants on a sample (see DedupIndex.audit); default `'full'`.
   */
  audit(depth: AuditDepth = 'full'): string[] {
    return auditHypervisor(this.core, depth);
  }

  /** Metadata bytes held in typed arrays (frame table, p2m, reverse map, dedup index, per-frame arrays); not frame contents. */
  metadataBytes(): number {
    return stats.metadataBytes(this.core);
  }
}

function makeAllocator(name: string, frames: number): FrameAllocator {
  if (name === 'buddy') return new BuddyAllocator(frames);
  if (name === 'freelist') return new FreeListAllocator(frames);
  throw new HypervisorError('EINVAL', 'create', `unknown allocator "${name}" (expected buddy or freelist)`);
}
