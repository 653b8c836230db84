import {
  asGfn,
  asMfn,
  asSwapSlot,
  DOMID_COW,
  FrameFlags,
  HypervisorError,
  INVALID_MFN,
  isRealDomId,
  P2mType,
  PAGE_SIZE,
  type DedupIndex,
  type DomId,
  type EvictionPolicy,
  type Gfn,
  type MachineMemory,
  type Mfn,
  type P2m,
  type SwapBackend,
  type SwapSlot,
} from '@pagevisor/types';
import type { ArrayFrameTable } from '@pagevisor/frame-allocator';
import type { SwapOptions } from './options.js';

/** Swap figures summed over every area the pager used. */
export interface PagerStats {
  /** Pages stored (de-duplicated or not). */
  readonly swapOuts: number;
  /** Pages read back. */
  readonly swapIns: number;
  /** Slots holding a page now. */
  readonly swapSlotsUsed: number;
  /** Bytes written to the device(s). */
  readonly swapBytesWritten: number;
  /** Stores that found identical content in a slot and wrote nothing. */
  readonly slotsSavedByDedup: number;
  /** Uncompressed bytes stored / device bytes they take (1 without compression). */
  readonly compressionRatio: number;
  /** Device bytes in use now. */
  readonly diskBytesUsed: number;
  /** Sum of each area's peak (for per-domain areas: what the domains needed together). */
  readonly diskBytesPeak: number;
  /** Evictions refused by the area (full, or a device error): the page stayed in RAM. */
  readonly evictionFailures: number;
  /** Swap-ins that failed (device error or checksum): the domain was paused. */
  readonly swapInFailures: number;
  /** Faults of a paged page that mapped the frame caching its slot (no read, no new frame). */
  readonly swapInsCached: number;
  /** Swap-ins whose content another resident frame held (the inline index): mapped shared, no new frame. */
  readonly swapInsDeduped: number;
}

/** How a paged page came back ({@link Pager.faultIn}). */
export const SwapIn = {
  /** Read from its slot into a new frame. */
  newFrame: 0,
  /** Mapped the frame that caches its slot: no read, no new frame. */
  cached: 1,
  /** Read, and mapped a resident frame of equal content: no new frame. */
  deduped: 2,
} as const;
/** A {@link SwapIn} value. */
export type SwapIn = (typeof SwapIn)[keyof typeof SwapIn];

/** Victims with sharers an eviction passes over, at most, looking for a private one. */
const PASS_OVER = 64;

/** What the pager needs of the hypervisor. */
export interface PagerHost {
  readonly memory: MachineMemory;
  readonly frames: ArrayFrameTable;
  readonly p2m: P2m;
  readonly dedup: DedupIndex;
  readonly zeroMfn: Mfn;
  /** Frame `mfn` is about to be freed or rewritten by paging: forget what is keyed on it (handles). */
  frameGone(mfn: Mfn): void;
  /**
   * Maps `dom`'s paged-out page `gfn` to resident frame `mfn`, which holds its content, shared
   * copy-on-write (the frame becomes shared if it is not). False, changing nothing, when sharing
   * it is not permitted (sharing disabled, another trust group, a mitigation).
   */
  shareIn(dom: DomId, gfn: Gfn, mfn: Mfn): boolean;
  /**
   * De-duplication of a page being swapped in (content `page`, hash `hash`): maps `dom`'s paged
   * page `gfn` to a resident frame of equal content when the strategy finds one and sharing it is
   * permitted, and returns that frame; INVALID_MFN, changing nothing, otherwise.
   */
  dedupIn(dom: DomId, gfn: Gfn, page: Uint8Array, hash: number): Mfn;
  /** `dom`'s page just swapped into new frame `mfn` (content `page`, hash `hash`): offered to the strategy. */
  swappedIn(dom: DomId, mfn: Mfn, page: Uint8Array, hash: number): void;
}

/**
 * Paging to swap: chooses victims with the eviction policy, writes them to the swap area(s),
 * turns their p2m entries into `paged` entries holding the slot, and faults them back in on
 * access. A page swapped in keeps its slot until it is written (the swap cache), so evicting it
 * again writes nothing.
 *
 * Swap-in is an allocation too, and it goes through de-duplication: with one shared area, a slot
 * whose content is resident already (the swap cache, keyed by slot: another mapper of the slot
 * faulted it in) comes back as that frame, shared, as Linux maps a KSM page from its swap cache;
 * with an inline strategy, a content some other frame holds (the index's lookup, with the slot's
 * checksum as the hash) comes back as that frame. Only a miss takes a new frame. So a frame
 * shared by N mappers goes out as one slot and comes back as one frame.
 *
 * A p2m entry of type `paged` holds its swap slot where other entries hold a frame.
 */
export class Pager {
  private readonly host: PagerHost;
  private readonly policy: EvictionPolicy;
  private readonly shared: SwapBackend | undefined;
  private readonly makeArea: ((dom: DomId) => SwapBackend) | undefined;
  private readonly areas = new Map<DomId, SwapBackend>();
  /** Every area ever used, for the figures (a destroyed domain's area still counted its bytes). */
  private readonly allAreas: SwapBackend[] = [];
  readonly lowWatermark: number;
  readonly highWatermark: number;
  /** 1 when the frame is in the policy. */
  private readonly tracked: Uint8Array;
  /**
   * Swap-cache slot of each frame (-1: none): the frame's content is still in that slot, and the
   * frame holds one reference to it. With one shared area a shared frame may keep one too.
   */
  private readonly cacheSlot: Int32Array;
  /** With one shared area: the frame holding each cached slot (the inverse of cacheSlot). */
  private readonly slotFrame = new Map<number, Mfn>();
  private readonly scratch = new Uint8Array(PAGE_SIZE);
  private evictionFailures = 0;
  private swapInFailures = 0;
  private swapInsCached = 0;
  private swapInsDeduped = 0;

  /** Bytes of the pager's per-frame arrays (the policy's and the swap areas' own not included). */
  metadataBytes(): number {
    return this.tracked.byteLength + this.cacheSlot.byteLength;
  }

  constructor(host: PagerHost, options: SwapOptions) {
    this.host = host;
    this.policy = options.policy;
    if (typeof options.backend === 'function') this.makeArea = options.backend;
    else {
      this.shared = options.backend;
      this.allAreas.push(options.backend);
    }
    const frames = host.frames.totalFrames;
    this.lowWatermark = options.lowWatermark ?? Math.max(4, Math.floor(frames / 64));
    this.highWatermark = options.highWatermark ?? 2 * this.lowWatermark;
    if (!Number.isInteger(this.lowWatermark) || this.lowWatermark < 1 || !Number.isInteger(this.highWatermark) || this.highWatermark < this.lowWatermark || this.highWatermark >= frames) {
      throw new HypervisorError('EINVAL', 'create', `swap watermarks must be integers with 1 <= low (${this.lowWatermark}) <= high (${this.highWatermark}) < frames (${frames})`);
    }
    this.tracked = new Uint8Array(frames);
    this.cacheSlot = new Int32Array(frames).fill(-1);
  }

  /** A new domain: give it an area of its own in per-domain mode. */
  addDomain(dom: DomId): void {
    if (this.makeArea === undefined) return;
    const area = this.makeArea(dom);
    this.areas.set(dom, area);
    this.allAreas.push(area);
  }

  /** A destroyed domain (all its pages released): its own area goes. */
  removeDomain(dom: DomId): void {
    this.areas.delete(dom);
  }

  /** The area holding `dom`'s pages. */
  areaOf(dom: DomId): SwapBackend {
    return this.shared ?? this.areas.get(dom)!;
  }

  /** Frame `mfn` holds a guest page that was just accessed (the accessed bit). */
  touch(mfn: Mfn): void {
    if (this.tracked[mfn] === 1) this.policy.touch(mfn);
    else {
      this.tracked[mfn] = 1;
      this.policy.insert(mfn);
    }
  }

  /**
   * Evicts until `n` frames are free; false when eviction could not free enough, having evicted
   * nothing. The victims' contents are written first and their p2m entries change only once all
   * are written, so a swap area that fills up or fails midway releases what it took and the
   * caller's refusal leaves every page where it was.
   */
  ensureFree(n: number): boolean {
    if (!this.canFree(n)) return false;
    return this.evict(n - this.host.frames.freeFrames);
  }

  /** Whether evicting could make `n` frames free: enough frames hold evictable pages. */
  private canFree(n: number): boolean {
    let short = n - this.host.frames.freeFrames;
    if (short <= 0) return true;
    // The policy may still hold frames that were freed or shared since (dropped lazily).
    if (this.policy.size < short) return false;
    for (let m = 0; m < this.tracked.length && short > 0; m++) {
      if (this.tracked[m] === 1 && this.evictable(m as Mfn)) short--;
    }
    return short <= 0;
  }

  /** Background reclaim: below the low watermark, evict up to the high one (as far as it goes). */
  reclaim(): void {
    if (this.host.frames.freeFrames >= this.lowWatermark) return;
    while (this.host.frames.freeFrames < this.highWatermark && this.evictOne());
  }

  /** Evicts one page, the policy's victim; false when none could be written out. */
  evictOne(): boolean {
    return this.evict(1);
  }

  /**
   * Evicts `count` pages, the policy's victims, or none: false when not that many could be
   * written out. Frames that no longer hold an evictable guest page leave the policy; a victim
   * the area refuses (full, failing) stays in RAM with a second chance, and another is tried
   * (another page may need no write: its content is in a slot already).
   *
   * Sharing weighs in: a frame mapped N times costs N faults to bring back and, while out, takes
   * N - 1 frames of saving with it, where a private frame costs one and takes none. So a victim
   * with sharers is passed over (a second chance) while one of the next {@link PASS_OVER}
   * victims is private; only when none is are the passed-over frames evicted, in the policy's order.
   */
  private evict(count: number): boolean {
    const { frames } = this.host;
    const taken: Mfn[] = [];
    const slots: SwapSlot[][] = [];
    const spared: Mfn[] = [];
    const refused: Mfn[] = [];
    const take = (m: Mfn): void => {
      try {
        slots.push(this.writeOut(m));
        taken.push(m);
      } catch (e) {
        if (!(e instanceof HypervisorError)) throw e;
        this.evictionFailures++;
        refused.push(m);
      }
    };
    for (let tries = this.policy.size; taken.length < count && tries >= 0; tries--) {
      const m = this.policy.victim();
      if (m === INVALID_MFN) break;
      // Out of the policy while it is a candidate, so that the next victim is another frame.
      this.untrack(m);
      if (!this.evictable(m)) continue;
      if (spared.length < PASS_OVER && (frames.flags(m) & FrameFlags.shared) !== 0 && frames.refcount(m) > 1) spared.push(m);
      else take(m);
    }
    let next = 0;
    while (taken.length < count && next < spared.length) take(spared[next++]!);
    for (let i = next; i < spared.length; i++) this.touch(spared[i]!);
    for (const m of refused) this.touch(m);
    if (taken.length < count) {
      taken.forEach((m, i) => {
        this.unwrite(m, slots[i]!);
        this.touch(m);
      });
      return false;
    }
    taken.forEach((m, i) => this.commit(m, slots[i]!));
    return true;
  }

  /**
   * Brings `dom`'s page `gfn` (type paged) back: into the resident frame that holds its content
   * already (the swap cache, or the inline index) when it may share it, else into a new frame,
   * which must be available. With `data` (the pager's copy) the page goes into a new frame as it
   * is. On a device error or a bad checksum nothing changes and HypervisorError EIO is thrown:
   * the caller pauses the domain.
   */
  faultIn(op: string, dom: DomId, gfn: Gfn, data?: Uint8Array): SwapIn {
    const { frames, memory, p2m, dedup } = this.host;
    const table = p2m.table(dom)!;
    const slot = asSwapSlot(table.mfn(gfn));
    const area = this.areaOf(dom);
    let hash = 0;
    if (data === undefined) {
      const cached = this.slotFrame.get(slot);
      if (cached !== undefined && this.host.shareIn(dom, gfn, cached)) {
        // The entry's reference to the slot goes; the frame keeps its own (the cache's).
        area.addRef(slot, -1);
        this.swapInsCached++;
        this.touch(cached);
        return SwapIn.cached;
      }
      try {
        area.load(slot, this.scratch);
      } catch (e) {
        if (!(e instanceof HypervisorError)) throw e;
        this.swapInFailures++;
        throw new HypervisorError('EIO', op, `dom ${dom} gfn ${gfn}: swap-in of slot ${slot} failed (${e.detail}); domain paused`);
      }
      if (dedup.inline) {
        hash = area.checksum?.(slot) ?? memory.hashPage(this.scratch);
        const match = this.host.dedupIn(dom, gfn, this.scratch, hash);
        if (match !== INVALID_MFN) {
          area.addRef(slot, -1);
          this.swapInsDeduped++;
          if (match !== this.host.zeroMfn) this.touch(match);
          return SwapIn.deduped;
        }
      }
    }
    const mfn = frames.allocFrame(dom, gfn);
    if (mfn === INVALID_MFN) throw new HypervisorError('ENOMEM', op, `no free machine frame to swap in dom ${dom} gfn ${gfn}`);
    table.set(gfn, mfn, P2mType.paging_in);
    memory.write(mfn, 0, data ?? this.scratch, 0, PAGE_SIZE);
    table.set(gfn, mfn, P2mType.ram_rw);
    if (data === undefined && (this.shared === undefined || !this.slotFrame.has(slot))) {
      // The entry's reference to the slot moves to the swap cache.
      this.cacheSlot[mfn] = slot;
      if (this.shared !== undefined) this.slotFrame.set(slot, mfn);
    } else {
      // The pager supplied the content (the slot may no longer match it), or another frame
      // caches the slot already (one it could not share: trust groups, sharing disabled).
      area.addRef(slot, -1);
    }
    // A swapped-in page is a content like a written one: offered to the inline index.
    if (data === undefined && dedup.inline) this.host.swappedIn(dom, mfn, this.scratch, hash);
    this.touch(mfn);
    return SwapIn.newFrame;
  }

  /**
   * Evicts `dom`'s private page `gfn` (ram_rw or paging_out) now, whatever the policy would
   * choose (Xen's paging evict). Throws what the area throws, changing nothing.
   */
  evictPage(op: string, dom: DomId, gfn: Gfn): void {
    const m = this.host.p2m.table(dom)!.mfn(gfn);
    let slots: SwapSlot[];
    try {
      slots = this.writeOut(m);
    } catch (e) {
      if (e instanceof HypervisorError) throw new HypervisorError(e.errnoName as 'EIO', op, `dom ${dom} gfn ${gfn}: ${e.detail}`);
      throw e;
    }
    this.untrack(m);
    this.commit(m, slots);
  }

  /**
   * Frame `mfn` (private to `owner`, or shared with one shared area) is about to change or be
   * freed: its swap-cache slot goes.
   */
  dropCache(mfn: Mfn, owner: DomId): void {
    const slot = this.cacheSlot[mfn]!;
    if (slot < 0) return;
    this.cacheSlot[mfn] = -1;
    if (this.shared !== undefined) this.slotFrame.delete(slot);
    this.areaOf(owner).addRef(asSwapSlot(slot), -1);
  }

  /**
   * Private frame `mfn` is becoming shared. With one shared area it keeps its swap-cache slot
   * (the content does not change); with an area per domain the slot is its owner's and goes.
   */
  frameShared(mfn: Mfn, owner: DomId): void {
    if (this.shared === undefined) this.dropCache(mfn, owner);
  }

  /**
   * A reference for `to` to the content of `from`'s slot (a fork copying a paged-out page): the
   * same slot when both use one area, else a copy stored in `to`'s area. Throws HypervisorError
   * (ENOSPC, EIO) naming `op`, changing nothing.
   */
  copySlot(op: string, from: DomId, to: DomId, slot: number): number {
    const src = this.areaOf(from);
    const dst = this.areaOf(to);
    if (src === dst) {
      src.addRef(asSwapSlot(slot), 1);
      return slot;
    }
    try {
      src.load(asSwapSlot(slot), this.scratch);
      return dst.store(this.scratch, this.host.memory.hashPage(this.scratch));
    } catch (e) {
      if (e instanceof HypervisorError) throw new HypervisorError(e.errnoName as 'EIO', op, `dom ${to}: copying slot ${slot} of dom ${from}: ${e.detail}`);
      throw e;
    }
  }

  /** `dom`'s paged entry holding `slot` is being dropped. */
  releaseSlot(dom: DomId, slot: number): void {
    this.areaOf(dom).addRef(asSwapSlot(slot), -1);
  }

  /** Swap figures over every area. */
  stats(): PagerStats {
    let swapOuts = 0;
    let swapIns = 0;
    let swapSlotsUsed = 0;
    let swapBytesWritten = 0;
    let slotsSavedByDedup = 0;
    let diskBytesUsed = 0;
    let diskBytesPeak = 0;
    let stored = 0;
    for (const area of this.allAreas) {
      const s = area.stats();
      swapOuts += s.swapOuts;
      swapIns += s.swapIns;
      swapSlotsUsed += s.swapSlotsUsed;
      swapBytesWritten += s.swapBytesWritten;
      slotsSavedByDedup += s.slotsSavedByDedup;
      diskBytesUsed += s.diskBytesUsed;
      diskBytesPeak += s.diskBytesPeak;
      stored += s.diskBytesUsed * s.compressionRatio;
    }
    return {
      swapOuts,
      swapIns,
      swapSlotsUsed,
      swapBytesWritten,
      slotsSavedByDedup,
      compressionRatio: diskBytesUsed === 0 ? 1 : Math.round((stored / diskBytesUsed) * 1000) / 1000,
      diskBytesUsed,
      diskBytesPeak,
      evictionFailures: this.evictionFailures,
      swapInFailures: this.swapInFailures,
      swapInsCached: this.swapInsCached,
      swapInsDeduped: this.swapInsDeduped,
    };
  }

  /**
   * Broken invariants of paging: every used slot is referenced exactly as often as paged
   * entries and swap-cache frames name it; cache slots sit on private frames only; the areas'
   * own audits.
   */
  audit(domains: readonly DomId[]): string[] {
    const problems: string[] = [];
    const { frames, p2m } = this.host;
    const refs = new Map<SwapBackend, Map<number, number>>();
    const count = (area: SwapBackend, slot: number): void => {
      let m = refs.get(area);
      if (m === undefined) refs.set(area, (m = new Map()));
      m.set(slot, (m.get(slot) ?? 0) + 1);
    };
    for (const dom of domains) {
      const t = p2m.table(dom)!;
      for (let g = 0; g < t.size; g++) {
        if (t.type(asGfn(g)) === P2mType.paged) count(this.areaOf(dom), t.mfn(asGfn(g)));
      }
    }
    const { memory } = this.host;
    for (let m = 0; m < this.cacheSlot.length; m++) {
      const slot = this.cacheSlot[m]!;
      if (slot < 0) continue;
      const mfn = asMfn(m);
      const owner = frames.owner(mfn);
      const shared = (frames.flags(mfn) & FrameFlags.shared) !== 0;
      const live = !frames.isFree(mfn) && (shared ? this.shared !== undefined && frames.refcount(mfn) > 0 : isRealDomId(owner) && domains.includes(owner));
      if (!live) {
        problems.push(`mfn ${m}: swap-cache slot ${slot} on a frame that is not a live ${this.shared === undefined ? 'private ' : ''}frame`);
        continue;
      }
      const area = this.areaOf(owner);
      count(area, slot);
      if (this.shared !== undefined && this.slotFrame.get(slot) !== mfn) problems.push(`mfn ${m}: caches slot ${slot}, which the swap cache gives to mfn ${this.slotFrame.get(slot)}`);
      // The frame and its slot hold one content (by the slot's checksum: no device read).
      if (area.refcount(asSwapSlot(slot)) > 0 && area.checksum !== undefined && area.checksum(asSwapSlot(slot)) >>> 0 !== memory.hashFrame(mfn) >>> 0) {
        problems.push(`mfn ${m}: its content differs from swap-cache slot ${slot}`);
      }
    }
    for (const [slot, mfn] of this.slotFrame) {
      if (this.cacheSlot[mfn] !== slot) problems.push(`swap cache: slot ${slot} names mfn ${mfn}, whose cached slot is ${this.cacheSlot[mfn]}`);
    }
    for (const area of new Set([...this.areas.values(), ...(this.shared ? [this.shared] : [])])) {
      const expected = refs.get(area) ?? new Map<number, number>();
      for (const [slot, n] of expected) {
        if (area.refcount(asSwapSlot(slot)) !== n) problems.push(`${area.name} slot ${slot}: refcount ${area.refcount(asSwapSlot(slot))}, referenced ${n} times`);
      }
      for (const slot of area.usedSlots()) {
        if (!expected.has(slot)) problems.push(`${area.name} slot ${slot}: used (refcount ${area.refcount(slot)}) but nothing references it`);
      }
      for (const msg of area.audit()) problems.push(`${area.name}: ${msg}`);
    }
    return problems;
  }

  private untrack(m: Mfn): void {
    this.tracked[m] = 0;
    this.policy.remove(m);
  }

  /** True when frame `m` holds a guest page that paging may write out. */
  private evictable(m: Mfn): boolean {
    const { frames, p2m, zeroMfn } = this.host;
    if (m === zeroMfn || frames.isFree(m)) return false;
    if ((frames.flags(m) & FrameFlags.shared) !== 0) return frames.owner(m) === DOMID_COW && frames.refcount(m) > 0;
    const owner = frames.owner(m);
    if (!isRealDomId(owner)) return false;
    const t = p2m.table(owner);
    const g = frames.gfn(m);
    return t !== undefined && t.type(g) === P2mType.ram_rw && t.mfn(g) === m;
  }

  /** Reads frame `m` and stores it in `area`; throws what the area throws (nothing changed). */
  private store(area: SwapBackend, m: Mfn): SwapSlot {
    const { memory } = this.host;
    memory.read(m, 0, this.scratch, 0, PAGE_SIZE);
    return area.store(this.scratch, memory.hashPage(this.scratch));
  }

  /**
   * The first phase of evicting frame `m`: its content written to swap, one slot for each of its
   * mappings, in rmap order (a private frame has one), nothing else changed. One shared area
   * stores a shared frame once, and a frame that still caches its slot (swapped in and not
   * written since) writes nothing. Throws what the area throws, having released what it stored.
   */
  private writeOut(m: Mfn): SwapSlot[] {
    const { frames, p2m } = this.host;
    const cached = this.cacheSlot[m]!;
    const shared = (frames.flags(m) & FrameFlags.shared) !== 0;
    if (!shared) return [cached >= 0 ? asSwapSlot(cached) : this.store(this.areaOf(frames.owner(m)), m)];
    const doms: DomId[] = [];
    p2m.rmap.forEach(m, (d) => doms.push(d));
    if (this.shared !== undefined) {
      const slot = cached >= 0 ? asSwapSlot(cached) : this.store(this.shared, m);
      return doms.map(() => slot);
    }
    const slots: SwapSlot[] = [];
    try {
      for (const d of doms) slots.push(this.store(this.areaOf(d), m));
    } catch (e) {
      slots.forEach((slot, i) => this.areaOf(doms[i]!).addRef(slot, -1));
      throw e;
    }
    return slots;
  }

  /** Undoes {@link writeOut}: the slots it stored are released (a cached slot was only borrowed). */
  private unwrite(m: Mfn, slots: readonly SwapSlot[]): void {
    if (this.cacheSlot[m]! >= 0) return;
    const { frames, p2m } = this.host;
    if ((frames.flags(m) & FrameFlags.shared) === 0) {
      this.areaOf(frames.owner(m)).addRef(slots[0]!, -1);
    } else if (this.shared !== undefined) {
      this.shared.addRef(slots[0]!, -1);
    } else {
      let i = 0;
      p2m.rmap.forEach(m, (d) => this.areaOf(d).addRef(slots[i++]!, -1));
    }
  }

  /**
   * The second phase: every mapping of `m` becomes a `paged` entry holding its slot from
   * {@link writeOut} (the frame's swap-cache reference, if any, passing to the first), and the
   * frame is freed.
   */
  private commit(m: Mfn, slots: readonly SwapSlot[]): void {
    const { frames, p2m, dedup } = this.host;
    const cached = this.cacheSlot[m]!;
    if (cached >= 0) {
      this.cacheSlot[m] = -1;
      if (this.shared !== undefined) this.slotFrame.delete(cached);
    }
    if ((frames.flags(m) & FrameFlags.shared) === 0) {
      p2m.table(frames.owner(m))!.set(frames.gfn(m), asMfn(slots[0]!), P2mType.paged);
    } else {
      const doms: DomId[] = [];
      const gfns: Gfn[] = [];
      p2m.rmap.forEach(m, (d, g) => {
        doms.push(d);
        gfns.push(g);
      });
      // One shared area: one slot for every sharer, stored once (its reference is the first's).
      if (this.shared !== undefined) this.shared.addRef(slots[0]!, doms.length - 1);
      for (let i = 0; i < doms.length; i++) {
        p2m.rmap.remove(m, doms[i]!, gfns[i]!);
        frames.addRef(m, -1);
        p2m.table(doms[i]!)!.set(gfns[i]!, asMfn(slots[i]!), P2mType.paged);
      }
    }
    dedup.remove(m);
    this.host.frameGone(m);
    frames.freeFrame(m);
  }
}
