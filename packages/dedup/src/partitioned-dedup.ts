import {
  FrameFlags,
  HypervisorError,
  invariant,
  InvariantError,
  isRealDomId,
  type CostModel,
  type DedupHost,
  type DedupIndex,
  type DomId,
  type FrameTable,
  type Gfn,
  type InsertReason,
  type MachineMemory,
  type Mfn,
  type P2m,
  type P2mTable,
  type ReverseMap,
  type AuditDepth,
} from '@pagevisor/types';

/** Largest trust group a {@link PartitionedDedup} accepts (groups are 0 .. MAX_TRUST_GROUP). */
export const MAX_TRUST_GROUP = 0xffff;

/**
 * An optional method of a strategy that {@link PartitionedDedup} uses when its inner strategies
 * have it: the frames `setKnob(name, value)` would allocate now (KSM's `run` = 2 unmerges). The
 * composite refuses with ENOMEM, before any group changes, when all groups together need more
 * frames than are free. `KsmDedup` implements it.
 */
export interface KnobFrames {
  /** Frames `setKnob(name, value)` would allocate now; 0 when it allocates none. */
  framesForKnob(name: string, value: number | string): number;
}

/** One trust group and its strategy. */
interface Group {
  readonly id: number;
  readonly index: DedupIndex;
}

/**
 * The p2m as a group's strategy sees it: only the tables of the group's domains (a scanner walks
 * `domains()` and `table(dom)` to find pages, so it never meets another group's). The reverse
 * map is the host's: a frame of the group is mapped by the group's domains only (checked by the
 * composite's audit), the zero frame by every group's. Read only: creating or destroying a table
 * through it is an InvariantError.
 */
class GroupP2m implements P2m {
  constructor(
    private readonly p2m: P2m,
    private readonly host: DedupHost,
    private readonly group: number,
  ) {}

  get rmap(): ReverseMap {
    return this.p2m.rmap;
  }

  table(dom: DomId): P2mTable | undefined {
    return this.host.groupOf(dom) === this.group ? this.p2m.table(dom) : undefined;
  }

  *domains(): Iterable<DomId> {
    for (const dom of this.p2m.domains()) if (this.host.groupOf(dom) === this.group) yield dom;
  }

  createTable(dom: DomId): P2mTable {
    throw new InvariantError(`partitioned dedup: group ${this.group}'s strategy tried to create a p2m table for dom ${dom}; the p2m is read only`);
  }

  destroyTable(dom: DomId): void {
    throw new InvariantError(`partitioned dedup: group ${this.group}'s strategy tried to destroy dom ${dom}'s p2m table; the p2m is read only`);
  }
}

/**
 * The DedupHost a group's strategy is attached with: the real host, but for a p2m that shows the
 * group's domains only ({@link GroupP2m}), and `merge` / `unmerge` that refuse, as a bug
 * (InvariantError), a domain of another group.
 */
class GroupHost implements DedupHost {
  readonly memory: MachineMemory;
  readonly frames: FrameTable;
  readonly p2m: GroupP2m;
  readonly zeroMfn: Mfn;
  readonly costModel: CostModel;
  readonly numaNodes: number;

  constructor(
    private readonly host: DedupHost,
    readonly group: number,
  ) {
    this.memory = host.memory;
    this.frames = host.frames;
    this.p2m = new GroupP2m(host.p2m, host, group);
    this.zeroMfn = host.zeroMfn;
    this.costModel = host.costModel;
    this.numaNodes = host.numaNodes;
  }

  nodeOf(mfn: Mfn): number {
    return this.host.nodeOf(mfn);
  }

  merge(dom: DomId, gfn: Gfn, target: Mfn): boolean {
    this.checkDom('merge', dom);
    return this.host.merge(dom, gfn, target);
  }

  unmerge(dom: DomId, gfn: Gfn): boolean {
    this.checkDom('unmerge', dom);
    return this.host.unmerge(dom, gfn);
  }

  chargeCpu(ns: number): void {
    this.host.chargeCpu(ns);
  }

  groupOf(dom: DomId): number {
    return this.host.groupOf(dom);
  }

  private checkDom(op: string, dom: DomId): void {
    const g = this.host.groupOf(dom);
    if (g !== this.group) {
      throw new InvariantError(`partitioned dedup: group ${this.group}'s strategy asked to ${op} a page of dom ${dom}, which is in group ${g}`);
    }
  }
}

/**
 * ESX's "salting" made exact for any strategy: one inner strategy per trust group, so that pages
 * of different groups are never even compared, let alone merged (the zero frame aside, which
 * every group shares). Each inner strategy is made by `makeIndex(group)` on the group's first
 * need and attached with a view of the host in which the p2m holds only the group's domains;
 * everything else (memory, frames, merge, unmerge, CPU, zero frame) is the host's.
 *
 * Routing: `lookup(page, hash, dom)`, `advise`, `setDomainMergeable`, `isMergeable`,
 * `domainStats`, `domainForked`, `domainDestroyed`, `zeroPageUnmapped` go to the group of `dom`; `insert(mfn, hash, reason)` to the group of the
 * frame (its owner's for a private frame, its mappers' for a shared one; the zero frame to every
 * group); `remove` and `contains` ask every group (few groups: O(groups) per call, each O(1) for
 * the strategies of this package). Scanners: `nextWakeNs` is the earliest of the groups', and
 * `wake(now)` wakes every group that is due, so each group scans at the full rate of its knobs
 * (two groups of KSM are two ksmds). Knobs are set on every group (and on groups made later);
 * a refusal changes nothing in any group. Counters, sizes and metadata are sums over the groups,
 * plus `groups` (inner strategies made): note that each inline group indexes the zero frame, so
 * `size` counts it once per group.
 *
 * The optional hooks are there exactly when `makeIndex(0)`'s strategy has them: all groups hold
 * strategies of one kind (same name, `inline`, `populateZero` and hooks; checked as each group
 * is made).
 */
export class PartitionedDedup implements DedupIndex {
  /** Name of the inner strategy, with `+groups`: e.g. `ksm+groups`. */
  readonly name: string;
  /** The inner strategy's. */
  readonly inline: boolean;
  /** The inner strategy's. */
  readonly populateZero: boolean;

  /** Scanners: the earliest wake-up over the groups (Infinity when none has work). */
  readonly nextWakeNs?: () => number;
  /** Scanners: wakes every group whose wake-up is due at `nowNs`. */
  readonly wake?: (nowNs: number) => void;
  /** MADV_MERGEABLE / MADV_UNMERGEABLE, by `dom`'s group. */
  readonly advise?: (dom: DomId, start: Gfn, count: number, mergeable: boolean) => void;
  /** PR_SET_MEMORY_MERGE, by `dom`'s group. */
  readonly setDomainMergeable?: (dom: DomId, on: boolean) => void;
  /** Whether `dom`'s `gfn` is a merge candidate, by `dom`'s group. */
  readonly isMergeable?: (dom: DomId, gfn: Gfn) => boolean;
  /**
   * `child` has just become a fork of `parent`: told to their group (the host lets only domains
   * of one group fork; two groups is an InvariantError).
   */
  readonly domainForked?: (parent: DomId, child: DomId) => void;
  /** `dom` is about to be destroyed: its group forgets it (nothing when the group has no strategy yet). */
  readonly domainDestroyed?: (dom: DomId) => void;
  /** `dom`'s page `gfn` stops mapping the zero frame: told to `dom`'s group (nothing when it has no strategy yet). */
  readonly zeroPageUnmapped?: (dom: DomId, gfn: Gfn) => void;
  /**
   * Sets a tunable on every group, and remembers it for groups made later. Refused (the inner
   * strategy's EINVAL or EBUSY, or ENOMEM when the groups together need more frames than are
   * free, see {@link KnobFrames}): no group changes.
   */
  readonly setKnob?: (name: string, value: number | string) => void;
  /** The tunables, as set on every group (group 0's values). */
  readonly knobs?: () => Readonly<Record<string, number>>;
  /** Per-domain counters, by `dom`'s group. */
  readonly domainStats?: (dom: DomId) => Readonly<Record<string, number>>;

  private readonly makeIndex: (group: number) => DedupIndex;
  private host: DedupHost | undefined;
  /** Groups by number (sparse). */
  private readonly byGroup: (Group | undefined)[] = [];
  /** The same groups, in the order they were made (group 0 first). */
  private readonly list: Group[] = [];
  /** Knobs set through the composite, in the order set, with their last values. */
  private readonly knobLog = new Map<string, number | string>();
  /** Which optional hooks the inner strategy has. */
  private readonly hooks: string;
  /** Scratch of {@link groupOfShared}: the first mapper's group and another one, if any. */
  private probeGroup = -1;
  private probeOther = -1;
  private readonly noteMapper = (dom: DomId): void => {
    const g = this.host!.groupOf(dom);
    if (this.probeGroup < 0) this.probeGroup = g;
    else if (g !== this.probeGroup) this.probeOther = g;
  };

  /**
   * @param makeIndex makes the strategy of one trust group; called once for group 0 at once
   *   (its name, `inline` and `populateZero` are the composite's), then once per other group on
   *   its first need. Every call must return a new, unattached strategy of one kind.
   */
  constructor(makeIndex: (group: number) => DedupIndex) {
    this.makeIndex = makeIndex;
    const first = makeIndex(0);
    this.name = `${first.name}+groups`;
    this.inline = first.inline;
    this.populateZero = first.populateZero;
    this.hooks = hooksOf(first);
    this.addGroupWith(0, first);

    if (first.nextWakeNs !== undefined) {
      this.nextWakeNs = () => {
        let t = Infinity;
        for (const g of this.list) {
          const n = g.index.nextWakeNs!();
          if (n < t) t = n;
        }
        return t;
      };
    }
    if (first.wake !== undefined) {
      this.wake = (nowNs) => {
        for (const g of this.list) {
          const idx = g.index;
          if (idx.nextWakeNs === undefined || idx.nextWakeNs() <= nowNs) idx.wake!(nowNs);
        }
      };
    }
    if (first.advise !== undefined) {
      this.advise = (dom, start, count, mergeable) => this.groupOfDom('advise', dom).index.advise!(dom, start, count, mergeable);
    }
    if (first.setDomainMergeable !== undefined) {
      this.setDomainMergeable = (dom, on) => this.groupOfDom('set_domain_mergeable', dom).index.setDomainMergeable!(dom, on);
    }
    if (first.isMergeable !== undefined) {
      this.isMergeable = (dom, gfn) => this.groupOfDom('is_mergeable', dom).index.isMergeable!(dom, gfn);
    }
    if (first.domainForked !== undefined) {
      this.domainForked = (parent, child) => {
        const host = this.attached('domain_forked');
        const [gp, gc] = [host.groupOf(parent), host.groupOf(child)];
        if (gp !== gc) throw new InvariantError(`${this.name}: dom ${child} (group ${gc}) forked from dom ${parent} (group ${gp}): forks share frames, so must not cross trust groups`);
        this.groupOfDom('domain_forked', child).index.domainForked!(parent, child);
      };
    }
    if (first.domainDestroyed !== undefined) {
      this.domainDestroyed = (dom) => {
        const host = this.attached('domain_destroyed');
        this.byGroup[host.groupOf(dom)]?.index.domainDestroyed!(dom);
      };
    }
    if (first.zeroPageUnmapped !== undefined) {
      this.zeroPageUnmapped = (dom, gfn) => {
        const host = this.attached('zero_page_unmapped');
        this.byGroup[host.groupOf(dom)]?.index.zeroPageUnmapped!(dom, gfn);
      };
    }
    if (first.setKnob !== undefined) this.setKnob = (name, value) => this.setKnobAll(name, value);
    if (first.knobs !== undefined) this.knobs = () => this.list[0]!.index.knobs!();
    if (first.domainStats !== undefined) {
      this.domainStats = (dom) => this.groupOfDom('domain_stats', dom).index.domainStats!(dom);
    }
  }

  /** Trust groups that have a strategy, in the order they were made (group 0 first). */
  get groups(): readonly number[] {
    return this.list.map((g) => g.id);
  }

  /** The strategy of trust group `group`, or undefined when the group has not needed one yet. */
  inner(group: number): DedupIndex | undefined {
    return this.byGroup[group]?.index;
  }

  /** Frames indexed, summed over the groups. */
  get size(): number {
    let n = 0;
    for (const g of this.list) n += g.index.size;
    return n;
  }

  /** Attaches every group made so far, each with its view of `host`. Called once. */
  attach(host: DedupHost): void {
    invariant(this.host === undefined, `${this.name}: attach called twice`);
    this.host = host;
    for (const g of this.list) g.index.attach(new GroupHost(host, g.id));
  }

  /** The lookup of `dom`'s group: a frame of that group (or the zero frame) equal to `page`. */
  lookup(page: Uint8Array, hash: number, dom: DomId): Mfn {
    const host = this.host;
    if (host === undefined) throw new InvariantError(`${this.name}: lookup before attach`);
    const group = host.groupOf(dom);
    return (this.byGroup[group] ?? this.addGroup(group)).index.lookup(page, hash, dom);
  }

  /**
   * Offers `mfn` to the strategy of the group of the domains that map it, with the same `reason`:
   * its owner's for a private frame, its mappers' (the reverse map) for a shared one; the zero
   * frame to every group that lacks it. The group's strategy decides whether to index it (the
   * composite indexes nothing itself, so it is as selective as its inner strategy). A frame with
   * no domain to tell its group (free, or shared with no mapping), or a shared frame mapped by
   * domains of two groups (which the host must never allow), is an InvariantError.
   */
  insert(mfn: Mfn, hash: number, reason: InsertReason): void {
    const host = this.attached('insert');
    if (mfn === host.zeroMfn) {
      for (const g of this.list) if (!g.index.contains(mfn)) g.index.insert(mfn, hash, reason);
      return;
    }
    const owner = host.frames.owner(mfn);
    const group = isRealDomId(owner) ? host.groupOf(owner) : this.groupOfShared(host, mfn);
    (this.byGroup[group] ?? this.addGroup(group)).index.insert(mfn, hash, reason);
  }

  /** Drops `mfn` from whichever group indexes it (every group is told: none may hold it after). */
  remove(mfn: Mfn): void {
    const list = this.list;
    for (let i = 0; i < list.length; i++) list[i]!.index.remove(mfn);
  }

  /** True when some group indexes `mfn`. */
  contains(mfn: Mfn): boolean {
    const list = this.list;
    for (let i = 0; i < list.length; i++) if (list[i]!.index.contains(mfn)) return true;
    return false;
  }

  /** Metadata of every group's strategy. */
  metadataBytes(): number {
    let n = 0;
    for (const g of this.list) n += g.index.metadataBytes();
    return n;
  }

  /** Every counter summed over the groups, plus `groups`: the strategies made. */
  stats(): Readonly<Record<string, number>> {
    const sum: Record<string, number> = {};
    for (const g of this.list) {
      for (const [k, v] of Object.entries(g.index.stats())) sum[k] = (sum[k] ?? 0) + v;
    }
    sum['groups'] = this.list.length;
    return sum;
  }

  /**
   * Every group's audit, each problem prefixed with `group N: ` (an InlineDedup group checks that
   * every shared frame of its group is indexed; the composite, which indexes nothing itself,
   * requires no frame to be); then the composite's own: every
   * frame other than the zero frame indexed by one group at most, and only by the group of the
   * domains that map it; no frame other than the zero frame mapped by two groups; every group's
   * knobs at the values set through the composite.
   */
  audit(depth?: AuditDepth): string[] {
    const problems: string[] = [];
    for (const g of this.list) for (const p of g.index.audit(depth)) problems.push(`group ${g.id}: ${p}`);
    const host = this.host;
    if (host === undefined) return problems;
    const report = (msg: string): void => {
      if (problems.length < 100) problems.push(`${this.name}: ${msg}`);
    };
    const { frames, zeroMfn } = host;
    const holders: number[] = [];
    for (let m = 0; m < frames.totalFrames; m++) {
      const mfn = m as Mfn;
      if (mfn === zeroMfn || frames.isFree(mfn)) continue;
      holders.length = 0;
      for (const g of this.list) if (g.index.contains(mfn)) holders.push(g.id);
      if (holders.length === 0) continue;
      if (holders.length > 1) report(`mfn ${m} is indexed by groups ${holders.join(', ')}`);
      const mappers = this.mapperGroups(host, mfn);
      const foreign = mappers.filter((g) => g !== holders[0]);
      if (foreign.length > 0) report(`mfn ${m} is indexed by group ${holders[0]} but mapped by group ${foreign.join(', ')}`);
    }
    for (const mfn of host.p2m.rmap.frames()) {
      if (mfn === zeroMfn) continue;
      const mappers = this.mapperGroups(host, mfn);
      if (mappers.length > 1) report(`mfn ${mfn} is shared by groups ${mappers.join(', ')}`);
    }
    for (const g of this.list) {
      const knobs = g.index.knobs?.() ?? {};
      for (const [name, value] of this.knobLog) {
        if (knobs[name] !== value) report(`group ${g.id}: knob ${name} is ${knobs[name]}, set to ${value}`);
      }
    }
    return problems;
  }

  // ---- internals -------------------------------------------------------------------------------

  private attached(op: string): DedupHost {
    const host = this.host;
    if (host === undefined) throw new InvariantError(`${this.name}: ${op} before attach`);
    return host;
  }

  /** The group of `dom`, its strategy made on first need. */
  private groupOfDom(op: string, dom: DomId): Group {
    const group = this.attached(op).groupOf(dom);
    return this.byGroup[group] ?? this.addGroup(group);
  }

  /** Makes the strategy of `group` and attaches it (when the composite is attached). */
  private addGroup(group: number): Group {
    if (!(Number.isInteger(group) && group >= 0 && group <= MAX_TRUST_GROUP)) {
      throw new InvariantError(`${this.name}: trust group ${group} is not an integer in [0, ${MAX_TRUST_GROUP}]`);
    }
    return this.addGroupWith(group, this.makeIndex(group));
  }

  private addGroupWith(group: number, index: DedupIndex): Group {
    invariant(this.byGroup[group] === undefined, `${this.name}: group ${group} made twice`);
    const kind = `${index.name}+groups inline=${index.inline} populateZero=${index.populateZero} hooks=${hooksOf(index)}`;
    const want = `${this.name} inline=${this.inline} populateZero=${this.populateZero} hooks=${this.hooks}`;
    if (kind !== want) throw new InvariantError(`${this.name}: makeIndex(${group}) made a strategy of another kind (${kind}; want ${want})`);
    // Knobs set before the group existed: a fresh strategy takes any valid value.
    for (const [name, value] of this.knobLog) index.setKnob!(name, value);
    if (this.host !== undefined) index.attach(new GroupHost(this.host, group));
    const g: Group = { id: group, index };
    this.byGroup[group] = g;
    this.list.push(g);
    return g;
  }

  /** Group of the mappers of shared frame `mfn` (see {@link insert}). */
  private groupOfShared(host: DedupHost, mfn: Mfn): number {
    if ((host.frames.flags(mfn) & FrameFlags.shared) === 0) {
      throw new InvariantError(`${this.name}: insert of mfn ${mfn}, owned by ${host.frames.owner(mfn)}: neither a domain's nor shared, so it has no trust group`);
    }
    this.probeGroup = -1;
    this.probeOther = -1;
    host.p2m.rmap.forEach(mfn, this.noteMapper);
    if (this.probeGroup < 0) throw new InvariantError(`${this.name}: insert of shared mfn ${mfn}, which no domain maps: it has no trust group`);
    if (this.probeOther >= 0) {
      throw new InvariantError(`${this.name}: insert of mfn ${mfn}, shared by groups ${this.probeGroup} and ${this.probeOther}: frames must not be shared across trust groups`);
    }
    return this.probeGroup;
  }

  /** Groups of the domains mapping `mfn` (its owner's, or its mappers'), sorted, once each. */
  private mapperGroups(host: DedupHost, mfn: Mfn): number[] {
    const groups = new Set<number>();
    const owner = host.frames.owner(mfn);
    if (isRealDomId(owner)) groups.add(host.groupOf(owner));
    else host.p2m.rmap.forEach(mfn, (dom) => groups.add(host.groupOf(dom)));
    return [...groups].sort((a, b) => a - b);
  }

  private setKnobAll(name: string, value: number | string): void {
    const list = this.list;
    const host = this.host;
    if (host !== undefined) {
      let frames = 0;
      for (const g of list) frames += (g.index as Partial<KnobFrames>).framesForKnob?.(name, value) ?? 0;
      const free = host.frames.freeFrames;
      if (frames > free && !(host.ensureFree?.(frames) ?? false)) {
        throw new HypervisorError('ENOMEM', 'set_knob', `${name} = ${value} needs ${frames} frames over ${list.length} groups, ${free} free`);
      }
    }
    // Group 0 first: an invalid name or value is refused there, before anything changed.
    const knobs0 = { ...list[0]!.index.knobs?.() };
    const before: (number | undefined)[] = [];
    let i = 0;
    try {
      for (; i < list.length; i++) {
        before.push(list[i]!.index.knobs?.()[name]);
        list[i]!.index.setKnob!(name, value);
      }
    } catch (e) {
      // A later group refused (e.g. KSM's EBUSY while it has KSM pages): undo the earlier ones.
      for (let j = i - 1; j >= 0; j--) {
        const old = before[j];
        if (old !== undefined) list[j]!.index.setKnob!(name, old);
      }
      throw e;
    }
    // Logged as knobs() reports it (a word as its number); a knob the set changed on the side
    // (KSM's advisor_mode resets pages_to_scan) is no longer the log's to replay or check.
    const knobs = list[0]!.index.knobs?.() ?? {};
    for (const k of [...this.knobLog.keys()]) if (k !== name && knobs0[k] !== knobs[k]) this.knobLog.delete(k);
    this.knobLog.delete(name);
    this.knobLog.set(name, knobs[name] ?? value);
  }
}

/** Names of the optional hooks `index` has, comma-separated. */
function hooksOf(index: DedupIndex): string {
  const names = ['nextWakeNs', 'wake', 'advise', 'setDomainMergeable', 'isMergeable', 'domainForked', 'domainDestroyed', 'zeroPageUnmapped', 'setKnob', 'knobs', 'domainStats'] as const;
  return names.filter((n) => index[n] !== undefined).join(',');
}
