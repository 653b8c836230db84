import { describe, expect, it } from 'vitest';
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
  NS_PER_MS,
  P2mType,
  PAGE_SIZE,
  type DedupHost,
  type DomId,
  type Gfn,
  type Mfn,
  type P2m,
  type P2mTable,
} from '@pagevisor/types';
import { machineHost, numberedPage } from '../../tests/machine-host.js';
import { SharingHost } from '../../tests/sharing-host.js';
import { EsxDedup } from './esx-dedup.js';
import { DEFAULT_ESX_OPTIONS, type EsxDedupOptions } from './esx-options.js';

/** A p2m table in plain typed arrays that records every gfn whose type is read (the scanner's draws). */
class FakeTable implements P2mTable {
  readonly mfns: Int32Array;
  readonly types: Uint8Array;
  readonly reads: number[] = [];
  constructor(
    readonly dom: DomId,
    readonly size: number,
  ) {
    this.mfns = new Int32Array(size).fill(INVALID_MFN);
    this.types = new Uint8Array(size);
  }
  get populated(): number {
    return this.types.reduce((n, t) => n + (t === P2mType.invalid ? 0 : 1), 0);
  }
  type(gfn: Gfn): P2mType {
    this.reads.push(gfn);
    return this.types[gfn] as P2mType;
  }
  mfn(gfn: Gfn): Mfn {
    return this.mfns[gfn] as Mfn;
  }
  set(gfn: Gfn, mfn: Mfn, type: P2mType): void {
    this.mfns[gfn] = mfn;
    this.types[gfn] = type;
  }
  clear(gfn: Gfn): void {
    this.set(gfn, INVALID_MFN, P2mType.invalid);
  }
}

/**
 * A scanning host over real machine memory and frame table, with p2m tables of its own and a
 * merge that remaps and counts references (no reverse map), and an unmerge that only records:
 * enough to watch the scanner's decisions. Every merge and unmerge is recorded.
 */
async function scanHost(opts: EsxDedupOptions = {}, frames = 256) {
  const base = await machineHost(frames);
  const { memory, table: frameTable, zeroMfn } = base;
  const tables = new Map<number, FakeTable>();
  const merges: Array<[number, number, number]> = [];
  const unmerges: Array<[number, number]> = [];
  let cpuNs = 0;
  let unmergeSucceeds = true;
  const p2m = {
    table: (dom: DomId) => tables.get(dom),
    domains: () => tables.keys() as Iterable<DomId>,
  } as unknown as P2m;
  const host: DedupHost = {
    ...base.host,
    p2m,
    merge(dom, gfn, target) {
      const t = tables.get(dom);
      if (t === undefined) return false;
      const cur = t.mfn(gfn);
      if (cur === INVALID_MFN || cur === target || !memory.framesEqual(cur, target)) return false;
      merges.push([dom, gfn, target]);
      if (target !== zeroMfn && (frameTable.flags(target) & FrameFlags.shared) === 0) {
        // The target's own page becomes a sharer.
        const owner = frameTable.owner(target);
        tables.get(owner)?.set(frameTable.gfn(target), target, P2mType.ram_shared);
        frameTable.setOwner(target, DOMID_COW, INVALID_GFN);
        frameTable.setFlags(target, FrameFlags.shared);
      }
      // Unmerge advice counts the frames it needs from these.
      if (target !== zeroMfn) frameTable.addRef(target, 1);
      if (t.type(gfn) === P2mType.ram_rw) frameTable.freeFrame(cur);
      t.set(gfn, target, P2mType.ram_shared);
      return true;
    },
    unmerge(dom, gfn) {
      unmerges.push([dom, gfn]);
      return unmergeSucceeds;
    },
    chargeCpu(ns) {
      cpuNs += ns;
    },
  };
  const dedup = new EsxDedup(opts);
  dedup.attach(host);

  /** A domain of `size` gfns, none populated. */
  const domain = (id: number, size: number): FakeTable => {
    const t = new FakeTable(asDomId(id), size);
    tables.set(id, t);
    return t;
  };
  /** Gives `t`'s page `gfn` a private frame holding `page`. */
  const put = (t: FakeTable, gfn: number, page: Uint8Array): Mfn => {
    const mfn = frameTable.allocFrame(t.dom, asGfn(gfn));
    memory.write(mfn, 0, page, 0, PAGE_SIZE);
    t.set(asGfn(gfn), mfn, P2mType.ram_rw);
    return mfn;
  };
  /** Wakes the scanner at every due time up to `endNs`. */
  const runUntil = (endNs: number): void => {
    for (let at = dedup.nextWakeNs(); at <= endNs; at = dedup.nextWakeNs()) dedup.wake(at);
  };
  return {
    dedup,
    host,
    memory,
    frameTable,
    zeroMfn,
    merges,
    unmerges,
    domain,
    put,
    runUntil,
    cpuNs: () => cpuNs,
    failUnmerge: () => {
      unmergeSucceeds = false;
    },
  };
}

describe('EsxDedup options and knobs', () => {
  it('takes the documented defaults and refuses bad options with EINVAL', () => {
    const d = new EsxDedup({ seed: undefined });
    expect(d.knobs()).toEqual({
      scanRatePerDomainPagesPerS: DEFAULT_ESX_OPTIONS.scanRatePerDomainPagesPerS,
      scanRateGlobalPagesPerS: DEFAULT_ESX_OPTIONS.scanRateGlobalPagesPerS,
      wakeIntervalMs: DEFAULT_ESX_OPTIONS.wakeIntervalMs,
    });
    expect(d.populateZero).toBe(false);
    expect([d.name, d.inline]).toEqual(['esx', false]);
    for (const bad of [
      { scanRatePerDomainPagesPerS: -1 },
      { scanRateGlobalPagesPerS: Number.NaN },
      { wakeIntervalMs: 0 },
      { wakeIntervalMs: Infinity },
      { seed: 1.5 },
      { initialCapacity: 1000 },
      { initialCapacity: 1 },
      { populateZero: 1 as unknown as boolean },
    ]) {
      expect(() => new EsxDedup(bad), JSON.stringify(bad)).toThrow(HypervisorError);
    }
  });

  it('changes rates and interval at run time, and refuses unknown knobs and bad values', async () => {
    const h = await scanHost({ wakeIntervalMs: 50 });
    const t = h.domain(1, 4);
    h.dedup.setDomainMergeable(t.dom, true);
    h.dedup.setKnob('wakeIntervalMs', 40);
    expect(h.dedup.nextWakeNs()).toBe(40 * NS_PER_MS);
    h.dedup.setKnob('wakeIntervalMs', 50);
    expect(h.dedup.nextWakeNs()).toBe(50 * NS_PER_MS);
    h.dedup.wake(50 * NS_PER_MS);
    h.dedup.setKnob('wakeIntervalMs', 10);
    expect(h.dedup.nextWakeNs()).toBe(60 * NS_PER_MS);
    h.dedup.setKnob('scanRateGlobalPagesPerS', 0);
    expect(h.dedup.nextWakeNs()).toBe(Infinity);
    expect(h.dedup.knobs()).toMatchObject({ wakeIntervalMs: 10, scanRateGlobalPagesPerS: 0 });
    expect(() => h.dedup.setKnob('pages_to_scan', 100)).toThrow(/unknown knob/);
    expect(() => h.dedup.setKnob('scanRatePerDomainPagesPerS', -5)).toThrow(HypervisorError);
    expect(() => h.dedup.setKnob('wakeIntervalMs', 0)).toThrow(HypervisorError);
    expect(h.dedup.knobs().scanRatePerDomainPagesPerS).toBe(DEFAULT_ESX_OPTIONS.scanRatePerDomainPagesPerS);
  });
});

describe('EsxDedup before and at attach', () => {
  it('refuses work before attach and a second attach', async () => {
    const d = new EsxDedup();
    expect(() => d.wake(0)).toThrow(InvariantError);
    expect(() => d.advise(asDomId(1), asGfn(0), 1, true)).toThrow(InvariantError);
    expect(() => d.lookup(new Uint8Array(PAGE_SIZE), 0)).toThrow(InvariantError);
    expect([d.size, d.contains(asMfn(0)), d.metadataBytes()]).toEqual([0, false, 0]);
    d.remove(asMfn(0)); // nothing to forget
    expect(d.audit()).toEqual(['esx dedup: not attached']);
    const h = await scanHost();
    expect(() => h.dedup.attach(h.host)).toThrow(/attach called twice/);
  });

  it('refuses advice for an unknown domain (ESRCH) and a range outside it (EINVAL)', async () => {
    const h = await scanHost();
    const t = h.domain(1, 8);
    expect(() => h.dedup.advise(asDomId(9), asGfn(0), 1, true)).toThrow(expect.objectContaining({ errnoName: 'ESRCH' }));
    expect(() => h.dedup.setDomainMergeable(asDomId(9), true)).toThrow(expect.objectContaining({ errnoName: 'ESRCH' }));
    expect(() => h.dedup.advise(t.dom, asGfn(4), 5, true)).toThrow(expect.objectContaining({ errnoName: 'EINVAL' }));
    expect(() => h.dedup.advise(t.dom, asGfn(-1), 2, true)).toThrow(expect.objectContaining({ errnoName: 'EINVAL' }));
    expect(h.dedup.domainStats(t.dom).mergeable_pages).toBe(0);
    h.dedup.setDomainMergeable(asDomId(9), false); // not marked: nothing to do, as in Linux
  });
});

describe('EsxDedup scanning', () => {
  it('leaves a hint for a page seen once and merges the hinted page onto the next match', async () => {
    const h = await scanHost({ scanRatePerDomainPagesPerS: 10, wakeIntervalMs: 100 });
    const t = h.domain(1, 2);
    const first = h.put(t, 0, numberedPage(5));
    const second = h.put(t, 1, numberedPage(5));
    h.dedup.advise(t.dom, asGfn(0), 1, true);
    h.runUntil(100 * NS_PER_MS);
    expect(h.dedup.stats()).toMatchObject({ pages_scanned: 1, hints: 1, shared_frames: 0 });
    expect(h.merges).toEqual([]);

    h.dedup.advise(t.dom, asGfn(0), 1, false);
    expect(h.dedup.stats().hints).toBe(0); // unmarking drops the range's hints
    h.dedup.advise(t.dom, asGfn(0), 2, true);
    h.runUntil(400 * NS_PER_MS);
    expect(h.merges).toHaveLength(1);
    expect(h.dedup.stats()).toMatchObject({ hint_hits: 1, pages_merged: 1, shared_frames: 1, hints: 0 });
    const shared = t.mfn(asGfn(0));
    expect(t.mfn(asGfn(1))).toBe(shared);
    expect(h.dedup.contains(shared)).toBe(true);
    expect([first, second]).toContain(shared);
    expect(h.frameTable.isFree(shared === first ? second : first)).toBe(true);
    expect(h.dedup.lookup(numberedPage(5), h.memory.hashPage(numberedPage(5)))).toBe(shared);
    expect(h.dedup.lookup(numberedPage(6), h.memory.hashPage(numberedPage(6)))).toBe(INVALID_MFN);
    expect(h.dedup.audit()).toEqual([]);
  });

  it('merges zero pages onto the zero frame and charges hashing to the host', async () => {
    const h = await scanHost({ scanRatePerDomainPagesPerS: 40, wakeIntervalMs: 100 });
    const t = h.domain(1, 4);
    for (let g = 0; g < 4; g++) h.put(t, g, new Uint8Array(PAGE_SIZE));
    h.dedup.setDomainMergeable(t.dom, true);
    h.runUntil(1000 * NS_PER_MS);
    expect(h.merges.map(([, , target]) => target)).toEqual([h.zeroMfn, h.zeroMfn, h.zeroMfn, h.zeroMfn]);
    expect(h.dedup.stats()).toMatchObject({ zero_merges: 4, shared_frames: 0, hints: 0, pages_scanned: 40 * 1 });
    expect(h.dedup.domainStats(t.dom)).toMatchObject({ zero_merges: 4, pages_scanned: 40 });
    const c = h.host.costModel;
    // 40 p2m reads, 4 hashes, 4 zero compares (pages on the zero frame are not hashed again).
    expect(h.cpuNs()).toBe(40 * c.p2mUpdateNs + 4 * (c.pageHashNs + c.pageCompareNs));
  });

  it('enters a frame shared by other means as a shared entry, not a hint', async () => {
    const h = await scanHost({ scanRatePerDomainPagesPerS: 10 });
    const t = h.domain(1, 1);
    const mfn = h.put(t, 0, numberedPage(9));
    h.frameTable.setOwner(mfn, DOMID_COW, INVALID_GFN);
    h.frameTable.setFlags(mfn, FrameFlags.shared);
    t.set(asGfn(0), mfn, P2mType.ram_shared);
    h.dedup.setDomainMergeable(t.dom, true);
    h.runUntil(DEFAULT_ESX_OPTIONS.wakeIntervalMs * NS_PER_MS);
    expect(h.dedup.contains(mfn)).toBe(true);
    expect(h.dedup.stats()).toMatchObject({ shared_frames: 1, hints: 0 });
    h.dedup.remove(mfn); // its last sharer writes it
    expect(h.dedup.contains(mfn)).toBe(false);
    expect(h.dedup.size).toBe(0);
  });

  it('draws the same pages for the same seed and other pages for another', async () => {
    const draws = async (seed: number) => {
      const h = await scanHost({ seed, scanRatePerDomainPagesPerS: 200 });
      const t = h.domain(1, 1000);
      h.dedup.setDomainMergeable(t.dom, true);
      h.runUntil(500 * NS_PER_MS);
      return t.reads;
    };
    const a = await draws(1);
    expect(a).toHaveLength(100);
    expect(await draws(1)).toEqual(a);
    expect(await draws(2)).not.toEqual(a);
  });

  it('bounds one wake-up by the candidates there are, however large the rates', async () => {
    const h = await scanHost({ scanRatePerDomainPagesPerS: 1e12, scanRateGlobalPagesPerS: 1e12, wakeIntervalMs: 1e6 });
    const t = h.domain(1, 4);
    for (let g = 0; g < 4; g++) h.put(t, g, numberedPage(g + 1));
    h.dedup.setDomainMergeable(t.dom, true);
    h.dedup.wake(h.dedup.nextWakeNs());
    h.dedup.wake(h.dedup.nextWakeNs());
    // Two wake-ups of a 4-page guest draw 8 pages, not rate x interval (10^15) each.
    expect(t.reads).toHaveLength(8);
    expect(h.dedup.stats()).toMatchObject({ pages_scanned: 8, wakes: 2 });
  });

  it('keeps hints right across table rebuilds', async () => {
    const h = await scanHost({ initialCapacity: 2, scanRatePerDomainPagesPerS: 5000 }, 512);
    const t = h.domain(1, 200);
    for (let g = 0; g < 200; g++) h.put(t, g, numberedPage(1000 + g));
    h.dedup.setDomainMergeable(t.dom, true);
    h.runUntil(2000 * NS_PER_MS);
    const s = h.dedup.stats();
    expect(s.rebuilds).toBeGreaterThan(3);
    expect(s.hints).toBe(200);
    expect(h.dedup.audit()).toEqual([]);
    expect(h.dedup.metadataBytes()).toBe(s.table_capacity! * 11 + 512 * 4 + 200 * 12);
    h.dedup.domainDestroyed(t.dom);
    expect(h.dedup.stats()).toMatchObject({ hints: 0, mergeable_pages: 0 });
    expect(h.dedup.nextWakeNs()).toBe(Infinity);
    expect(h.dedup.audit()).toEqual([]);
  });

  it('refuses unmerge advice with ENOMEM, changing nothing, when fewer frames are free than the copies need', async () => {
    const h = await scanHost({ scanRatePerDomainPagesPerS: 100 });
    const t = h.domain(1, 5);
    for (let g = 0; g < 3; g++) h.put(t, g, numberedPage(3));
    h.put(t, 3, new Uint8Array(PAGE_SIZE));
    h.put(t, 4, numberedPage(9));
    h.dedup.setDomainMergeable(t.dom, true);
    h.runUntil(2000 * NS_PER_MS);
    expect(h.dedup.stats()).toMatchObject({ shared_frames: 1, zero_merges: 1, hints: 1 });
    const shared = t.mfn(asGfn(0));
    expect(h.frameTable.refcount(shared)).toBe(3);
    // Leave one free frame.
    while (h.frameTable.freeFrames > 1) h.frameTable.allocFrame(asDomId(9), asGfn(0));
    const before = { stats: h.dedup.stats(), dom: h.dedup.domainStats(t.dom), types: t.types.slice(), mfns: t.mfns.slice() };
    const unchanged = (): void => {
      expect(h.unmerges).toEqual([]);
      expect({ stats: h.dedup.stats(), dom: h.dedup.domainStats(t.dom), types: t.types.slice(), mfns: t.mfns.slice() }).toEqual(before);
      expect(h.dedup.audit()).toEqual([]);
    };
    // Three sharers, all unmerged, plus the zero page: 2 + 1 frames (the last sharer keeps its frame).
    expect(() => h.dedup.setDomainMergeable(t.dom, false)).toThrow('set_memory_merge: ENOMEM: 3 frames needed to unmerge, 1 free');
    unchanged();
    // Two of three sharers: each needs a frame of its own.
    expect(() => h.dedup.advise(t.dom, asGfn(0), 2, false)).toThrow('madvise_unmergeable: ENOMEM: 2 frames needed to unmerge, 1 free');
    unchanged();
    expect(() => h.dedup.advise(t.dom, asGfn(2), 2, false)).toThrow(expect.objectContaining({ errnoName: 'ENOMEM' }));
    unchanged();
    // One frame is enough for one sharer.
    h.dedup.advise(t.dom, asGfn(1), 1, false);
    expect(h.unmerges).toEqual([[1, 1]]);
    expect(h.dedup.domainStats(t.dom).mergeable_pages).toBe(4);
    // A host that then finds no frame breaks the count: a bug, not ENOMEM.
    h.failUnmerge();
    expect(() => h.dedup.advise(t.dom, asGfn(0), 1, false)).toThrow(InvariantError);
  });
});

describe('EsxDedup audit', () => {
  it('finds a shared frame that changed or was freed behind its back, and duplicate entries', async () => {
    const h = await scanHost();
    const t = h.domain(1, 3);
    const shareIt = (g: number, page: Uint8Array): Mfn => {
      const mfn = h.put(t, g, page);
      h.frameTable.setOwner(mfn, DOMID_COW, INVALID_GFN);
      h.frameTable.setFlags(mfn, FrameFlags.shared);
      return mfn;
    };
    const a = shareIt(0, numberedPage(1));
    const b = shareIt(1, numberedPage(2));
    const c = shareIt(2, numberedPage(1));
    h.dedup.insert(a, h.memory.hashFrame(a), 'shared');
    h.dedup.insert(b, h.memory.hashFrame(b), 'shared');
    expect(h.dedup.audit()).toEqual([]);
    expect(() => h.dedup.insert(a, h.memory.hashFrame(a), 'shared')).toThrow(InvariantError);
    expect(() => h.dedup.insert(h.zeroMfn, 0, 'shared')).toThrow(InvariantError);

    h.memory.write(a, 0, Uint8Array.of(7), 0, 1);
    expect(h.dedup.audit().join('\n')).toMatch(new RegExp(`mfn ${a} entered under hash .* \\(changed while shared\\)`));
    h.memory.write(a, 0, Uint8Array.of(1), 0, 1);
    // Equal contents may stand as two entries: the host may have refused their merge.
    h.dedup.insert(c, h.memory.hashFrame(c), 'shared');
    expect(h.dedup.audit()).toEqual([]);
    h.dedup.remove(c);
    h.frameTable.setFlags(b, 0);
    h.frameTable.freeFrame(b);
    expect(h.dedup.audit()).toEqual([`esx dedup: mfn ${b} has a shared entry but is free`]);
  });
});

describe('EsxDedup.isMergeable', () => {
  it('follows advice and PR_SET_MEMORY_MERGE, and is false outside a domain or for an unknown one', async () => {
    const esx = new EsxDedup();
    const sh = await SharingHost.create(16);
    const a = sh.addDomain(1, 6, 0);
    sh.attach(esx);
    const row = () => Array.from({ length: 6 }, (_, g) => (esx.isMergeable(a, asGfn(g)) ? 1 : 0));
    expect(row()).toEqual([0, 0, 0, 0, 0, 0]);
    esx.advise(a, asGfn(1), 3, true);
    expect(row()).toEqual([0, 1, 1, 1, 0, 0]);
    esx.advise(a, asGfn(2), 1, false);
    expect(row()).toEqual([0, 1, 0, 1, 0, 0]);
    expect([esx.isMergeable(a, asGfn(-1)), esx.isMergeable(a, asGfn(6)), esx.isMergeable(asDomId(5), asGfn(1))]).toEqual([false, false, false]);
    esx.setDomainMergeable(a, true);
    expect(row()).toEqual([1, 1, 1, 1, 1, 1]);
    esx.setDomainMergeable(a, false);
    expect(row()).toEqual([0, 0, 0, 0, 0, 0]);
    esx.advise(a, asGfn(0), 1, true);
    esx.domainDestroyed(a);
    expect(row()).toEqual([0, 0, 0, 0, 0, 0]);
  });
});
