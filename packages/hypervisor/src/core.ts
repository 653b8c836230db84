import { ArrayP2m, type ArrayP2mTable } from '@pagevisor/p2m';
import { CowHandler } from '@pagevisor/cow';
import type { ArrayFrameTable } from '@pagevisor/frame-allocator';
import {
  DOMID_COW,
  DOMID_FIRST_RESERVED,
  DOMID_XEN,
  FrameFlags,
  HypervisorError,
  INVALID_GFN,
  INVALID_MFN,
  P2mType,
  PAGE_SIZE,
  asDomId,
  asGfn,
  type CostModel,
  type DedupIndex,
  type DomId,
  type Gfn,
  type MachineMemory,
  type Mfn,
} from '@pagevisor/types';
import type { Pager } from './pager.js';
import type { DomainOptions, HypervisorOptions, Mitigations } from './options.js';
import { Tmem } from './tmem.js';

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
 * The core of the memory manager, the one structure every subsystem works on (as Xen's
 * `struct domain` and `page_info` are): machine RAM, the frame table, every domain's p2m and the
 * reverse map, the zero frame, the domain records, and the primitives that map, share and drop a
 * page. The operations live in one file per subsystem (`memory-ops`, `access`, `sharing`,
 * `paging`, `dedup-host`, `stats`), each a set of functions over this core; `Hypervisor` is
 * their public face. Not exported from the package: its fields are the subsystems' to change.
 */
export class HostCore {
  readonly memory: MachineMemory;
  readonly frames: ArrayFrameTable;
  readonly p2m: ArrayP2m;
  readonly dedup: DedupIndex;
  readonly cow: CowHandler;
  readonly costModel: CostModel;
  readonly zeroMfn: Mfn;
  readonly numaNodes: number;
  readonly tmem: Tmem | undefined;
  readonly mitigations: Mitigations;
  /** Paging to swap, when configured: set once, by the hypervisor's wiring, right after the core. */
  pager: Pager | undefined;

  readonly domainsById = new Map<number, Domain>();
  private nextDomId = 1;
  /**
   * Sharing handle of each frame (0: none), as returned by nominate_gfn. Empty until the first
   * nomination: 8 bytes a frame that hosts never using the sharing ops do not pay. Writes of 0
   * past the end of an empty array are no-ops, and reads go through handleOf.
   */
  handles = new Float64Array(0);
  nextHandle = 1;
  private readonly framesPerNode: number;
  /** Simulated CPU time the dedup strategy and the merges it asked for took. */
  dedupCpuNs = 0;
  /** Frames claimed by every domain and not yet allocated. */
  outstandingClaims = 0;
  /** Scanner passes so far (uniform writes: a candidate faults on its first write after each). */
  scanEpoch = 0;
  /**
   * True while every live domain has sharing enabled and all are in one trust group: any two
   * may then share, and a shared frame's mappers need not be walked to know it.
   */
  uniformSharing = true;
  /** Uniform writes: scanEpoch + 1 when the frame last took its write fault; anything else: armed. */
  readonly writeEpoch: Uint32Array | undefined;

  constructor(memory: MachineMemory, frames: ArrayFrameTable, dedup: DedupIndex, costModel: CostModel, numaNodes: number, options: HypervisorOptions) {
    this.memory = memory;
    this.mitigations = { ...options.mitigations };
    this.writeEpoch = this.mitigations.uniformWrites ? new Uint32Array(memory.frames) : undefined;
    this.tmem = options.tmem === undefined ? undefined : new Tmem({ hashPage: (p) => memory.hashPage(p), ...options.tmem });
    this.numaNodes = numaNodes;
    this.framesPerNode = Math.ceil(memory.frames / numaNodes);
    this.frames = frames;
    this.dedup = dedup;
    this.costModel = costModel;

    const zero = frames.allocFrame(DOMID_XEN, INVALID_GFN);
    if (zero === INVALID_MFN) throw new HypervisorError('ENOMEM', 'create', 'no frame for the zero frame');
    memory.zeroFrame(zero);
    frames.setFlags(zero, FrameFlags.shared | FrameFlags.zero);
    frames.addRef(zero, -1); // the zero frame's refcount counts its mappings only
    this.zeroMfn = zero;
    // Any gfn may map the zero frame: the reverse map counts its mappings rather than list them.
    // It keeps a shared frame's anchor in the frame's m2p word, as Xen keeps sharing state in page_info.
    this.p2m = new ArrayP2m(memory.frames, zero, frames.lendM2p());
    this.cow = new CowHandler({ frames, p2m: this.p2m, memory, dedup, zeroMfn: zero });
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

  /** Live domains in creation order. */
  domains(): Domain[] {
    return [...this.domainsById.values()];
  }

  /** Sharing handle of frame `mfn` (0: none), as nominate_gfn returned it. */
  handleOf(mfn: Mfn): number {
    return this.handles[mfn] ?? 0;
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

  /** `dom`'s tmem store, EOPNOTSUPP when this hypervisor has none. */
  tmemFor(op: string, dom: DomId): Tmem {
    this.domain(op, dom);
    if (this.tmem === undefined) throw new HypervisorError('EOPNOTSUPP', op, 'this hypervisor has no tmem store');
    return this.tmem;
  }

  /** The node of frame `mfn`: frames are split into `numaNodes` equal contiguous ranges. */
  nodeOf(mfn: Mfn): number {
    return Math.floor(mfn / this.framesPerNode);
  }

  charge(d: Domain, ns: number): void {
    d.cpuNs += ns;
  }

  // ---- frames and p2m entries ------------------------------------------------------------------

  allocFrameFor(op: string, d: Domain, gfn: Gfn): Mfn {
    const mfn = this.frames.allocFrame(d.id, gfn);
    if (mfn === INVALID_MFN) throw new HypervisorError('ENOMEM', op, `no free machine frame for dom ${d.id} gfn ${gfn}`);
    return mfn;
  }

  /** Maps `gfn` of `d` (whose entry is free to overwrite) to shared frame `mfn`. */
  mapShared(d: Domain, gfn: Gfn, mfn: Mfn): void {
    this.p2m.rmap.add(mfn, d.id, gfn);
    this.frames.addRef(mfn, 1);
    d.table.set(gfn, mfn, P2mType.ram_shared);
  }

  /**
   * Turns a private frame into a shared one with its one mapper, and offers it to an inline
   * strategy (reason `'shared'`); no-op when already shared.
   */
  makeShared(mfn: Mfn): void {
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
  offerShared(mfn: Mfn): void {
    if (this.dedup.inline && !this.dedup.contains(mfn)) this.dedup.insert(mfn, this.memory.hashFrame(mfn), 'shared');
  }

  /** Moves `d`'s page `gfn` off whatever it maps onto shared frame `target`, which holds its content. */
  remapShared(d: Domain, gfn: Gfn, target: Mfn): void {
    this.makeShared(target);
    this.dropMapping(d, gfn);
    this.mapShared(d, gfn, target);
  }

  /** Drops whatever `gfn` maps (its frame, its share, or nothing) without changing accounting. */
  dropMapping(d: Domain, gfn: Gfn): void {
    const t = d.table.type(gfn);
    const mfn = d.table.mfn(gfn);
    if (t === P2mType.ram_rw || t === P2mType.paging_out) {
      this.forgetFrame(mfn, d.id);
      this.frames.freeFrame(mfn);
    } else if (t === P2mType.paged) {
      this.pager!.releaseSlot(d.id, mfn);
    } else if (t === P2mType.ram_shared) {
      // Unmapping a page KSM merged onto the zero frame counts it out of ksm_zero_pages now.
      if (mfn === this.zeroMfn) this.dedup.zeroPageUnmapped?.(d.id, gfn);
      this.cow.release(d.id, gfn, mfn);
      if (this.frames.isFree(mfn)) this.dropFrameKeys(mfn, d.id);
    }
    d.table.clear(gfn);
  }

  /** Frame `mfn` of `dom` is about to change content or go: the index, its handle and its swap-cache slot let it go. */
  forgetFrame(mfn: Mfn, dom: DomId): void {
    this.dedup.remove(mfn);
    this.dropFrameKeys(mfn, dom);
  }

  /** What is keyed on frame `mfn` (its sharing handle, its swap-cache slot) goes: it was freed, or its content is about to change. */
  dropFrameKeys(mfn: Mfn, dom: DomId): void {
    this.handles[mfn] = 0;
    this.pager?.dropCache(mfn, dom);
  }

  releasePage(d: Domain, gfn: Gfn): void {
    this.dropMapping(d, gfn);
    this.charge(d, this.costModel.p2mUpdateNs);
  }

  /** Highest populated gfn of `d`, -1 when none. */
  maximumGpfnOf(d: Domain): number {
    let g = d.table.size - 1;
    while (g >= 0 && d.table.type(asGfn(g)) === P2mType.invalid) g--;
    return g;
  }

  // ---- who may share what ------------------------------------------------------------------------

  /** Whether de-duplication may share `d`'s page of content `page` at all (sharing enabled, mitigations). */
  mayDedup(d: Domain, page: Uint8Array): boolean {
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
  mayShareFrame(d: Domain, target: Mfn): boolean {
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

  private mayShareWith(d: Domain, dom: DomId): boolean {
    const o = this.domainsById.get(dom);
    return o !== undefined && o.sharing && o.trustGroup === d.trustGroup;
  }

  // ---- argument checks ---------------------------------------------------------------------------

  checkGfn(op: string, d: Domain, gfn: number): void {
    if (!Number.isInteger(gfn) || gfn < 0 || gfn >= d.table.size) {
      throw new HypervisorError('EINVAL', op, `gfn ${gfn} is outside dom ${d.id}'s ${d.table.size} guest frames`);
    }
  }

  /** EINVAL unless [start, start + count) lies within `d`'s guest frames. */
  checkRange(op: string, d: Domain, start: number, count: number): void {
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > d.table.size) {
      throw new HypervisorError('EINVAL', op, `pages [${start}, ${start + count}) are outside dom ${d.id}'s ${d.table.size} guest frames`);
    }
  }
}

/** Whether a p2m entry of type `t` maps a frame whose content can be compared. */
export function hasFrame(t: P2mType): boolean {
  return t === P2mType.ram_rw || t === P2mType.ram_shared || t === P2mType.paging_out;
}
