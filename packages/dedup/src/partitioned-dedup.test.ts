import {
  asDomId,
  asGfn,
  asMfn,
  DOMID_COW,
  FrameFlags,
  HypervisorError,
  INVALID_GFN,
  INVALID_MFN,
  InvariantError,
  PAGE_SIZE,
  type DedupHost,
  type DedupIndex,
  type DomId,
  type InsertReason,
  type Mfn,
} from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { FakeP2m, unusedHostParts } from '../tests/fake-host.js';
import { machineHost, numberedPage } from '../tests/machine-host.js';
import { SharingHost } from '../tests/sharing-host.js';
import { EsxDedup, InlineDedup, KsmDedup, PartitionedDedup } from './index.js';

const ZEROS = new Uint8Array(PAGE_SIZE);
/** Pages 0..3 of every domain hold contents 1..4, page 4 zeros, page 5 a content of its own. */
const PAGES = 6;

/**
 * Two trust groups (1 and 2) of two domains each, whose pages 0..4 hold the same contents in all
 * four domains; group 0 has no domain. Under `populateZero` pages start on the zero frame and
 * are written; else they are populated with their content.
 */
async function twoGroups(dedup: DedupIndex, frames = 64) {
  const sh = await SharingHost.create(frames);
  const doms = [sh.addDomain(1, PAGES, 1), sh.addDomain(2, PAGES, 1), sh.addDomain(3, PAGES, 2), sh.addDomain(4, PAGES, 2)];
  sh.attach(dedup);
  const contentOf = (dom: DomId, g: number): Uint8Array => (g < 4 ? numberedPage(1 + g) : g === 4 ? ZEROS : numberedPage(100 + dom));
  for (const dom of doms) {
    for (let g = 0; g < PAGES; g++) {
      if (dedup.populateZero) {
        sh.populateZero(dom, g);
        sh.writePage(dom, g, contentOf(dom, g));
      } else {
        sh.populate(dom, g, contentOf(dom, g));
      }
    }
  }
  return { sh, doms };
}

/** Wakes `d` on its own schedule until `done` or `maxWakes` wake-ups. */
function drive(d: DedupIndex, done: () => boolean, maxWakes = 2000): void {
  for (let i = 0; i < maxWakes && !done(); i++) {
    const t = d.nextWakeNs!();
    if (t === Infinity) break;
    d.wake!(t);
  }
}

/**
 * The sharing `twoGroups` should end with once de-duplicated: in each group one frame per
 * content, no frame shared across groups, zeros on the zero frame, the own page private.
 */
function expectMergedWithinGroups(sh: SharingHost, doms: DomId[]): void {
  const [a1, a2, b1, b2] = doms as [DomId, DomId, DomId, DomId];
  for (let g = 0; g < 4; g++) {
    expect(sh.mfnOf(a1, g)).toBe(sh.mfnOf(a2, g));
    expect(sh.mfnOf(b1, g)).toBe(sh.mfnOf(b2, g));
    expect(sh.mfnOf(a1, g)).not.toBe(sh.mfnOf(b1, g));
    expect(sh.mapperGroups(sh.mfnOf(a1, g))).toEqual([1]);
    expect(sh.mapperGroups(sh.mfnOf(b1, g))).toEqual([2]);
  }
  for (const dom of doms) expect(sh.mfnOf(dom, 4)).toBe(sh.zeroMfn);
  expect(new Set(doms.map((dom) => sh.mfnOf(dom, 5))).size).toBe(4);
  expect(sh.crossGroupFrames()).toEqual([]);
  expect(sh.crossGroupMerges()).toEqual([]);
  expect(sh.crossGroupHits).toEqual([]);
  expect(sh.audit()).toEqual([]);
}

/**
 * A strategy that records what it is asked: wake-ups on a schedule of its own (first due at
 * `firstWakeNs`, then every 100 ns), advice, inserts. Its host is public, to poke at the view.
 */
class Probe implements DedupIndex {
  readonly name = 'probe';
  readonly inline = true;
  readonly populateZero = false;
  host: DedupHost | undefined;
  readonly wakes: number[] = [];
  readonly advised: DomId[] = [];
  readonly frames = new Set<number>();
  /** The reason of every insert, in order. */
  readonly reasons: InsertReason[] = [];
  due: number;
  constructor(readonly group: number, firstWakeNs = 5) {
    this.due = firstWakeNs;
  }
  get size(): number {
    return this.frames.size;
  }
  attach(host: DedupHost): void {
    this.host = host;
  }
  lookup(): Mfn {
    return INVALID_MFN;
  }
  insert(mfn: Mfn, _hash: number, reason: InsertReason): void {
    this.frames.add(mfn);
    this.reasons.push(reason);
  }
  remove(mfn: Mfn): void {
    this.frames.delete(mfn);
  }
  contains(mfn: Mfn): boolean {
    return this.frames.has(mfn);
  }
  metadataBytes(): number {
    return 100;
  }
  stats(): Readonly<Record<string, number>> {
    return { wakes: this.wakes.length, [`only_${this.group}`]: 1 };
  }
  audit(): string[] {
    return this.group === 2 ? ['something is off'] : [];
  }
  nextWakeNs(): number {
    return this.due;
  }
  wake(nowNs: number): void {
    this.wakes.push(nowNs);
    this.due = nowNs + 100;
  }
  advise(dom: DomId): void {
    this.advised.push(dom);
  }
  readonly forks: Array<[DomId, DomId]> = [];
  domainForked(parent: DomId, child: DomId): void {
    this.forks.push([parent, child]);
  }
}

describe('PartitionedDedup over InlineDedup', () => {
  it('shares frames within a trust group and never across; both groups share the zero frame', async () => {
    const d = new PartitionedDedup(() => new InlineDedup({ initialCapacity: 16 }));
    expect([d.name, d.inline, d.populateZero]).toEqual(['inline+groups', true, true]);
    const { sh, doms } = await twoGroups(d);
    expectMergedWithinGroups(sh, doms);
    expect(d.groups).toEqual([0, 1, 2]);
    expect(d.audit()).toEqual([]);
    // Counters are sums: every group lookup'd its own writes (2 domains x 6 pages).
    const s1 = d.inner(1)!.stats();
    const s2 = d.inner(2)!.stats();
    expect([s1['lookups'], s2['lookups']]).toEqual([12, 12]);
    expect(d.stats()).toMatchObject({ lookups: 24, hits: s1['hits']! + s2['hits']!, groups: 3 });
    // Each group indexes the zero frame, 4 shared contents, 2 own pages.
    expect([d.inner(0)!.size, d.inner(1)!.size, d.inner(2)!.size, d.size]).toEqual([1, 7, 7, 15]);
    expect(d.metadataBytes()).toBe(d.inner(0)!.metadataBytes() + d.inner(1)!.metadataBytes() + d.inner(2)!.metadataBytes());
    expect(d.contains(sh.zeroMfn)).toBe(true);
  });

  it('without partitioning, the same writes share frames across groups (the check can fail)', async () => {
    const { sh } = await twoGroups(new InlineDedup({ initialCapacity: 16 }));
    expect(sh.crossGroupHits.length).toBe(8); // group 2's writes of contents 1..4 found group 1's frames
    expect(sh.crossGroupFrames().length).toBe(4);
  });

  it('routes remove to the group that indexes the frame, as frames change and are freed', async () => {
    const d = new PartitionedDedup(() => new InlineDedup({ initialCapacity: 16 }));
    const { sh, doms } = await twoGroups(d);
    const [a1, a2] = doms as [DomId, DomId];
    const old = sh.mfnOf(a1, 0);
    expect(d.inner(1)!.contains(old)).toBe(true);
    sh.writePage(a1, 0, numberedPage(99)); // a1 gets a frame of its own; a2 keeps `old`
    const fresh = sh.mfnOf(a1, 0);
    expect(d.inner(1)!.contains(fresh)).toBe(true);
    sh.writePage(a2, 0, numberedPage(99)); // finds a1's frame; `old` is freed
    expect(sh.mfnOf(a2, 0)).toBe(fresh);
    expect(sh.frames.isFree(old)).toBe(true);
    expect(d.contains(old)).toBe(false);
    expect([sh.audit(), d.audit()]).toEqual([[], []]);
  });
});

describe('PartitionedDedup over KsmDedup', () => {
  const ksm = () => new PartitionedDedup(() => new KsmDedup({ pages_to_scan: 100, sleep_millisecs: 20 }));
  const fullScans = (d: PartitionedDedup, group: number) => d.inner(group)?.stats()['full_scans'] ?? 0;

  async function merged(frames = 64) {
    const d = ksm();
    d.setKnob!('use_zero_pages', 1); // before groups 1 and 2 exist: they take it when made
    const env = await twoGroups(d, frames);
    for (const dom of env.doms) d.setDomainMergeable!(dom, true);
    drive(d, () => fullScans(d, 1) >= 3 && fullScans(d, 2) >= 3);
    return { d, ...env };
  }

  it('merges within a trust group and never asks to merge across; zero pages go to the zero frame', async () => {
    const { d, sh, doms } = await merged();
    expectMergedWithinGroups(sh, doms);
    expect(sh.merges.length).toBe(12); // per group: 4 pairs, 2 zero pages
    expect(d.audit()).toEqual([]);
    expect(d.stats()).toMatchObject({ pages_shared: 8, pages_sharing: 8, ksm_zero_pages: 4, groups: 3 });
    expect(d.inner(1)!.stats()).toMatchObject({ pages_shared: 4, pages_sharing: 4, ksm_zero_pages: 2 });
    expect(d.domainStats!(doms[2]!)).toEqual(d.inner(2)!.domainStats!(doms[2]!));
    expect(d.domainStats!(doms[2]!)['merging_pages']).toBe(4);
    // Group 0 has nothing to scan: the composite wakes when groups 1 and 2 do.
    expect(d.inner(0)!.nextWakeNs!()).toBe(Infinity);
    expect(d.nextWakeNs!()).toBe(Math.min(d.inner(1)!.nextWakeNs!(), d.inner(2)!.nextWakeNs!()));
  });

  it('without partitioning, KSM asks to merge across groups (the check can fail)', async () => {
    const plain = new KsmDedup({ pages_to_scan: 100, sleep_millisecs: 20 });
    const { sh, doms } = await twoGroups(plain);
    for (const dom of doms) plain.setDomainMergeable(dom, true);
    drive(plain, () => plain.stats()['full_scans']! >= 3);
    expect(sh.crossGroupMerges().length).toBeGreaterThan(0);
    expect(sh.crossGroupMerges().every((c) => !c.merged)).toBe(true); // the host refused them
  });

  it('with every domain in one group, merges exactly as plain KSM does', async () => {
    const run = async (d: DedupIndex) => {
      const sh = await SharingHost.create(64);
      const doms = [1, 2, 3].map((n) => sh.addDomain(n, PAGES, 0));
      sh.attach(d);
      for (const dom of doms) for (let g = 0; g < PAGES; g++) sh.populate(dom, g, numberedPage(1 + ((g + dom) % 4)));
      for (const dom of doms) d.setDomainMergeable!(dom, true);
      for (let i = 0; i < 10; i++) d.wake!(d.nextWakeNs!());
      return sh.merges.map((c) => [c.dom, c.gfn, c.target, c.merged]);
    };
    const plain = await run(new KsmDedup({ pages_to_scan: 7 }));
    expect(plain.length).toBeGreaterThan(0);
    expect(await run(new PartitionedDedup(() => new KsmDedup({ pages_to_scan: 7 })))).toEqual(plain);
  });

  it('applies knobs to every group, those made later too, and a refusal changes no group', async () => {
    const { d } = await merged();
    const values = (name: string) => d.groups.map((g) => d.inner(g)!.knobs!()[name]);
    expect(values('use_zero_pages')).toEqual([1, 1, 1]);
    d.setKnob!('pages_to_scan', 7);
    expect(values('pages_to_scan')).toEqual([7, 7, 7]);
    expect(d.knobs!()['pages_to_scan']).toBe(7);
    expect(() => d.setKnob!('pages_to_scan', -1)).toThrow(/EINVAL/);
    expect(() => d.setKnob!('no_such_knob', 1)).toThrow(/EINVAL/);
    expect(values('pages_to_scan')).toEqual([7, 7, 7]);
    // Group 0 has no KSM pages and takes it; group 1 has some and refuses: group 0 is undone.
    const e = (() => {
      try {
        d.setKnob!('max_page_sharing', 10);
      } catch (err) {
        return err as HypervisorError;
      }
      throw new Error('expected EBUSY');
    })();
    expect(e.errnoName).toBe('EBUSY');
    expect(values('max_page_sharing')).toEqual([256, 256, 256]);
    expect(d.audit()).toEqual([]);
  });

  it('a group made after knobs were set takes them', async () => {
    const d = ksm();
    const sh = await SharingHost.create(32);
    const dom = sh.addDomain(7, 4, 5);
    sh.attach(d);
    d.setKnob!('pages_to_scan', 3);
    d.setKnob!('sleep_millisecs', 50);
    expect(d.inner(5)).toBeUndefined();
    d.advise!(dom, asGfn(0), 2, true);
    expect(d.inner(5)!.knobs!()).toMatchObject({ pages_to_scan: 3, sleep_millisecs: 50 });
    expect(d.groups).toEqual([0, 5]);
    expect(d.audit()).toEqual([]);
  });

  it('refuses run = 2 when the groups together lack frames, before any group unmerges', async () => {
    // Each group needs 6 frames to unmerge (4 KSM pages with both mappings, 2 zero pages): 12 in all.
    const { d, sh, doms } = await merged(96);
    const filler = sh.addDomain(9, 96, 0);
    for (let g = 0; sh.frames.freeFrames > 8; g++) sh.populate(filler, g, numberedPage(1000 + g));
    const before = doms.map((dom) => [0, 1, 2, 3, 4].map((g) => sh.mfnOf(dom, g)));
    expect(() => d.setKnob!('run', 2)).toThrow(/ENOMEM: run = 2 needs 12 frames over 3 groups, 8 free/);
    expect(d.groups.map((g) => d.inner(g)!.knobs!()['run'])).toEqual([1, 1, 1]);
    expect(doms.map((dom) => [0, 1, 2, 3, 4].map((g) => sh.mfnOf(dom, g)))).toEqual(before);
    expect(d.stats()).toMatchObject({ pages_shared: 8, ksm_zero_pages: 4 });
    expect([sh.audit(), d.audit()]).toEqual([[], []]);
  });

  it('run = 2 unmerges every group when frames suffice', async () => {
    const { d, sh, doms } = await merged();
    d.setKnob!('run', 2);
    expect(d.stats()).toMatchObject({ pages_shared: 0, pages_sharing: 0, ksm_zero_pages: 0 });
    for (const dom of doms) for (let g = 0; g < PAGES; g++) expect(sh.mapperGroups(sh.mfnOf(dom, g))).toEqual([sh.groupOf(dom)]);
    expect(sh.p2m.rmap.count(sh.zeroMfn)).toBe(0);
    expect([sh.audit(), d.audit()]).toEqual([[], []]);
  });

  it('routes isMergeable, advice and domainDestroyed to the group of the domain', async () => {
    const d = ksm();
    const { doms } = await twoGroups(d);
    const [a1, , b1] = doms as [DomId, DomId, DomId];
    d.advise!(b1, asGfn(1), 2, true);
    expect([0, 1, 2, 3].map((g) => d.isMergeable!(b1, asGfn(g)))).toEqual([false, true, true, false]);
    expect(d.isMergeable!(a1, asGfn(1))).toBe(false); // makes group 1
    expect(d.inner(2)!.isMergeable!(b1, asGfn(1))).toBe(true);
    expect(d.inner(1)!.isMergeable!(b1, asGfn(1))).toBe(false); // group 1 never heard of b1
    d.domainDestroyed!(b1);
    expect(d.isMergeable!(b1, asGfn(1))).toBe(false);
    expect(d.audit()).toEqual([]);
  });
});

describe('PartitionedDedup over EsxDedup', () => {
  it('merges within a trust group and never asks to merge across; zero pages go to the zero frame', async () => {
    const d = new PartitionedDedup((g) => new EsxDedup({ scanRatePerDomainPagesPerS: 2000, wakeIntervalMs: 10, seed: 1 + g }));
    const { sh, doms } = await twoGroups(d);
    for (const dom of doms) d.setDomainMergeable!(dom, true);
    d.setKnob!('scanRateGlobalPagesPerS', 100000);
    expect(d.groups.map((g) => d.inner(g)!.knobs!()['scanRateGlobalPagesPerS'])).toEqual([100000, 100000, 100000]);
    drive(d, () => d.stats()['pages_merged']! >= 8 && d.stats()['zero_merges']! >= 4);
    expectMergedWithinGroups(sh, doms);
    expect(d.stats()).toMatchObject({ pages_merged: 8, zero_merges: 4, shared_frames: 8, groups: 3 });
    expect(d.audit()).toEqual([]);
    expect(d.isMergeable!(doms[0]!, asGfn(0))).toBe(true);
  });
});

describe('PartitionedDedup routing and views', () => {
  async function probes(groups: Record<number, number>) {
    const sh = await SharingHost.create(32);
    for (const [dom, group] of Object.entries(groups)) sh.addDomain(Number(dom), 4, group);
    const made: Probe[] = [];
    const d = new PartitionedDedup((g) => {
      const p = new Probe(g, 5 + 10 * g);
      made.push(p);
      return p;
    });
    sh.attach(d);
    return { d, sh, made };
  }

  it('has exactly the hooks of its inner strategy', () => {
    const inline = new PartitionedDedup(() => new InlineDedup());
    expect([inline.nextWakeNs, inline.wake, inline.advise, inline.setKnob, inline.isMergeable]).toEqual([undefined, undefined, undefined, undefined, undefined]);
    const ksm = new PartitionedDedup(() => new KsmDedup());
    for (const hook of [ksm.nextWakeNs, ksm.wake, ksm.advise, ksm.setDomainMergeable, ksm.isMergeable, ksm.domainDestroyed, ksm.setKnob, ksm.knobs, ksm.domainStats]) {
      expect(hook).toBeTypeOf('function');
    }
    expect(new PartitionedDedup(() => new EsxDedup()).name).toBe('esx+groups');
  });

  it('wakes the earliest group first and only the groups that are due', async () => {
    const { d } = await probes({ 1: 1, 2: 2 });
    d.advise!(asDomId(2), asGfn(0), 1, true); // makes group 2 (due at 25)
    d.advise!(asDomId(1), asGfn(0), 1, true); // makes group 1 (due at 15)
    expect(d.groups).toEqual([0, 2, 1]);
    expect(d.nextWakeNs!()).toBe(5);
    d.wake!(15);
    const wakes = (g: number) => (d.inner(g) as Probe).wakes;
    expect([wakes(0), wakes(1), wakes(2)]).toEqual([[15], [15], []]);
    expect(d.nextWakeNs!()).toBe(25);
    expect((d.inner(1) as Probe).advised).toEqual([1]);
  });

  it('tells a fork to the group of parent and child, and refuses a fork across groups', async () => {
    const { d } = await probes({ 1: 1, 2: 1, 3: 2 });
    d.domainForked!(asDomId(1), asDomId(2));
    expect((d.inner(1) as Probe).forks).toEqual([[1, 2]]);
    expect(() => d.domainForked!(asDomId(1), asDomId(3))).toThrow(/dom 3 \(group 2\) forked from dom 1 \(group 1\)/);
    expect(d.groups).toEqual([0, 1]);
  });

  it('shows each group only its domains, and refuses a merge of another group\'s page', async () => {
    const { d, sh } = await probes({ 1: 1, 2: 1, 3: 2 });
    d.advise!(asDomId(1), asGfn(0), 1, true);
    const view = (d.inner(1) as Probe).host!;
    expect([...view.p2m.domains()]).toEqual([1, 2]);
    expect(view.p2m.table(asDomId(3))).toBeUndefined();
    expect(view.p2m.table(asDomId(1))).toBe(sh.p2m.table(asDomId(1)));
    expect(view.p2m.rmap).toBe(sh.p2m.rmap);
    expect([view.memory, view.frames, view.zeroMfn, view.groupOf(asDomId(3))]).toEqual([sh.memory, sh.frames, sh.zeroMfn, 2]);
    expect(() => view.merge(asDomId(3), asGfn(0), sh.zeroMfn)).toThrow(/group 1's strategy asked to merge a page of dom 3, which is in group 2/);
    expect(() => view.unmerge(asDomId(3), asGfn(0))).toThrow(InvariantError);
    expect(() => view.p2m.createTable(asDomId(5), 4)).toThrow(/read only/);
    expect(sh.merges).toEqual([]);
    const a = sh.populate(asDomId(1), 0, numberedPage(1));
    sh.populate(asDomId(2), 0, numberedPage(1));
    expect(view.merge(asDomId(2), asGfn(0), a)).toBe(true);
    view.chargeCpu(7);
    expect(sh.cpuNs).toBe(7);
  });

  it('inserts a private frame in its owner\'s group, a shared one in its mappers\', the zero frame in every group', async () => {
    const { d, sh } = await probes({ 1: 1, 3: 2 });
    const a = sh.populate(asDomId(1), 0, numberedPage(1));
    d.insert(a, 0, 'miss');
    expect(d.groups).toEqual([0, 1]);
    expect(d.inner(1)!.contains(a)).toBe(true);
    expect(d.contains(a)).toBe(true);
    // A frame shared by dom 3 alone (as makeShared leaves it before a second mapping).
    const b = sh.populate(asDomId(3), 0, numberedPage(2));
    sh.frames.setOwner(b, DOMID_COW, INVALID_GFN);
    sh.frames.setFlags(b, FrameFlags.shared);
    sh.p2m.rmap.add(b, asDomId(3), asGfn(0));
    d.insert(b, 0, 'shared');
    expect(d.inner(2)!.contains(b)).toBe(true);
    d.insert(sh.zeroMfn, 0, 'shared');
    expect(d.groups.map((g) => d.inner(g)!.contains(sh.zeroMfn))).toEqual([true, true, true]);
    // Each group's strategy is told the reason the host gave.
    expect(d.groups.map((g) => (d.inner(g) as Probe).reasons)).toEqual([['shared'], ['miss', 'shared'], ['shared', 'shared']]);
    d.remove(a);
    expect([d.contains(a), d.inner(1)!.contains(a)]).toEqual([false, false]);
    // Shared with a domain of group 1 as well: no group may index it.
    sh.p2m.rmap.add(b, asDomId(1), asGfn(1));
    d.remove(b);
    expect(() => d.insert(b, 0, 'shared')).toThrow(/shared by groups 2 and 1/);
    sh.p2m.rmap.remove(b, asDomId(3), asGfn(0));
    sh.p2m.rmap.remove(b, asDomId(1), asGfn(1));
    expect(() => d.insert(b, 0, 'shared')).toThrow(/which no domain maps/);
    const free = asMfn(30);
    expect(sh.frames.isFree(free)).toBe(true);
    expect(() => d.insert(free, 0, 'miss')).toThrow(/neither a domain's nor shared/);
  });

  it('audits each group under its number, and checks that no group holds another group\'s frame', async () => {
    const { d, sh } = await probes({ 1: 1, 3: 2 });
    const a = sh.populate(asDomId(1), 0, numberedPage(1));
    const b = sh.populate(asDomId(3), 0, numberedPage(2));
    d.insert(a, 0, 'miss');
    d.insert(b, 0, 'miss');
    expect(d.audit()).toEqual(['group 2: something is off']);
    d.inner(1)!.insert(b, 0, 'miss'); // behind the composite's back
    expect(d.audit()).toEqual([
      'group 2: something is off',
      `probe+groups: mfn ${b} is indexed by groups 1, 2`,
      `probe+groups: mfn ${b} is indexed by group 1 but mapped by group 2`,
    ]);
    expect(d.stats()).toEqual({ wakes: 0, only_0: 1, only_1: 1, only_2: 1, groups: 3 });
    expect([d.size, d.metadataBytes()]).toEqual([3, 300]);
  });

  it('refuses what it cannot route: before attach, twice attached, a bad group, a strategy of another kind', async () => {
    const d = new PartitionedDedup(() => new InlineDedup());
    expect(() => d.lookup(ZEROS, 0, asDomId(1))).toThrow(/inline\+groups: lookup before attach/);
    expect(() => d.insert(asMfn(1), 0, 'miss')).toThrow(InvariantError);
    const { host, memory } = await machineHost(16);
    d.attach(host);
    expect(() => d.attach(host)).toThrow(/attach called twice/);
    expect(d.lookup(ZEROS, memory.hashPage(ZEROS), asDomId(1))).toBe(host.zeroMfn);
    for (const bad of [-1, 1.5, 0x10000]) {
      const e = new PartitionedDedup(() => new InlineDedup());
      e.attach({ ...host, groupOf: () => bad });
      expect(() => e.lookup(ZEROS, 0, asDomId(1))).toThrow(new RegExp(`trust group ${bad} is not an integer`));
    }
    let n = 0;
    const mixed = new PartitionedDedup(() => (n++ === 0 ? new InlineDedup() : new KsmDedup()));
    mixed.attach({ ...host, groupOf: (dom) => dom });
    expect(() => mixed.lookup(ZEROS, 0, asDomId(1))).toThrow(/makeIndex\(1\) made a strategy of another kind/);
  });

  it('knobs set before attach reach every group', async () => {
    const d = new PartitionedDedup(() => new KsmDedup());
    d.setKnob!('pages_to_scan', 9);
    const sh = await SharingHost.create(16);
    const dom = sh.addDomain(1, 2, 4);
    sh.attach(d);
    d.setDomainMergeable!(dom, true);
    expect(d.inner(4)!.knobs!()['pages_to_scan']).toBe(9);
    d.inner(4)!.setKnob!('pages_to_scan', 3); // behind the composite's back
    expect(d.audit()).toEqual(['ksm+groups: group 4: knob pages_to_scan is 3, set to 9']);
  });

  it('reports a frame shared across groups, which partitioning must never cause', async () => {
    const { host, table } = await machineHost(16);
    const p2m = new FakeP2m();
    p2m.createTable(asDomId(1), 2);
    p2m.createTable(asDomId(3), 2);
    const m = table.allocFrame(asDomId(1), asGfn(0));
    table.setOwner(m, DOMID_COW, INVALID_GFN);
    table.setFlags(m, FrameFlags.shared);
    p2m.rmap.add(m, asDomId(1), asGfn(0));
    p2m.rmap.add(m, asDomId(3), asGfn(0));
    const d = new PartitionedDedup(() => new InlineDedup());
    d.attach({ ...host, ...unusedHostParts({ 3: 2 }), memory: host.memory, frames: table, zeroMfn: host.zeroMfn, p2m });
    expect(d.audit()).toEqual([
      // Made shared behind the strategy's back, never offered: group 0's InlineDedup, which
      // indexes every offer, misses it (group 2 has no strategy yet).
      `group 0: inline dedup: shared mfn ${m} is not indexed, but every frame offered is`,
      `inline+groups: mfn ${m} is shared by groups 0, 2`,
    ]);
  });
});
