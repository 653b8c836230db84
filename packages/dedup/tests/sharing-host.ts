import { ArrayFrameTable, BuddyAllocator } from '@pagevisor/frame-allocator';
import { createMachineMemory } from '@pagevisor/machine';
import {
  asDomId,
  asGfn,
  DEFAULT_COST_MODEL,
  DOMID_COW,
  DOMID_XEN,
  FrameFlags,
  INVALID_GFN,
  INVALID_MFN,
  isRealDomId,
  P2mType,
  PAGE_SIZE,
  type DedupHost,
  type DedupIndex,
  type DomId,
  type Gfn,
  type Mfn,
} from '@pagevisor/types';
import { FakeP2m } from './fake-host.js';

/** One call a strategy made to `host.merge`, with what the host answered. */
export interface MergeCall {
  readonly dom: DomId;
  readonly gfn: Gfn;
  readonly target: Mfn;
  /** Group of `dom`. */
  readonly group: number;
  /** Groups of the domains mapping `target` when it was asked (empty for the zero frame). */
  readonly targetGroups: readonly number[];
  readonly merged: boolean;
}

/**
 * A small hypervisor for dedup tests: real machine memory and frame table, a {@link FakeP2m},
 * domains in trust groups, and the sharing the hypervisor does (`merge`, `unmerge`, whole-page
 * writes through an inline strategy, copy-on-write), keeping the frame invariants of the common
 * brief. Like the real host it refuses a merge that would join two trust groups; unlike it, it
 * records every merge asked for, so a test can check that a strategy never even asked.
 */
export class SharingHost {
  readonly p2m = new FakeP2m();
  /** Every merge a strategy asked for, in order. */
  readonly merges: MergeCall[] = [];
  /** Inline lookups that returned a frame mapped by another group (the write then shares it). */
  readonly crossGroupHits: Array<{ dom: DomId; mfn: Mfn }> = [];
  /** Simulated CPU the strategy charged. */
  cpuNs = 0;
  /** The strategy: its `remove` is called as the hypervisor calls it. */
  dedup: DedupIndex | undefined;
  readonly host: DedupHost;
  private readonly groups = new Map<number, number>();

  private constructor(
    readonly memory: Awaited<ReturnType<typeof createMachineMemory>>,
    readonly frames: ArrayFrameTable,
    readonly zeroMfn: Mfn,
  ) {
    this.host = {
      memory,
      frames,
      p2m: this.p2m,
      zeroMfn,
      costModel: DEFAULT_COST_MODEL,
      numaNodes: 1,
      nodeOf: () => 0,
      merge: (dom, gfn, target) => this.merge(dom, gfn, target),
      unmerge: (dom, gfn) => this.unmerge(dom, gfn),
      chargeCpu: (ns) => {
        this.cpuNs += ns;
      },
      groupOf: (dom) => this.groups.get(dom) ?? 0,
    };
  }

  /** A host of `frames` machine frames, its zero frame allocated as the hypervisor does. */
  static async create(frames: number): Promise<SharingHost> {
    const memory = await createMachineMemory({ frames });
    const table = new ArrayFrameTable(new BuddyAllocator(frames));
    const zero = table.allocFrame(DOMID_XEN, INVALID_GFN);
    memory.zeroFrame(zero);
    table.setFlags(zero, FrameFlags.shared | FrameFlags.zero);
    table.addRef(zero, -1);
    return new SharingHost(memory, table, zero);
  }

  /** Attaches `dedup` to this host and remembers it. */
  attach(dedup: DedupIndex): void {
    this.dedup = dedup;
    dedup.attach(this.host);
  }

  /** Creates domain `dom` of `size` guest frames in trust group `group`. */
  addDomain(dom: number, size: number, group: number): DomId {
    const d = asDomId(dom);
    this.frames.addDomain(d, size);
    this.p2m.createTable(d, size);
    this.groups.set(dom, group);
    return d;
  }

  /** Group of `dom`. */
  groupOf(dom: DomId): number {
    return this.host.groupOf(dom);
  }

  /** Gives `dom`'s `gfn` a private frame holding `page` (the strategy is not asked). */
  populate(dom: DomId, gfn: number, page: Uint8Array): Mfn {
    const table = this.table(dom);
    if (table.type(asGfn(gfn)) !== P2mType.invalid) throw new Error(`sharing host: dom ${dom} gfn ${gfn} populated already`);
    const mfn = this.frames.allocFrame(dom, asGfn(gfn));
    if (mfn === INVALID_MFN) throw new Error('sharing host: out of frames');
    this.memory.write(mfn, 0, page, 0, PAGE_SIZE);
    table.set(asGfn(gfn), mfn, P2mType.ram_rw);
    return mfn;
  }

  /** Maps every page of `parent` into the empty `child`, shared, and tells the strategy (sharing_fork). */
  fork(child: DomId, parent: DomId): void {
    const from = this.table(parent);
    for (let g = 0; g < from.size; g++) {
      const t = from.type(asGfn(g));
      if (t !== P2mType.ram_rw && t !== P2mType.ram_shared) continue;
      const mfn = from.mfn(asGfn(g));
      this.makeShared(mfn);
      this.mapShared(child, asGfn(g), mfn);
    }
    this.dedup?.domainForked?.(parent, child);
  }

  /** Maps `dom`'s `gfn` to the zero frame, as populate does under a `populateZero` strategy. */
  populateZero(dom: DomId, gfn: number): void {
    this.mapShared(dom, asGfn(gfn), this.zeroMfn);
  }

  /**
   * A guest writes `page` over all of `dom`'s `gfn`, as the hypervisor does: through
   * `lookup` / `insert` when the strategy is inline, else by copy-on-write and an overwrite.
   */
  writePage(dom: DomId, gfn: number, page: Uint8Array): void {
    const g = asGfn(gfn);
    const dedup = this.dedup!;
    const table = this.table(dom);
    if (dedup.inline) {
      const hash = this.memory.hashPage(page);
      const match = dedup.lookup(page, hash, dom);
      if (match !== INVALID_MFN) {
        if (match === table.mfn(g)) return;
        if (match !== this.zeroMfn && this.mapperGroups(match).some((grp) => grp !== this.groupOf(dom))) {
          this.crossGroupHits.push({ dom, mfn: match });
        }
        this.makeShared(match);
        this.dropMapping(dom, g);
        this.mapShared(dom, g, match);
        return;
      }
      const mfn = this.writable(dom, g);
      this.memory.write(mfn, 0, page, 0, PAGE_SIZE);
      dedup.insert(mfn, hash, 'miss');
      return;
    }
    const mfn = this.writable(dom, g);
    this.memory.write(mfn, 0, page, 0, PAGE_SIZE);
  }

  /** The guest gives `dom`'s `gfn` back (decrease_reservation): its mapping goes, and its frame with the last one. */
  release(dom: DomId, gfn: number): void {
    this.dropMapping(dom, asGfn(gfn));
  }

  /** Groups of the domains that map `mfn` now (its owner's for a private frame), sorted, once each. */
  mapperGroups(mfn: Mfn): number[] {
    const groups = new Set<number>();
    const owner = this.frames.owner(mfn);
    if (isRealDomId(owner)) groups.add(this.groupOf(owner));
    this.p2m.rmap.forEach(mfn, (d) => groups.add(this.groupOf(d)));
    return [...groups].sort((a, b) => a - b);
  }

  /** The frame `dom`'s `gfn` maps. */
  mfnOf(dom: DomId, gfn: number): Mfn {
    return this.table(dom).mfn(asGfn(gfn));
  }

  /** Shared frames other than the zero frame mapped by domains of more than one group. */
  crossGroupFrames(): Mfn[] {
    return [...this.p2m.rmap.frames()].filter((m) => m !== this.zeroMfn && this.mapperGroups(m).length > 1);
  }

  /** Merges asked for that would have joined two groups (whether the host refused them or not). */
  crossGroupMerges(): MergeCall[] {
    return this.merges.filter((c) => c.targetGroups.some((g) => g !== c.group));
  }

  /**
   * Broken frame invariants of the common brief, in words: free, private, shared and zero frames
   * against the p2m and the reverse map.
   */
  audit(): string[] {
    const problems: string[] = [];
    const { frames, p2m } = this;
    for (let m = 0; m < frames.totalFrames; m++) {
      const mfn = m as Mfn;
      if (frames.isFree(mfn)) continue;
      const owner = frames.owner(mfn);
      const flags = frames.flags(mfn);
      const refs = frames.refcount(mfn);
      if ((flags & FrameFlags.shared) !== 0) {
        if (refs !== p2m.rmap.count(mfn)) problems.push(`mfn ${m}: refcount ${refs}, ${p2m.rmap.count(mfn)} mappings`);
        if (mfn !== this.zeroMfn && (owner !== DOMID_COW || refs < 1)) problems.push(`mfn ${m}: shared, owner ${owner}, refcount ${refs}`);
        p2m.rmap.forEach(mfn, (d, g) => {
          const t = p2m.table(d);
          if (t?.type(g) !== P2mType.ram_shared || t.mfn(g) !== mfn) problems.push(`mfn ${m}: rmap names dom ${d} gfn ${g}, which does not map it`);
        });
      } else {
        const t = p2m.table(owner);
        const g = frames.gfn(mfn);
        if (refs !== 1 || t?.type(g) !== P2mType.ram_rw || t.mfn(g) !== mfn) problems.push(`mfn ${m}: private to dom ${owner} gfn ${g} but not mapped so`);
        if (p2m.rmap.count(mfn) !== 0) problems.push(`mfn ${m}: private but in the reverse map`);
      }
    }
    if (!this.memory.isZeroFrame(this.zeroMfn)) problems.push('the zero frame was written');
    return problems;
  }

  private table(dom: DomId) {
    const t = this.p2m.table(dom);
    if (t === undefined) throw new Error(`sharing host: no dom ${dom}`);
    return t;
  }

  private merge(dom: DomId, gfn: Gfn, target: Mfn): boolean {
    const t = this.p2m.table(dom);
    const targetGroups = target === this.zeroMfn || target < 0 || target >= this.frames.totalFrames || this.frames.isFree(target) ? [] : this.mapperGroups(target);
    const group = this.groupOf(dom);
    const merged = this.tryMerge(dom, gfn, target, targetGroups, group, t);
    this.merges.push({ dom, gfn, target, group, targetGroups, merged });
    return merged;
  }

  private tryMerge(dom: DomId, gfn: Gfn, target: Mfn, targetGroups: number[], group: number, t: ReturnType<FakeP2m['table']>): boolean {
    if (t === undefined || gfn < 0 || gfn >= t.size) return false;
    const type = t.type(gfn);
    const cur = t.mfn(gfn);
    if ((type !== P2mType.ram_rw && type !== P2mType.ram_shared) || cur === target) return false;
    if (target < 0 || target >= this.frames.totalFrames || this.frames.isFree(target)) return false;
    // As the real host: a merge that would join two trust groups is refused.
    if (targetGroups.some((g) => g !== group)) return false;
    if (!this.memory.framesEqual(cur, target)) return false;
    this.makeShared(target);
    this.dropMapping(dom, gfn);
    this.mapShared(dom, gfn, target);
    return true;
  }

  private unmerge(dom: DomId, gfn: Gfn): boolean {
    const t = this.p2m.table(dom);
    if (t === undefined || t.type(gfn) !== P2mType.ram_shared) return true;
    return this.unshare(dom, gfn, false) !== INVALID_MFN;
  }

  /** A writable private frame for `dom`'s `gfn` (copy-on-write); the index forgets it first. */
  private writable(dom: DomId, gfn: Gfn): Mfn {
    const t = this.table(dom);
    const type = t.type(gfn);
    if (type === P2mType.ram_shared) {
      const mfn = this.unshare(dom, gfn, true);
      if (mfn === INVALID_MFN) throw new Error('sharing host: out of frames');
      return mfn;
    }
    if (type !== P2mType.ram_rw) throw new Error(`sharing host: dom ${dom} gfn ${gfn} has no frame`);
    const mfn = t.mfn(gfn);
    this.dedup?.remove(mfn);
    return mfn;
  }

  /** Copy-on-write of a shared entry (the CowHandler's three outcomes); INVALID_MFN when no frame is free. */
  private unshare(dom: DomId, gfn: Gfn, willOverwrite: boolean): Mfn {
    const t = this.table(dom);
    const mfn = t.mfn(gfn);
    const refs = this.frames.refcount(mfn);
    if (mfn !== this.zeroMfn && refs === 1) {
      this.dedup?.remove(mfn);
      this.p2m.rmap.remove(mfn, dom, gfn);
      this.frames.setFlags(mfn, this.frames.flags(mfn) & ~FrameFlags.shared);
      this.frames.setOwner(mfn, dom, gfn);
      t.set(gfn, mfn, P2mType.ram_rw);
      return mfn;
    }
    const fresh = this.frames.allocFrame(dom, gfn);
    if (fresh === INVALID_MFN) return INVALID_MFN;
    // As the hypervisor: a page leaving the zero frame is told to the strategy (KSM's ksm_zero_pages).
    if (mfn === this.zeroMfn) this.dedup?.zeroPageUnmapped?.(dom, gfn);
    if (!willOverwrite) this.memory.copyFrame(fresh, mfn);
    this.p2m.rmap.remove(mfn, dom, gfn);
    this.frames.addRef(mfn, -1);
    t.set(gfn, fresh, P2mType.ram_rw);
    return fresh;
  }

  private makeShared(mfn: Mfn): void {
    const flags = this.frames.flags(mfn);
    if ((flags & FrameFlags.shared) !== 0) return;
    const owner = this.frames.owner(mfn);
    const gfn = this.frames.gfn(mfn);
    this.table(owner).set(gfn, mfn, P2mType.ram_shared);
    this.p2m.rmap.add(mfn, owner, gfn);
    this.frames.setOwner(mfn, DOMID_COW, INVALID_GFN);
    this.frames.setFlags(mfn, flags | FrameFlags.shared);
    const dedup = this.dedup;
    if (dedup?.inline === true && !dedup.contains(mfn)) dedup.insert(mfn, this.memory.hashFrame(mfn), 'shared');
  }

  private mapShared(dom: DomId, gfn: Gfn, mfn: Mfn): void {
    this.p2m.rmap.add(mfn, dom, gfn);
    this.frames.addRef(mfn, 1);
    this.table(dom).set(gfn, mfn, P2mType.ram_shared);
  }

  private dropMapping(dom: DomId, gfn: Gfn): void {
    const t = this.table(dom);
    const type = t.type(gfn);
    const mfn = t.mfn(gfn);
    if (type === P2mType.ram_rw) {
      this.dedup?.remove(mfn);
      this.frames.freeFrame(mfn);
    } else if (type === P2mType.ram_shared) {
      if (mfn === this.zeroMfn) this.dedup?.zeroPageUnmapped?.(dom, gfn);
      this.p2m.rmap.remove(mfn, dom, gfn);
      if (this.frames.addRef(mfn, -1) === 0 && mfn !== this.zeroMfn) {
        this.dedup?.remove(mfn);
        this.frames.freeFrame(mfn);
      }
    }
    t.clear(gfn);
  }
}
