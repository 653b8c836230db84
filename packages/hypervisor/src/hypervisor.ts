import { ArrayP2m, P2M_MAX_MFN, type ArrayP2mTable } from '@pagevisor/p2m';
import { CowHandler } from '@pagevisor/cow';
import { InlineDedup } from '@pagevisor/dedup';
import { ArrayFrameTable, BuddyAllocator, FreeListAllocator } from '@pagevisor/frame-allocator';
import { dispatchHypercall } from '@pagevisor/hypercall-abi';
import { createMachineMemory } from '@pagevisor/machine';
import {
  CowOutcome,
  DEFAULT_COST_MODEL,
  DOMID_CONTROL,
  DOMID_COW,
  DOMID_FIRST_RESERVED,
  DOMID_XEN,
  FrameFlags,
  HypervisorError,
  INVALID_GFN,
  INVALID_MFN,
  MAX_ORDER,
  P2M_TYPE_NAMES,
  P2mType,
  PAGE_SIZE,
  asDomId,
  asGfn,
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
} from '@pagevisor/types';
import { auditHypervisor } from './audit.js';
import { AbiHandler } from './abi-handler.js';
import { Pager, SwapIn, type PagerStats } from './pager.js';
import type { DomainOptions, HypervisorOptions, Mitigations } from './options.js';
import { Tmem, type TmemOid } from './tmem.js';

/** `memFlags` bit asking populate_physmap for populate-on-demand entries (Xen's XENMEMF_populate_on_demand). */
export const MEMF_POPULATE_ON_DEMAND = 1 << 16;
/** Linux `MADV_DONTNEED`. */
export const MADV_DONTNEED = 4;
/** Linux `MADV_MERGEABLE`. */
export const MADV_MERGEABLE = 12;
/** Linux `MADV_UNMERGEABLE`. */
export const MADV_UNMERGEABLE = 13;

/** A domain as the hypervisor keeps it. Per-page state lives in its p2m table, not here. */
export interface Domain {
  readonly id: DomId;
  readonly name: string;
  readonly table: ArrayP2mTable;
  cowFaults: number;
  zeroFaults: number;
  cpuNs: number;
  /** Set by a failed swap-in: accesses are refused with EAGAIN until unpaused. */
  paused: boolean;
  /** Trust group: pages of domains in different groups never share a frame (the zero frame aside). */
  readonly trustGroup: number;
  /** False once sharing is disabled (domctl_sharing_control): no new sharing of its pages. */
  sharing: boolean;
  /** Free frames claimed for its reservation and not yet allocated (XENMEM_claim_pages). */
  claim: number;
  /** The domain it was forked from, while it is a fork. */
  parent: DomId | undefined;
  /** Live forks of this domain: it cannot be destroyed while they map its pages. */
  forks: number;
}

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

  private readonly domainsById = new Map<number, Domain>();
  private nextDomId = 1;
  /**
   * Sharing handle of each frame (0: none), as returned by nominate_gfn. Empty until the first
   * nomination: 8 bytes a frame that hosts never using the sharing ops do not pay. Writes of 0
   * past the end of an empty array are no-ops, and reads go through handleOf.
   */
  private handles = new Float64Array(0);
  private nextHandle = 1;
  private readonly abi: AbiHandler;
  private readonly framesPerNode: number;
  private dedupCpuNs = 0;
  /** Frames claimed by every domain and not yet allocated. */
  private outstandingClaims = 0;
  /** Scanner passes so far (uniform writes: a candidate faults on its first write after each). */
  private scanEpoch = 0;
  /**
   * True while every live domain has sharing enabled and all are in one trust group: any two
   * may then share, and a shared frame's mappers need not be walked to know it.
   */
  private uniformSharing = true;
  /** Uniform writes: scanEpoch + 1 when the frame last took its write fault; anything else: armed. */
  private readonly writeEpoch: Uint32Array | undefined;

  private constructor(memory: MachineMemory, allocator: FrameAllocator, dedup: DedupIndex, costModel: CostModel, numaNodes: number, options: HypervisorOptions) {
    const swap = options.swap;
    this.memory = memory;
    this.mitigations = { ...options.mitigations };
    this.writeEpoch = this.mitigations.uniformWrites ? new Uint32Array(memory.frames) : undefined;
    this.tmem = options.tmem === undefined ? undefined : new Tmem({ hashPage: (p) => memory.hashPage(p), ...options.tmem });
    this.numaNodes = numaNodes;
    this.framesPerNode = Math.ceil(memory.frames / numaNodes);
    this.frames = new ArrayFrameTable(allocator);
    this.dedup = dedup;
    this.costModel = costModel;

    const zero = this.frames.allocFrame(DOMID_XEN, INVALID_GFN);
    if (zero === INVALID_MFN) throw new HypervisorError('ENOMEM', 'create', 'no frame for the zero frame');
    memory.zeroFrame(zero);
    this.frames.setFlags(zero, FrameFlags.shared | FrameFlags.zero);
    this.frames.addRef(zero, -1); // the zero frame's refcount counts its mappings only
    this.zeroMfn = zero;
    // Any gfn may map the zero frame: the reverse map counts its mappings rather than list them.
    // It keeps a shared frame's anchor in the frame's m2p word, as Xen keeps sharing state in page_info.
    this.p2m = new ArrayP2m(memory.frames, zero, this.frames.lendM2p());

    dedup.attach({
      memory,
      frames: this.frames,
      p2m: this.p2m,
      zeroMfn: zero,
      costModel,
      numaNodes,
      nodeOf: (mfn) => this.nodeOf(mfn),
      merge: (dom, gfn, target) => this.mergePage(dom, gfn, target),
      unmerge: (dom, gfn) => this.unmergePage(dom, gfn),
      chargeCpu: (ns) => {
        this.dedupCpuNs += ns;
      },
      groupOf: (dom) => this.domainsById.get(dom)?.trustGroup ?? 0,
    });
    this.cow = new CowHandler({ frames: this.frames, p2m: this.p2m, memory, dedup, zeroMfn: zero });
    this.pager =
      swap === undefined
        ? undefined
        : new Pager(
            {
              memory,
              frames: this.frames,
              p2m: this.p2m,
              dedup,
              zeroMfn: zero,
              frameGone: (mfn) => {
                this.handles[mfn] = 0;
              },
              shareIn: (dom, gfn, mfn) => this.swapInShared(this.domainsById.get(dom)!, gfn, mfn),
              dedupIn: (dom, gfn, page, hash) => {
                const d = this.domainsById.get(dom)!;
                if (!this.mayDedup(d, page)) return INVALID_MFN;
                const match = this.dedup.lookup(page, hash, dom);
                return match !== INVALID_MFN && this.swapInShared(d, gfn, match) ? match : INVALID_MFN;
              },
              swappedIn: (dom, mfn, page, hash) => {
                if (this.mayDedup(this.domainsById.get(dom)!, page)) this.dedup.insert(mfn, hash, 'miss');
              },
            },
            swap,
          );
    this.abi = new AbiHandler(this);
  }

  /** Builds a hypervisor over a new machine of `options.frames` frames. */
  static async create(options: HypervisorOptions): Promise<Hypervisor> {
    const { frames } = options;
    if (!Number.isSafeInteger(frames) || frames < 2 || frames > P2M_MAX_MFN + 1) {
      throw new HypervisorError('EINVAL', 'create', `frames must be an integer in [2, 2^28] (what a p2m entry holds), got ${frames}`);
    }
    const numaNodes = options.numaNodes ?? 1;
    if (!Number.isInteger(numaNodes) || numaNodes < 1 || numaNodes > 64 || numaNodes > frames) {
      throw new HypervisorError('EINVAL', 'create', `numaNodes must be an integer in [1, 64] and at most the frames, got ${numaNodes}`);
    }
    const allocator = typeof options.allocator === 'object' ? options.allocator : makeAllocator(options.allocator ?? 'buddy', frames);
    const memory = await createMachineMemory({ frames });
    return new Hypervisor(memory, allocator, options.dedup ?? new InlineDedup(), options.costModel ?? DEFAULT_COST_MODEL, numaNodes, options);
  }

  // ---- domains -------------------------------------------------------------------------------

  /** Creates a domain with no memory; returns its id (1, 2, ...; 0 is the control domain). */
  createDomain(opts: DomainOptions): DomId {
    const { maxPages } = opts;
    const gfnCount = opts.gfnCount ?? maxPages;
    if (!Number.isSafeInteger(maxPages) || maxPages < 0) {
      throw new HypervisorError('EINVAL', 'createdomain', `maxPages must be a non-negative integer, got ${maxPages}`);
    }
    // A guest-physical space larger than 16 times the machine would only hold invalid entries.
    const maxGfns = Math.min(2 ** 30, this.frames.totalFrames * 16);
    if (!Number.isSafeInteger(gfnCount) || gfnCount < 0 || gfnCount > maxGfns) {
      throw new HypervisorError('EINVAL', 'createdomain', `gfnCount must be an integer in [0, ${maxGfns}], got ${gfnCount}`);
    }
    const trustGroup = opts.trustGroup ?? 0;
    if (!Number.isInteger(trustGroup) || trustGroup < 0 || trustGroup > 0xffff) {
      throw new HypervisorError('EINVAL', 'createdomain', `trustGroup must be an integer in [0, 65535], got ${trustGroup}`);
    }
    if (this.nextDomId >= DOMID_FIRST_RESERVED) {
      throw new HypervisorError('ENOSPC', 'createdomain', 'no domain ids left');
    }
    const id = asDomId(this.nextDomId);
    // First what may fail (the reverse map's ids for the table, a per-domain swap area), undone
    // if the next one fails, then the records that cannot.
    const table = this.p2m.createTable(id, gfnCount);
    try {
      this.pager?.addDomain(id);
    } catch (e) {
      this.p2m.destroyTable(id);
      throw e;
    }
    this.nextDomId++;
    this.frames.addDomain(id, maxPages);
    this.domainsById.set(id, {
      id,
      name: opts.name ?? `dom${id}`,
      table,
      cowFaults: 0,
      zeroFaults: 0,
      cpuNs: 0,
      paused: false,
      trustGroup,
      sharing: true,
      claim: 0,
      parent: undefined,
      forks: 0,
    });
    this.refreshUniformSharing();
    return id;
  }

  /** Destroys a domain: every page it maps is released, shared frames lose one sharer. */
  destroyDomain(dom: DomId): void {
    const d = this.domain('destroydomain', dom);
    if (d.forks > 0) throw new HypervisorError('EBUSY', 'destroydomain', `dom ${dom} is the parent of ${d.forks} live fork(s)`);
    this.dedup.domainDestroyed?.(dom);
    this.tmem?.domainDestroyed(dom);
    if (d.parent !== undefined) this.domainsById.get(d.parent)!.forks--;
    this.outstandingClaims -= d.claim;
    const t = d.table;
    for (let g = 0; g < t.size; g++) {
      if (t.type(asGfn(g)) !== P2mType.invalid) this.releasePage(d, asGfn(g));
    }
    this.frames.addTotPages(dom, -this.frames.totPages(dom));
    this.frames.removeDomain(dom);
    this.p2m.destroyTable(dom);
    this.pager?.removeDomain(dom);
    this.domainsById.delete(dom);
    this.refreshUniformSharing();
  }

  /** The domain `dom`, or ESRCH naming `op`. */
  domain(op: string, dom: DomId): Domain {
    const d = this.domainsById.get(dom);
    if (d === undefined) throw new HypervisorError('ESRCH', op, `no domain ${dom}`);
    return d;
  }

  /** Sharing handle of frame `mfn` (0: none), as nominate_gfn returned it. */
  handleOf(mfn: Mfn): number {
    return this.handles[mfn] ?? 0;
  }

  /** Live domains in creation order. */
  domains(): Domain[] {
    return [...this.domainsById.values()];
  }

  // ---- memory ops (XENMEM_*) ---------------------------------------------------------------

  /**
   * Populates the extents of 2^order pages starting at each of `gfns` (XENMEM_populate_physmap).
   * New pages read as zeros: they map the shared zero frame when the dedup strategy says so,
   * get a zeroed frame otherwise, or stay frameless with MEMF_POPULATE_ON_DEMAND.
   * Returns the number of extents populated (all of them, or it throws and changes nothing).
   */
  populatePhysmap(dom: DomId, gfns: ArrayLike<number>, extentOrder = 0, memFlags = 0): number {
    const op = 'populate_physmap';
    const d = this.domain(op, dom);
    const pages = this.checkExtents(op, d, gfns, extentOrder, false);
    const pod = (memFlags & MEMF_POPULATE_ON_DEMAND) !== 0;
    const frames = pod || this.dedup.populateZero ? 0 : pages;
    this.checkCanGrow(op, d, pages, frames);
    const n = 1 << extentOrder;
    for (let i = 0; i < gfns.length; i++) {
      for (let g = gfns[i]!; g < gfns[i]! + n; g++) this.populatePage(d, asGfn(g), pod);
    }
    this.frames.addTotPages(dom, pages);
    const claimed = Math.min(d.claim, frames);
    d.claim -= claimed;
    this.outstandingClaims -= claimed;
    this.charge(d, this.costModel.hypercallNs);
    this.pager?.reclaim();
    return gfns.length;
  }

  /**
   * Populates `nrExtents` extents of 2^order pages at the lowest unpopulated, aligned guest
   * frames (XENMEM_increase_reservation; Xen returns machine frames to PV guests, this
   * hypervisor returns the guest frames). Returns the first gfn of each extent.
   */
  increaseReservation(dom: DomId, nrExtents: number, extentOrder = 0, memFlags = 0): Gfn[] {
    const op = 'increase_reservation';
    const d = this.domain(op, dom);
    this.checkOrder(op, extentOrder);
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
    this.populatePhysmap(dom, found, extentOrder, memFlags);
    return found;
  }

  /** Releases the extents at `gfns` (XENMEM_decrease_reservation); returns the number released. */
  decreaseReservation(dom: DomId, gfns: ArrayLike<number>, extentOrder = 0): number {
    const op = 'decrease_reservation';
    const d = this.domain(op, dom);
    const pages = this.checkExtents(op, d, gfns, extentOrder, true);
    const n = 1 << extentOrder;
    for (let i = 0; i < gfns.length; i++) {
      for (let g = gfns[i]!; g < gfns[i]! + n; g++) this.releasePage(d, asGfn(g));
    }
    this.frames.addTotPages(dom, -pages);
    this.charge(d, this.costModel.hypercallNs);
    return gfns.length;
  }

  /** Pages `dom` holds (XENMEM_current_reservation). */
  currentReservation(dom: DomId): number {
    this.domain('current_reservation', dom);
    return this.frames.totPages(dom);
  }

  /** Most pages `dom` may hold (XENMEM_maximum_reservation). */
  maximumReservation(dom: DomId): number {
    this.domain('maximum_reservation', dom);
    return this.frames.maxPages(dom);
  }

  /** Highest gfn `dom` has populated, 0 when none (XENMEM_maximum_gpfn). */
  maximumGpfn(dom: DomId): number {
    return Math.max(0, this.maximumGpfnOf(this.domain('maximum_gpfn', dom)));
  }

  private maximumGpfnOf(d: Domain): number {
    let g = d.table.size - 1;
    while (g >= 0 && d.table.type(asGfn(g)) === P2mType.invalid) g--;
    return g;
  }

  /**
   * Claims free frames so that `dom` can grow to `nrPages` pages in total while other domains'
   * reservations leave them alone (XENMEM_claim_pages, as Xen's domain_set_outstanding_pages);
   * 0 cancels the claim. Claims hold against reservation growth (populate_physmap,
   * increase_reservation), which consumes them; faults (copy-on-write, swap-in) do not see them.
   */
  claimPages(dom: DomId, nrPages: number): void {
    const op = 'claim_pages';
    const d = this.domain(op, dom);
    if (!Number.isSafeInteger(nrPages) || nrPages < 0) throw new HypervisorError('EINVAL', op, `nrPages must be a non-negative integer, got ${nrPages}`);
    if (nrPages === 0) {
      this.outstandingClaims -= d.claim;
      d.claim = 0;
      return;
    }
    if (d.claim > 0) throw new HypervisorError('EINVAL', op, `dom ${dom} holds a claim of ${d.claim} pages already; cancel it with 0 first`);
    const tot = this.frames.totPages(dom);
    const max = this.frames.maxPages(dom);
    if (nrPages <= tot || nrPages > max) {
      throw new HypervisorError('EINVAL', op, `a claim must be above the ${tot} pages dom ${dom} holds and at most its max_pages ${max}, got ${nrPages}`);
    }
    const claim = nrPages - tot;
    const available = this.frames.freeFrames - this.outstandingClaims;
    if (claim > available) throw new HypervisorError('ENOMEM', op, `claim of ${claim} frames, ${available} free and unclaimed`);
    d.claim = claim;
    this.outstandingClaims += claim;
  }

  /** Frames claimed by `dom` and not yet allocated. */
  claimOf(dom: DomId): number {
    return this.domain('claim_pages', dom).claim;
  }

  /** Frames sharing saves host-wide (XENMEM_get_sharing_freed_pages): mappings of shared frames minus those frames. */
  sharingFreedPages(): number {
    const c = this.sharingCounts();
    return c.sharing + c.zeroPages;
  }

  /** Shared frames mapped at least once, the zero frame included (XENMEM_get_sharing_shared_pages). */
  sharingSharedPages(): number {
    const c = this.sharingCounts();
    return c.mapped + (c.zeroPages > 0 ? 1 : 0);
  }

  /**
   * One pass over the frame table, whose refcount of a shared frame is its number of mappings:
   * shared frames other than the zero frame mapped at least once (`mapped`) and twice or more
   * (`shared`), their mappings beyond the first (`sharing`, KSM's pages_sharing), and the zero
   * frame's mappings.
   */
  private sharingCounts(): { mapped: number; shared: number; sharing: number; zeroPages: number } {
    const frames = this.frames;
    let mapped = 0;
    let shared = 0;
    let sharing = 0;
    for (let m = 0; m < frames.totalFrames; m++) {
      if (m === this.zeroMfn || (frames.flags(m as Mfn) & FrameFlags.shared) === 0) continue;
      const refs = frames.refcount(m as Mfn);
      if (refs > 0) {
        mapped++;
        sharing += refs - 1;
      }
      if (refs > 1) shared++;
    }
    return { mapped, shared, sharing, zeroPages: frames.refcount(this.zeroMfn) };
  }

  /**
   * Linux madvise on `count` pages from `gfn`: MADV_MERGEABLE / MADV_UNMERGEABLE go to the dedup
   * strategy ({@link advise}); MADV_DONTNEED drops the pages' contents: they read as zeros and get
   * a frame again on their next write (populate-on-demand entries), still counted as held.
   */
  madvise(dom: DomId, gfn: Gfn, count: number, advice: number): void {
    const op = 'madvise';
    if (advice === MADV_MERGEABLE || advice === MADV_UNMERGEABLE) {
      this.advise(dom, gfn, count, advice === MADV_MERGEABLE);
      return;
    }
    const d = this.domain(op, dom);
    if (advice !== MADV_DONTNEED) throw new HypervisorError('EINVAL', op, `unknown advice ${advice}`);
    if (!Number.isInteger(gfn) || !Number.isInteger(count) || gfn < 0 || count < 0 || gfn + count > d.table.size) {
      throw new HypervisorError('EINVAL', op, `pages [${gfn}, ${gfn + count}) are outside dom ${dom}'s ${d.table.size} guest frames`);
    }
    for (let g = gfn; g < gfn + count; g++) {
      const t = d.table.type(asGfn(g));
      if (t === P2mType.invalid || t === P2mType.populate_on_demand) continue;
      this.dropMapping(d, asGfn(g));
      d.table.set(asGfn(g), INVALID_MFN, P2mType.populate_on_demand);
      this.charge(d, this.costModel.p2mUpdateNs);
    }
  }

  // ---- transcendent memory (tmem_op) ----------------------------------------------------------

  /** A new tmem pool of `dom` (TMEM_NEW_POOL); returns its id. */
  tmemNewPool(dom: DomId, persistent: boolean): number {
    return this.tmemFor('tmem_new_pool', dom).newPool(dom, persistent);
  }

  /** Drops `dom`'s tmem pool `pool` and its pages (TMEM_DESTROY_POOL). */
  tmemDestroyPool(dom: DomId, pool: number): void {
    this.tmemFor('tmem_destroy_pool', dom).destroyPool(dom, pool);
  }

  /** Stores `page` at (pool, oid, index) (TMEM_PUT_PAGE); false when an ephemeral pool had no room. */
  tmemPutPage(dom: DomId, pool: number, oid: TmemOid, index: number, page: Uint8Array): boolean {
    return this.tmemFor('tmem_put_page', dom).putPage(dom, pool, oid, index, page);
  }

  /** Copies the page at (pool, oid, index) into `out` (TMEM_GET_PAGE); false when there is none. */
  tmemGetPage(dom: DomId, pool: number, oid: TmemOid, index: number, out: Uint8Array): boolean {
    return this.tmemFor('tmem_get_page', dom).getPage(dom, pool, oid, index, out);
  }

  /** Drops the page at (pool, oid, index) (TMEM_FLUSH_PAGE); true when one was there. */
  tmemFlushPage(dom: DomId, pool: number, oid: TmemOid, index: number): boolean {
    return this.tmemFor('tmem_flush_page', dom).flushPage(dom, pool, oid, index);
  }

  /** Drops every page of (pool, oid) (TMEM_FLUSH_OBJECT); returns how many. */
  tmemFlushObject(dom: DomId, pool: number, oid: TmemOid): number {
    return this.tmemFor('tmem_flush_object', dom).flushObject(dom, pool, oid);
  }

  private tmemFor(op: string, dom: DomId): Tmem {
    this.domain(op, dom);
    if (this.tmem === undefined) throw new HypervisorError('EOPNOTSUPP', op, 'this hypervisor has no tmem store');
    return this.tmem;
  }

  // ---- guest loads and stores -----------------------------------------------------------------

  /** A guest load: copies bytes of page `gfn` into `dst`. Unbacked (populate-on-demand) pages read as zeros. */
  readPage(dom: DomId, gfn: Gfn, offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    const op = 'read_page';
    const d = this.domain(op, dom);
    this.checkAccess(op, d, gfn, offset, length, dst, dstOffset);
    if (d.table.type(gfn) === P2mType.invalid) throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} is not populated`);
    const t = this.present(op, d, gfn, false);
    if (t === P2mType.ram_rw || t === P2mType.ram_shared || t === P2mType.paging_out) {
      const mfn = d.table.mfn(gfn);
      this.memory.read(mfn, offset, dst, dstOffset, length);
      if (this.pager !== undefined) {
        if (mfn !== this.zeroMfn) this.pager.touch(mfn);
        this.pager.reclaim();
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
  writePage(dom: DomId, gfn: Gfn, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    const op = 'write_page';
    const d = this.domain(op, dom);
    this.checkAccess(op, d, gfn, offset, length, src, srcOffset);
    if (d.table.type(gfn) === P2mType.invalid) throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} is not populated`);
    this.present(op, d, gfn, true);
    // Any store cancels a paging nomination (the page is no longer a candidate for evict). A
    // nominated page is private and resident: nothing below can refuse the store after this.
    if (d.table.type(gfn) === P2mType.paging_out) d.table.set(gfn, d.table.mfn(gfn), P2mType.ram_rw);
    if (length === PAGE_SIZE && this.dedup.inline) {
      this.writeWholePageInline(d, gfn, src, srcOffset);
    } else {
      const mfn = this.writableFrame(d, gfn, length === PAGE_SIZE);
      this.memory.write(mfn, offset, src, srcOffset, length);
    }
    if (this.pager !== undefined) {
      const mfn = d.table.mfn(gfn);
      if (mfn !== this.zeroMfn) this.pager.touch(mfn);
      this.pager.reclaim();
    }
  }

  /**
   * The type of `gfn` once it is present: with swap, a paged-out page is first brought back in
   * (evicting another when no frame is free), and one frame is kept free for the access. A
   * paused domain is refused with EAGAIN; a failed swap-in pauses it and throws EIO.
   */
  private present(op: string, d: Domain, gfn: Gfn, forWrite: boolean): P2mType {
    if (d.paused) throw new HypervisorError('EAGAIN', op, `dom ${d.id} is paused`);
    const pager = this.pager;
    if (pager === undefined) return d.table.type(gfn);
    const t = d.table.type(gfn);
    // One free frame covers what this access may allocate: a swap-in, a copy-on-write copy or a
    // populate-on-demand frame. Evicting may pick this very page: it is then swapped back in.
    if (t === P2mType.paged || (forWrite && (t === P2mType.ram_shared || t === P2mType.populate_on_demand))) pager.ensureFree(1);
    if (d.table.type(gfn) !== P2mType.paged) return d.table.type(gfn);
    if (this.frames.freeFrames === 0) throw new HypervisorError('ENOMEM', op, `no free machine frame to swap in dom ${d.id} gfn ${gfn}`);
    let how: SwapIn;
    try {
      how = pager.faultIn(op, d.id, gfn);
    } catch (e) {
      if (e instanceof HypervisorError && e.errnoName === 'EIO') d.paused = true;
      throw e;
    }
    const c = this.costModel;
    this.charge(d, c.faultNs + (how === SwapIn.newFrame ? c.frameAllocNs + c.pageCopyNs : how === SwapIn.deduped ? c.pageCompareNs + c.p2mUpdateNs : c.p2mUpdateNs));
    return d.table.type(gfn);
  }

  /** True when a failed swap-in paused `dom`. */
  isPaused(dom: DomId): boolean {
    return this.domain('is_paused', dom).paused;
  }

  /** Pauses `dom` (XEN_DOMCTL_pausedomain): its loads and stores are refused with EAGAIN. */
  pauseDomain(dom: DomId): void {
    this.domain('domctl_pausedomain', dom).paused = true;
  }

  /** Lets a paused domain run again (the swap fault has cleared, or the caller retries). */
  unpauseDomain(dom: DomId): void {
    this.domain('domctl_unpausedomain', dom).paused = false;
  }

  /** Sets the most pages `dom` may hold (XEN_DOMCTL_max_mem); below tot_pages it only stops growth. */
  setMaxPages(dom: DomId, maxPages: number): void {
    const op = 'domctl_max_mem';
    this.domain(op, dom);
    if (!Number.isSafeInteger(maxPages) || maxPages < 0) throw new HypervisorError('EINVAL', op, `maxPages must be a non-negative integer, got ${maxPages}`);
    this.frames.setMaxPages(dom, maxPages);
  }

  /** Enables or disables sharing of `dom`'s pages (XEN_DOMCTL_MEM_SHARING_CONTROL); pages shared already stay shared. */
  setSharing(dom: DomId, enable: boolean): void {
    this.domain('domctl_sharing_control', dom).sharing = enable;
    this.refreshUniformSharing();
  }

  private refreshUniformSharing(): void {
    let group = -1;
    let uniform = true;
    for (const d of this.domainsById.values()) {
      if (!d.sharing || (group !== -1 && d.trustGroup !== group)) uniform = false;
      group = d.trustGroup;
    }
    this.uniformSharing = uniform;
  }

  /** Swap figures (zeros without swap). */
  swapStats(): PagerStats | undefined {
    return this.pager?.stats();
  }

  /** Makes `gfn` a private writable frame (unsharing or backing it) and returns it. Throws ENOMEM first. */
  private writableFrame(d: Domain, gfn: Gfn, willOverwrite: boolean): Mfn {
    const t = d.table.type(gfn);
    if (t === P2mType.ram_shared) {
      const old = d.table.mfn(gfn);
      const outcome = this.cow.unshare(d.id, d.table, gfn, willOverwrite);
      if (outcome === CowOutcome.zeroAllocated) d.zeroFaults++;
      else d.cowFaults++;
      const c = this.costModel;
      this.charge(d, c.faultNs + (outcome === CowOutcome.kept ? c.p2mUpdateNs : c.frameAllocNs + (willOverwrite ? 0 : outcome === CowOutcome.copied ? c.pageCopyNs : c.pageZeroNs)));
      if (outcome === CowOutcome.kept) {
        // The last sharer keeps the frame and is about to write it: its swap-cache slot goes.
        this.handles[old] = 0;
        this.pager?.dropCache(old, d.id);
      }
      this.faulted(d.table.mfn(gfn));
    } else if (t === P2mType.populate_on_demand) {
      const mfn = this.allocFrameFor('write_page', d, gfn);
      if (!willOverwrite) this.memory.zeroFrame(mfn);
      d.table.set(gfn, mfn, P2mType.ram_rw);
      this.charge(d, this.costModel.faultNs + this.costModel.frameAllocNs);
      this.faulted(mfn);
    } else {
      const mfn = d.table.mfn(gfn);
      // The content of an indexed frame is about to change under the index (and the swap cache).
      this.dedup.remove(mfn);
      this.handles[mfn] = 0;
      this.pager?.dropCache(mfn, d.id);
      if (this.writeEpoch !== undefined && this.writeEpoch[mfn] !== this.scanEpoch + 1 && (this.dedup.isMergeable?.(d.id, gfn) ?? true)) {
        // Uniform writes: an unmerged candidate takes the fault a merged one would (VUsion
        // write-protects every candidate and copies it on write), at the copy-on-write cost.
        const c = this.costModel;
        this.charge(d, c.faultNs + c.frameAllocNs + (willOverwrite ? 0 : c.pageCopyNs));
        d.cowFaults++;
        this.faulted(mfn);
      }
    }
    return d.table.mfn(gfn);
  }

  /** Uniform writes: frame `mfn` has taken its write fault for this scanner pass. */
  private faulted(mfn: Mfn): void {
    if (this.writeEpoch !== undefined) this.writeEpoch[mfn] = this.scanEpoch + 1;
  }

  /**
   * Wakes the scanning dedup strategy (one event on the simulated clock): a new scanner pass for
   * the uniform-writes mitigation. Call this rather than `dedup.wake` directly.
   */
  wakeDedup(nowNs: number): void {
    this.dedup.wake?.(nowNs);
    this.scanEpoch++;
  }

  private writeWholePageInline(d: Domain, gfn: Gfn, src: Uint8Array, srcOffset: number): void {
    const page = srcOffset === 0 && src.length === PAGE_SIZE ? src : src.subarray(srcOffset, srcOffset + PAGE_SIZE);
    const c = this.costModel;
    const hash = this.memory.hashPage(page);
    if (!this.mayDedup(d, page)) {
      // Kept out of the index as well, so that no other domain can merge onto this page.
      const mfn = this.writableFrame(d, gfn, true);
      this.memory.write(mfn, 0, page, 0, PAGE_SIZE);
      this.charge(d, c.pageHashNs + c.pageCopyNs);
      return;
    }
    const cur = d.table.mfn(gfn);
    // The store lands in a frame before its content can be looked up: refused (ENOMEM) before
    // the lookup when that needs a frame and none is free, so a refusal moves no counter.
    if (this.frames.freeFrames === 0 && this.needsNewFrame(d, gfn)) {
      throw new HypervisorError('ENOMEM', 'write_page', `no free machine frame for dom ${d.id} gfn ${gfn}`);
    }
    const match = this.dedup.lookup(page, hash, d.id);
    if (match !== INVALID_MFN && this.mayShareFrame(d, match)) {
      this.charge(d, c.pageHashNs + c.pageCompareNs);
      if (match === cur) return; // already holds this content
      this.makeShared(match);
      this.dropMapping(d, gfn);
      this.mapShared(d, gfn, match);
      this.charge(d, c.p2mUpdateNs);
      return;
    }
    const mfn = this.writableFrame(d, gfn, true); // may refuse with ENOMEM: charge nothing before
    this.memory.write(mfn, 0, page, 0, PAGE_SIZE);
    // An offer: the strategy may index the frame or not.
    this.dedup.insert(mfn, hash, 'miss');
    this.charge(d, c.pageHashNs + c.pageCopyNs);
    // Uniform writes: the page is a candidate again, so its next write faults as if it had merged.
    if (this.writeEpoch !== undefined) this.writeEpoch[mfn] = 0;
  }

  /** Whether a write to `d`'s page `gfn` takes a frame: it has none, or maps a frame others map too. */
  private needsNewFrame(d: Domain, gfn: Gfn): boolean {
    const t = d.table.type(gfn);
    if (t === P2mType.populate_on_demand) return true;
    if (t !== P2mType.ram_shared) return false;
    const mfn = d.table.mfn(gfn);
    return mfn === this.zeroMfn || this.frames.refcount(mfn) > 1;
  }

  /** Whether de-duplication may share `d`'s page of content `page` at all (sharing enabled, mitigations). */
  private mayDedup(d: Domain, page: Uint8Array): boolean {
    if (!d.sharing) return false;
    if (!this.mitigations.zeroPagesOnly) return true;
    for (let i = 0; i < PAGE_SIZE; i++) if (page[i] !== 0) return false;
    return true;
  }

  /**
   * Whether a page of `d` may come to map frame `target`: the zero frame always; otherwise every
   * domain mapping `target` has sharing enabled and is in `d`'s trust group, and under
   * zeroPagesOnly the frame holds zeros.
   */
  private mayShareFrame(d: Domain, target: Mfn): boolean {
    if (target === this.zeroMfn) return true;
    if (!d.sharing) return false;
    if (this.mitigations.zeroPagesOnly && !this.memory.isZeroFrame(target)) return false;
    if ((this.frames.flags(target) & FrameFlags.shared) === 0) return this.mayShareWith(d, this.frames.owner(target));
    // Every mapper of a shared frame is a live domain; walking them (and allocating for it) on
    // each whole-page write made sharing O(sharers) a page.
    if (this.uniformSharing) return true;
    let ok = true;
    this.p2m.rmap.forEach(target, (dom) => {
      if (!this.mayShareWith(d, dom)) ok = false;
    });
    return ok;
  }

  /**
   * Maps `d`'s paged page `gfn` to resident frame `mfn`, which holds its content, shared (the
   * pager keeps or releases the slot); false, changing nothing, when `d` may not share `mfn`.
   */
  private swapInShared(d: Domain, gfn: Gfn, mfn: Mfn): boolean {
    if (!this.mayShareFrame(d, mfn)) return false;
    if (mfn !== this.zeroMfn) this.makeShared(mfn);
    this.mapShared(d, gfn, mfn);
    return true;
  }

  private mayShareWith(d: Domain, dom: DomId): boolean {
    const o = this.domainsById.get(dom);
    return o !== undefined && o.sharing && o.trustGroup === d.trustGroup;
  }

  // ---- sharing ops (XENMEM_sharing_op) ------------------------------------------------------

  /**
   * Nominates `gfn` for sharing (XENMEM_sharing_op_nominate_gfn): its frame becomes shared
   * (read-only, copy-on-write) and gets a handle, returned, that a later `share` must present.
   */
  nominateGfn(dom: DomId, gfn: Gfn): number {
    const op = 'sharing_nominate_gfn';
    const d = this.domain(op, dom);
    this.checkGfn(op, d, gfn);
    this.checkSharing(op, d);
    const t = d.table.type(gfn);
    if (t !== P2mType.ram_rw && t !== P2mType.ram_shared) {
      throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} cannot be shared: it has no frame`);
    }
    const mfn = d.table.mfn(gfn);
    if (mfn === this.zeroMfn) throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} maps the zero frame, which is shared already`);
    this.makeShared(mfn);
    if (this.handles.length === 0) this.handles = new Float64Array(this.frames.totalFrames);
    if (this.handles[mfn] === 0) this.handles[mfn] = this.nextHandle++;
    this.charge(d, this.costModel.hypercallNs);
    return this.handles[mfn]!;
  }

  /**
   * Shares the client page's content with the source page (XENMEM_sharing_op_share): every
   * mapping of the client frame moves to the source frame, and the client frame is freed. Both
   * handles must be current; the client's stops working.
   */
  share(sourceDom: DomId, sourceGfn: Gfn, sourceHandle: number, clientDom: DomId, clientGfn: Gfn, clientHandle: number): void {
    const op = 'sharing_share';
    const { s, c, smfn } = this.sourceAndClient(op, sourceDom, sourceGfn, sourceHandle, clientDom, clientGfn);
    const cmfn = this.nominatedFrame(op, c, clientGfn, clientHandle, 'client');
    this.checkFrameSharing(op, cmfn);
    if (smfn === cmfn) return;
    if (!this.memory.framesEqual(smfn, cmfn)) {
      throw new HypervisorError('EINVAL', op, `source dom ${sourceDom} gfn ${sourceGfn} and client dom ${clientDom} gfn ${clientGfn} differ in content`);
    }
    // forEach reads every mapping before the first call, so the callback may move them.
    this.p2m.rmap.forEach(cmfn, (dom, gfn) => {
      this.cow.release(dom, gfn, cmfn);
      this.mapShared(this.domain(op, dom), gfn, smfn);
    });
    this.frameFreed(cmfn, c.id);
    // The source frame gained the client's mappings: offered again when the strategy holds it not.
    this.offerShared(smfn);
    this.charge(s, this.costModel.hypercallNs + this.costModel.pageCompareNs);
  }

  /**
   * Maps the nominated source page's frame, shared, at the client's unpopulated `clientGfn`
   * (XENMEM_sharing_op_add_physmap); the client holds one page more.
   */
  addPhysmap(sourceDom: DomId, sourceGfn: Gfn, sourceHandle: number, clientDom: DomId, clientGfn: Gfn): void {
    const op = 'sharing_add_physmap';
    const { s, c, smfn } = this.sourceAndClient(op, sourceDom, sourceGfn, sourceHandle, clientDom, clientGfn);
    if (c.table.type(clientGfn) !== P2mType.invalid) throw new HypervisorError('EEXIST', op, `client dom ${clientDom} gfn ${clientGfn} is already populated`);
    this.checkCanGrow(op, c, 1, 0);
    this.mapShared(c, clientGfn, smfn);
    this.frames.addTotPages(clientDom, 1);
    this.charge(s, this.costModel.hypercallNs + this.costModel.p2mUpdateNs);
  }

  /**
   * Shares every page of [firstGfn, lastGfn] that both domains back with frames of equal content
   * (XENMEM_sharing_op_range_share): the client page comes to map the source page's frame.
   * Returns the pages newly shared.
   */
  rangeShare(sourceDom: DomId, clientDom: DomId, firstGfn: Gfn, lastGfn: Gfn): number {
    const op = 'sharing_range_share';
    const s = this.domain(op, sourceDom);
    const c = this.domain(op, clientDom);
    if (s === c) throw new HypervisorError('EINVAL', op, `source and client are both dom ${sourceDom}`);
    if (!Number.isInteger(firstGfn) || !Number.isInteger(lastGfn) || firstGfn < 0 || lastGfn < firstGfn || lastGfn >= Math.min(s.table.size, c.table.size)) {
      throw new HypervisorError('EINVAL', op, `range [${firstGfn}, ${lastGfn}] is not within both doms' guest frames (${s.table.size}, ${c.table.size})`);
    }
    this.checkMayShare(op, s, c);
    let shared = 0;
    for (let g = firstGfn; g <= lastGfn; g++) {
      const gfn = asGfn(g);
      if (!hasFrame(s.table.type(gfn)) || !hasFrame(c.table.type(gfn))) continue;
      const smfn = s.table.mfn(gfn);
      if (smfn === c.table.mfn(gfn)) continue;
      // A page another domain with sharing disabled maps stays as it is.
      if (this.disabledMapper(smfn) !== undefined || this.disabledMapper(c.table.mfn(gfn)) !== undefined) continue;
      this.charge(s, this.costModel.pageCompareNs);
      if (!this.memory.framesEqual(smfn, c.table.mfn(gfn))) continue;
      this.makeShared(smfn);
      this.dropMapping(c, gfn);
      this.mapShared(c, gfn, smfn);
      shared++;
    }
    this.charge(s, this.costModel.hypercallNs);
    return shared;
  }

  /** Mappings of the frame behind `dom`'s page `gfn` (XENMEM_sharing_op_debug_gfn): 1 for a private page. */
  debugGfn(dom: DomId, gfn: Gfn): number {
    const op = 'sharing_debug_gfn';
    const d = this.domain(op, dom);
    this.checkGfn(op, d, gfn);
    const t = d.table.type(gfn);
    if (t === P2mType.ram_shared) return this.frames.refcount(d.table.mfn(gfn));
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
  fork(child: DomId, parent: DomId): void {
    const op = 'sharing_fork';
    const c = this.domain(op, child);
    const p = this.domain(op, parent);
    if (c === p) throw new HypervisorError('EINVAL', op, `dom ${child} cannot fork itself`);
    this.checkMayShare(op, p, c);
    if (c.parent !== undefined) throw new HypervisorError('EBUSY', op, `dom ${child} is already a fork of dom ${c.parent}`);
    // A domain with forks of its own would become an ancestor of itself if `parent` descends from
    // it; then neither could ever be destroyed. Xen forks only a paused domain with no forks.
    if (c.forks > 0) throw new HypervisorError('EBUSY', op, `dom ${child} is the parent of ${c.forks} live fork(s)`);
    if (this.frames.totPages(child) > 0 || this.maximumGpfnOf(c) >= 0) throw new HypervisorError('EBUSY', op, `dom ${child} already holds pages`);
    this.checkRoomForParent(op, p, c);
    this.checkParentSharing(op, p);
    this.mapParentPages(op, p, c);
    c.parent = parent;
    p.forks++;
    this.dedup.domainForked?.(parent, child);
    this.charge(c, this.costModel.hypercallNs);
  }

  /** Drops the fork's own pages so that it maps its parent's again (XENMEM_sharing_op_fork_reset). */
  forkReset(dom: DomId): void {
    const op = 'sharing_fork_reset';
    const c = this.domain(op, dom);
    if (c.parent === undefined) throw new HypervisorError('EINVAL', op, `dom ${dom} is not a fork`);
    const p = this.domain(op, c.parent);
    this.checkMayShare(op, p, c);
    // The parent may have grown, or the fork's max_pages shrunk, since the fork.
    this.checkRoomForParent(op, p, c);
    this.checkParentSharing(op, p);
    // The swap slots are the one step that can fail: copy them before the fork loses anything.
    const slots = this.copyParentSlots(op, p, c);
    for (let g = 0; g < c.table.size; g++) {
      if (c.table.type(asGfn(g)) !== P2mType.invalid) this.releasePage(c, asGfn(g));
    }
    this.frames.addTotPages(dom, -this.frames.totPages(dom));
    this.mapParentPages(op, p, c, slots);
    this.charge(c, this.costModel.hypercallNs);
  }

  /** Refuses when `c` cannot hold every page of `p`: its guest-physical space (EINVAL) or max_pages (E2BIG). */
  private checkRoomForParent(op: string, p: Domain, c: Domain): void {
    const top = this.maximumGpfnOf(p);
    if (top >= c.table.size) throw new HypervisorError('EINVAL', op, `dom ${c.id} has ${c.table.size} guest frames, parent dom ${p.id} uses gfns up to ${top}`);
    if (this.frames.maxPages(c.id) < this.frames.totPages(p.id)) {
      throw new HypervisorError('E2BIG', op, `dom ${c.id}'s max_pages ${this.frames.maxPages(c.id)} is below the ${this.frames.totPages(p.id)} pages of dom ${p.id}`);
    }
  }

  /** Maps every page of `p` into the empty `c`, shared; `slots` are `c`'s copies of `p`'s paged-out pages. */
  private mapParentPages(op: string, p: Domain, c: Domain, slots = this.copyParentSlots(op, p, c)): void {
    let next = 0;
    for (let g = 0; g < p.table.size; g++) {
      const gfn = asGfn(g);
      const t = p.table.type(gfn);
      if (t === P2mType.invalid) continue;
      if (t === P2mType.populate_on_demand) c.table.set(gfn, INVALID_MFN, P2mType.populate_on_demand);
      else if (t === P2mType.paged) c.table.set(gfn, slots[next++]! as Mfn, P2mType.paged);
      else {
        const mfn = p.table.mfn(gfn);
        this.makeShared(mfn);
        this.mapShared(c, gfn, mfn);
      }
      this.charge(c, this.costModel.p2mUpdateNs);
    }
    this.frames.addTotPages(c.id, this.frames.totPages(p.id));
  }

  /** `c`'s references to the swap slots of `p`'s paged-out pages, in gfn order; all or none. */
  private copyParentSlots(op: string, p: Domain, c: Domain): number[] {
    const slots: number[] = [];
    if (this.pager === undefined) return slots;
    try {
      for (let g = 0; g < p.table.size; g++) {
        if (p.table.type(asGfn(g)) === P2mType.paged) slots.push(this.pager.copySlot(op, p.id, c.id, p.table.mfn(asGfn(g))));
      }
    } catch (e) {
      for (const slot of slots) this.pager.releaseSlot(c.id, slot);
      throw e;
    }
    return slots;
  }

  /** EOPNOTSUPP when a frame of `p` is mapped by a domain with sharing disabled (a fork would share it). */
  private checkParentSharing(op: string, p: Domain): void {
    // Uniform sharing means no domain has it disabled.
    if (this.uniformSharing) return;
    for (let g = 0; g < p.table.size; g++) {
      if (hasFrame(p.table.type(asGfn(g)))) this.checkFrameSharing(op, p.table.mfn(asGfn(g)));
    }
  }

  /** EOPNOTSUPP when a domain mapping `mfn` has sharing disabled: no new sharer may join it. */
  private checkFrameSharing(op: string, mfn: Mfn): void {
    const dom = this.disabledMapper(mfn);
    if (dom !== undefined) throw new HypervisorError('EOPNOTSUPP', op, `mfn ${mfn} is mapped by dom ${dom}, whose sharing is disabled`);
  }

  /** A domain mapping `mfn` with sharing disabled, if any (never for the zero frame). */
  private disabledMapper(mfn: Mfn): DomId | undefined {
    if (mfn === this.zeroMfn || this.uniformSharing) return undefined;
    if ((this.frames.flags(mfn) & FrameFlags.shared) === 0) {
      const owner = this.frames.owner(mfn);
      return this.domainsById.get(owner)?.sharing === false ? owner : undefined;
    }
    let found: DomId | undefined;
    this.p2m.rmap.forEach(mfn, (dom) => {
      if (this.domainsById.get(dom)?.sharing === false) found = dom;
    });
    return found;
  }

  /** Refuses sharing between `a` and `b` when either has it disabled (EOPNOTSUPP) or their trust groups differ (EPERM). */
  private checkMayShare(op: string, a: Domain, b: Domain): void {
    this.checkSharing(op, a);
    this.checkSharing(op, b);
    if (a.trustGroup !== b.trustGroup) {
      throw new HypervisorError('EPERM', op, `dom ${a.id} (trust group ${a.trustGroup}) and dom ${b.id} (trust group ${b.trustGroup}) may not share`);
    }
  }

  private checkSharing(op: string, d: Domain): void {
    if (!d.sharing) throw new HypervisorError('EOPNOTSUPP', op, `sharing is disabled for dom ${d.id}`);
  }

  /** The checks share and add_physmap have in common: both domains, gfns, sharing, the source's handle. */
  private sourceAndClient(op: string, sourceDom: DomId, sourceGfn: Gfn, sourceHandle: number, clientDom: DomId, clientGfn: Gfn): { s: Domain; c: Domain; smfn: Mfn } {
    const s = this.domain(op, sourceDom);
    const c = this.domain(op, clientDom);
    this.checkGfn(op, s, sourceGfn);
    this.checkGfn(op, c, clientGfn);
    this.checkMayShare(op, s, c);
    const smfn = this.nominatedFrame(op, s, sourceGfn, sourceHandle, 'source');
    this.checkFrameSharing(op, smfn);
    return { s, c, smfn };
  }

  private nominatedFrame(op: string, d: Domain, gfn: Gfn, handle: number, which: string): Mfn {
    const mfn = d.table.mfn(gfn);
    if (d.table.type(gfn) !== P2mType.ram_shared || mfn === this.zeroMfn || this.handleOf(mfn) !== handle || handle === 0) {
      throw new HypervisorError('ENOENT', op, `${which} handle ${handle} is not current for dom ${d.id} gfn ${gfn}`);
    }
    return mfn;
  }

  // ---- paging ops (XENMEM_paging_op) ---------------------------------------------------------------

  /**
   * Nominates `gfn` for paging out (XENMEM_paging_op_nominate): a private page becomes
   * paging_out and keeps its frame; a guest write before `pagingEvict` cancels the nomination.
   */
  pagingNominate(dom: DomId, gfn: Gfn): void {
    const op = 'paging_nominate';
    const d = this.pagingDomain(op, dom, gfn);
    const t = d.table.type(gfn);
    if (t !== P2mType.ram_rw) {
      throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} is ${P2M_TYPE_NAMES[t]}: only a private ram_rw page can be nominated`);
    }
    d.table.set(gfn, d.table.mfn(gfn), P2mType.paging_out);
  }

  /** Evicts a nominated page to swap (XENMEM_paging_op_evict): paging_out becomes paged, the frame is freed. */
  pagingEvict(dom: DomId, gfn: Gfn): void {
    const op = 'paging_evict';
    const d = this.pagingDomain(op, dom, gfn);
    const t = d.table.type(gfn);
    if (t !== P2mType.paging_out) {
      throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} is ${P2M_TYPE_NAMES[t]}, not paging_out (nominate it first; a write cancels the nomination)`);
    }
    this.pager!.evictPage(op, d.id, gfn);
  }

  /**
   * Brings a paged-out page back (XENMEM_paging_op_prep, and with `data` the load): allocates a
   * frame and fills it with `data` (the pager's copy) or, without it, from the swap slot. The
   * entry is paging_in while the frame is filled, then ram_rw.
   */
  pagingPrep(dom: DomId, gfn: Gfn, data?: Uint8Array): void {
    const op = 'paging_prep';
    const d = this.pagingDomain(op, dom, gfn);
    const t = d.table.type(gfn);
    if (t !== P2mType.paged) throw new HypervisorError('EINVAL', op, `dom ${dom} gfn ${gfn} is ${P2M_TYPE_NAMES[t]}, not paged`);
    if (data !== undefined && data.length !== PAGE_SIZE) {
      throw new HypervisorError('EINVAL', op, `data must be ${PAGE_SIZE} bytes, got ${data.length}`);
    }
    if (!this.pager!.ensureFree(1)) throw new HypervisorError('ENOMEM', op, `no free machine frame for dom ${dom} gfn ${gfn}`);
    // Evicting to make room may not touch this entry: it is paged already.
    this.pager!.faultIn(op, d.id, gfn, data);
  }

  private pagingDomain(op: string, dom: DomId, gfn: Gfn): Domain {
    const d = this.domain(op, dom);
    this.checkGfn(op, d, gfn);
    if (this.pager === undefined) throw new HypervisorError('EOPNOTSUPP', op, 'this hypervisor has no swap area to page to');
    return d;
  }

  // ---- advice to the dedup strategy (madvise, prctl) -------------------------------------------

  /**
   * Marks `count` pages from `start` of `dom` mergeable or not (MADV_MERGEABLE /
   * MADV_UNMERGEABLE); a scanning strategy then scans them, or unmerges them. Strategies that do
   * not scan accept and ignore the advice, so one scenario runs under every strategy.
   */
  advise(dom: DomId, start: Gfn, count: number, mergeable: boolean): void {
    const op = mergeable ? 'madvise_mergeable' : 'madvise_unmergeable';
    const d = this.domain(op, dom);
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > d.table.size) {
      throw new HypervisorError('EINVAL', op, `pages [${start}, ${start + count}) are outside dom ${dom}'s ${d.table.size} guest frames`);
    }
    this.dedup.advise?.(dom, start, count, mergeable);
  }

  /** Marks all of `dom` mergeable or not, present and future pages (PR_SET_MEMORY_MERGE). */
  setDomainMergeable(dom: DomId, on: boolean): void {
    this.domain('set_memory_merge', dom);
    this.dedup.setDomainMergeable?.(dom, on);
  }

  /** The node of frame `mfn`: frames are split into `numaNodes` equal contiguous ranges. */
  nodeOf(mfn: Mfn): number {
    return Math.floor(mfn / this.framesPerNode);
  }

  /** DedupHost.merge: maps `dom`'s `gfn` to `target` shared, when their contents are equal. */
  private mergePage(dom: DomId, gfn: Gfn, target: Mfn): boolean {
    const d = this.domainsById.get(dom);
    if (d === undefined || gfn < 0 || gfn >= d.table.size) return false;
    const t = d.table.type(gfn);
    const cur = d.table.mfn(gfn);
    if ((t !== P2mType.ram_rw && t !== P2mType.ram_shared) || cur === target) return false;
    if (target < 0 || target >= this.frames.totalFrames || this.frames.isFree(target)) return false;
    if (!this.mayShareFrame(d, target)) return false;
    this.dedupCpuNs += this.costModel.pageCompareNs;
    if (!this.memory.framesEqual(cur, target)) return false;
    this.makeShared(target);
    this.dropMapping(d, gfn);
    this.mapShared(d, gfn, target);
    this.dedupCpuNs += this.costModel.p2mUpdateNs;
    return true;
  }

  /** DedupHost.unmerge: gives `dom`'s `gfn` a private copy if it maps a shared frame. */
  private unmergePage(dom: DomId, gfn: Gfn): boolean {
    const d = this.domainsById.get(dom);
    if (d === undefined || gfn < 0 || gfn >= d.table.size || d.table.type(gfn) !== P2mType.ram_shared) return true;
    try {
      const mfn = this.writableFrame(d, gfn, false);
      // The new private frame is a guest page like any other: the eviction policy tracks it.
      this.pager?.touch(mfn);
      return true;
    } catch (e) {
      if (e instanceof HypervisorError && e.errnoName === 'ENOMEM') return false;
      throw e;
    }
  }

  // ---- the hypercall gate ------------------------------------------------------------------------

  /** Decodes, validates and runs the hypercall in `request` on behalf of `caller`. */
  hypercall(caller: DomId, request: Uint8Array): Uint8Array {
    return dispatchHypercall(this.abi, caller, request);
  }

  // ---- statistics and audit ------------------------------------------------------------------

  /** Memory figures of one domain. */
  domainStats(dom: DomId): DomainStats {
    const d = this.domain('domain_stats', dom);
    const t = d.table;
    let privatePages = 0;
    let sharedPages = 0;
    let zeroPages = 0;
    let podPages = 0;
    let pagedPages = 0;
    for (let g = 0; g < t.size; g++) {
      const type = t.type(asGfn(g));
      if (type === P2mType.ram_rw || type === P2mType.paging_out) privatePages++;
      else if (type === P2mType.populate_on_demand) podPages++;
      else if (type === P2mType.paged) pagedPages++;
      else if (type === P2mType.ram_shared) {
        if (t.mfn(asGfn(g)) === this.zeroMfn) zeroPages++;
        else sharedPages++;
      }
    }
    return {
      domId: d.id,
      name: d.name,
      totPages: this.frames.totPages(dom),
      maxPages: this.frames.maxPages(dom),
      privatePages,
      sharedPages,
      zeroPages,
      podPages,
      pagedPages,
      cowFaults: d.cowFaults,
      zeroFaults: d.zeroFaults,
      cpuNs: d.cpuNs,
    };
  }

  /** Memory figures of every live domain, in creation order. */
  allDomainStats(): DomainStats[] {
    return this.domains().map((d) => this.domainStats(d.id));
  }

  /** Memory figures of the whole host. */
  totals(): TotalsStats {
    let guestPages = 0;
    let cowFaults = 0;
    let zeroFaults = 0;
    let cpuNs = 0;
    for (const d of this.domainsById.values()) {
      guestPages += this.frames.totPages(d.id);
      cowFaults += d.cowFaults;
      zeroFaults += d.zeroFaults;
      cpuNs += d.cpuNs;
    }
    const { shared: pagesShared, sharing: pagesSharing, zeroPages } = this.sharingCounts();
    const machineFramesUsed = this.frames.totalFrames - this.frames.freeFrames;
    const pagedPages = this.pager === undefined ? 0 : this.countPaged();
    // Saved by sharing only: pages out on swap need no frame either, but sharing did not save them.
    const resident = guestPages - pagedPages;
    return {
      guestPages,
      machineFramesUsed,
      machineFramesFree: this.frames.freeFrames,
      pagesShared,
      pagesSharing,
      zeroPages,
      pagedPages,
      cowFaults,
      zeroFaults,
      savedPct: guestPages === 0 ? 0 : Math.round(((resident - machineFramesUsed) / guestPages) * 10000) / 100,
      cpuNs,
      dedupCpuNs: this.dedupCpuNs,
    };
  }

  private countPaged(): number {
    let n = 0;
    // The tables count their entries by type: no scan of every gfn a sample.
    for (const d of this.domainsById.values()) n += d.table.countOf(P2mType.paged);
    return n;
  }

  /**
   * Resident frames holding a content that another resident frame holds already: over every
   * content in RAM, its frames beyond the first (the zero frame counts as a frame of zeros).
   * 0 means RAM holds each content once. Hashes every frame in use (confirmed by compares): a
   * figure for the end of a run and for tests, not for every sample.
   */
  duplicateFrames(): number {
    const frames = this.frames;
    const memory = this.memory;
    const byHash = new Map<number, number[]>();
    let duplicates = 0;
    for (let m = 0; m < frames.totalFrames; m++) {
      if (frames.isFree(m as Mfn)) continue;
      const hash = memory.hashFrame(m as Mfn);
      const same = byHash.get(hash);
      if (same === undefined) {
        byHash.set(hash, [m]);
      } else if (same.some((o) => memory.framesEqual(o as Mfn, m as Mfn))) {
        duplicates++;
      } else {
        same.push(m);
      }
    }
    return duplicates;
  }

  /** Every broken invariant, in words; empty when the state is sound. */
  audit(): string[] {
    return auditHypervisor(this);
  }

  /**
   * Metadata bytes held in typed arrays: frame table (with its allocator), p2m tables and reverse
   * map, dedup index, and the hypervisor's own per-frame arrays (sharing handles, uniform-write
   * epochs, the pager's). Frame contents are not metadata.
   */
  metadataBytes(): number {
    const own = this.handles.byteLength + (this.writeEpoch?.byteLength ?? 0) + (this.pager?.metadataBytes() ?? 0);
    return this.frames.metadataBytes() + this.p2m.metadataBytes() + this.dedup.metadataBytes() + own;
  }

  // ---- internals -------------------------------------------------------------------------------

  private charge(d: Domain, ns: number): void {
    d.cpuNs += ns;
  }

  private populatePage(d: Domain, gfn: Gfn, pod: boolean): void {
    if (pod) {
      d.table.set(gfn, INVALID_MFN, P2mType.populate_on_demand);
      this.charge(d, this.costModel.p2mUpdateNs);
    } else if (this.dedup.populateZero) {
      this.mapShared(d, gfn, this.zeroMfn);
      this.charge(d, this.costModel.p2mUpdateNs);
    } else {
      const mfn = this.allocFrameFor('populate_physmap', d, gfn);
      this.memory.zeroFrame(mfn);
      d.table.set(gfn, mfn, P2mType.ram_rw);
      this.pager?.touch(mfn);
      this.charge(d, this.costModel.frameAllocNs + this.costModel.pageZeroNs + this.costModel.p2mUpdateNs);
    }
  }

  private allocFrameFor(op: string, d: Domain, gfn: Gfn): Mfn {
    const mfn = this.frames.allocFrame(d.id, gfn);
    if (mfn === INVALID_MFN) throw new HypervisorError('ENOMEM', op, `no free machine frame for dom ${d.id} gfn ${gfn}`);
    return mfn;
  }

  /** Maps `gfn` of `d` (whose entry is free to overwrite) to shared frame `mfn`. */
  private mapShared(d: Domain, gfn: Gfn, mfn: Mfn): void {
    this.p2m.rmap.add(mfn, d.id, gfn);
    this.frames.addRef(mfn, 1);
    d.table.set(gfn, mfn, P2mType.ram_shared);
  }

  /**
   * Turns a private frame into a shared one with its one mapper, and offers it to an inline
   * strategy (reason `'shared'`); no-op when already shared.
   */
  private makeShared(mfn: Mfn): void {
    const flags = this.frames.flags(mfn);
    if ((flags & FrameFlags.shared) !== 0) return;
    const owner = this.frames.owner(mfn);
    const gfn = this.frames.gfn(mfn);
    this.pager?.frameShared(mfn, owner);
    this.p2m.rmap.add(mfn, owner, gfn);
    this.domain('share', owner).table.set(gfn, mfn, P2mType.ram_shared);
    // The m2p word stays: it is the reverse map's anchor now.
    this.frames.setOwner(mfn, DOMID_COW, gfn);
    this.frames.setFlags(mfn, flags | FrameFlags.shared);
    this.offerShared(mfn);
  }

  /**
   * Offers shared frame `mfn` to an inline strategy that does not hold it (reason `'shared'`):
   * the strategy may index it or not; nothing here relies on it being indexed.
   */
  private offerShared(mfn: Mfn): void {
    if (this.dedup.inline && !this.dedup.contains(mfn)) this.dedup.insert(mfn, this.memory.hashFrame(mfn), 'shared');
  }

  /** Drops whatever `gfn` maps (its frame, its share, or nothing) without changing accounting. */
  private dropMapping(d: Domain, gfn: Gfn): void {
    const t = d.table.type(gfn);
    const mfn = d.table.mfn(gfn);
    if (t === P2mType.ram_rw || t === P2mType.paging_out) {
      this.dedup.remove(mfn);
      this.handles[mfn] = 0;
      this.pager?.dropCache(mfn, d.id);
      this.frames.freeFrame(mfn);
    } else if (t === P2mType.paged) {
      this.pager!.releaseSlot(d.id, mfn);
    } else if (t === P2mType.ram_shared) {
      this.cow.release(d.id, gfn, mfn);
      if (this.frames.isFree(mfn)) this.frameFreed(mfn, d.id);
    }
    d.table.clear(gfn);
  }

  /** A shared frame just freed by its last mapping's release: what was keyed on it goes. */
  private frameFreed(mfn: Mfn, dom: DomId): void {
    this.handles[mfn] = 0;
    this.pager?.dropCache(mfn, dom);
  }

  private releasePage(d: Domain, gfn: Gfn): void {
    this.dropMapping(d, gfn);
    this.charge(d, this.costModel.p2mUpdateNs);
  }

  private checkOrder(op: string, extentOrder: number): void {
    if (!Number.isInteger(extentOrder) || extentOrder < 0 || extentOrder > MAX_ORDER) {
      throw new HypervisorError('EINVAL', op, `extent order must be an integer in [0, ${MAX_ORDER}], got ${extentOrder}`);
    }
  }

  private checkGfn(op: string, d: Domain, gfn: number): void {
    if (!Number.isInteger(gfn) || gfn < 0 || gfn >= d.table.size) {
      throw new HypervisorError('EINVAL', op, `gfn ${gfn} is outside dom ${d.id}'s ${d.table.size} guest frames`);
    }
  }

  /**
   * Checks every extent before anything changes: aligned, in range, no overlaps, and every page
   * populated (`populated` true) or not (false). Returns the number of pages.
   */
  private checkExtents(op: string, d: Domain, gfns: ArrayLike<number>, extentOrder: number, populated: boolean): number {
    this.checkOrder(op, extentOrder);
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

  /**
   * Refuses growth past max_pages (E2BIG, as Xen's assign_pages) or past the free frames other
   * domains have not claimed (ENOMEM).
   */
  private checkCanGrow(op: string, d: Domain, pages: number, frames: number): void {
    const tot = this.frames.totPages(d.id);
    const max = this.frames.maxPages(d.id);
    if (tot + pages > max) {
      throw new HypervisorError('E2BIG', op, `dom ${d.id} would hold ${tot + pages} pages, over its max_pages ${max}`);
    }
    if (frames === 0) return;
    const need = frames + this.outstandingClaims - d.claim;
    if (need > this.frames.freeFrames && !this.pager?.ensureFree(need)) {
      const claimed = this.outstandingClaims - d.claim;
      throw new HypervisorError('ENOMEM', op, `${frames} frames needed, ${this.frames.freeFrames} free${claimed > 0 ? ` of which ${claimed} claimed by other domains` : ''}`);
    }
  }

  private checkAccess(op: string, d: Domain, gfn: Gfn, offset: number, length: number, buf: Uint8Array, bufOffset: number): void {
    this.checkGfn(op, d, gfn);
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > PAGE_SIZE) {
      throw new HypervisorError('EINVAL', op, `bytes [${offset}, ${offset + length}) are not within a ${PAGE_SIZE}-byte page`);
    }
    if (!Number.isInteger(bufOffset) || bufOffset < 0 || bufOffset + length > buf.length) {
      throw new HypervisorError('EFAULT', op, `buffer of ${buf.length} bytes has no room for ${length} bytes at ${bufOffset}`);
    }
  }
}

/** Whether a p2m entry of type `t` maps a frame whose content can be compared. */
function hasFrame(t: P2mType): boolean {
  return t === P2mType.ram_rw || t === P2mType.ram_shared || t === P2mType.paging_out;
}

function makeAllocator(name: string, frames: number): FrameAllocator {
  if (name === 'buddy') return new BuddyAllocator(frames);
  if (name === 'freelist') return new FreeListAllocator(frames);
  throw new HypervisorError('EINVAL', 'create', `unknown allocator "${name}" (expected buddy or freelist)`);
}

/** True when `caller` may act on `target`: itself, or anything for the control domain. */
export function mayActOn(caller: DomId, target: DomId): boolean {
  return caller === DOMID_CONTROL || caller === target;
}
