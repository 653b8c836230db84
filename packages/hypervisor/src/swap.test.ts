import { describe, expect, it } from 'vitest';
import { createDedup } from '@pagevisor/dedup';
import { createEvictionPolicy, EVICTION_POLICIES, FaultPlan, MemorySwapDevice, SharedSwap, type FaultPlanOptions } from '@pagevisor/swap';
import { asGfn, DOMID_CONTROL, P2mType, PAGE_SIZE, type DomId, type SwapBackend } from '@pagevisor/types';
import { HypercallClient } from '@pagevisor/hypercall-abi';
import { Hypervisor } from './hypervisor.js';
import { PickPolicy } from '../tests/pick-policy.js';
import { pageOf, read } from '../tests/pages.js';
import { observableDigest } from './observable-state.js';

const FRAMES = 32;

interface Setup {
  readonly hv: Hypervisor;
  readonly faults: FaultPlan;
}

/** A 32-frame host with `none` dedup (every page needs a frame) and swap in `mode`. */
async function host(mode: 'shared' | 'per-domain', policy: 'clock' | 'lru' | 'random' = 'clock', faults: FaultPlanOptions = {}): Promise<Setup> {
  const plan = new FaultPlan(faults);
  let hv: Hypervisor | undefined;
  // The area checksums with the machine's own hash; it is bound once the hypervisor exists.
  const hashPage = (p: Uint8Array): number => hv!.memory.hashPage(p);
  const area = (dedup: boolean): SwapBackend => new SharedSwap({ device: new MemorySwapDevice({ slots: 512, faults: plan }), hashPage, dedup });
  hv = await Hypervisor.create({
    frames: FRAMES,
    dedup: createDedup('none'),
    swap: {
      backend: mode === 'shared' ? area(true) : () => area(false),
      policy: createEvictionPolicy(policy, { frames: FRAMES, seed: 1 }),
      lowWatermark: 2,
      highWatermark: 4,
    },
  });
  return { hv, faults: plan };
}

/** Boots a guest of `pages` pages, one at a time, whose page i holds content `seed(i)`. */
function boot(hv: Hypervisor, pages: number, seed: (i: number) => number): DomId {
  const dom = hv.createDomain({ maxPages: pages });
  for (let i = 0; i < pages; i++) {
    hv.populatePhysmap(dom, [i]);
    hv.writePage(dom, asGfn(i), 0, pageOf(seed(i)), 0, PAGE_SIZE);
  }
  return dom;
}

describe.each(EVICTION_POLICIES)('guests three times the size of RAM (policy %s)', (policy) => {
  it('run, and every page reads back what was written, whatever was swapped', async () => {
    const { hv } = await host('shared', policy);
    const doms = [0, 1, 2].map((k) => boot(hv, 32, (i) => 100 * k + i));
    expect(hv.totals().guestPages).toBe(96);
    expect(hv.totals().pagedPages).toBeGreaterThan(60);
    // Distinct pages and no dedup: sharing saves nothing, however many pages are out on swap.
    expect(hv.totals().savedPct).toBeLessThanOrEqual(0);
    // Touch everything twice in a moving order, with partial writes in between.
    for (let round = 0; round < 2; round++) {
      for (const [k, dom] of doms.entries()) {
        for (let i = 0; i < 32; i++) expect(read(hv, dom, (i + round * 7) % 32)).toEqual(pageOf(100 * k + ((i + round * 7) % 32)));
      }
    }
    const s = hv.swapStats()!;
    // 96 pages, 31 frames for them: most reads come from swap, and each brings one in.
    expect(s.swapIns).toBeGreaterThan(100);
    expect(s.swapOuts).toBeGreaterThan(60);
    // Reclaim keeps free frames at the watermarks.
    expect(hv.frames.freeFrames).toBeGreaterThanOrEqual(2);
    expect(hv.audit()).toEqual([]);
  });
});

describe('the shared swap area', () => {
  it('stores identical pages of different domains once; the per-domain baseline stores each', async () => {
    const peak: Record<string, number> = {};
    for (const mode of ['shared', 'per-domain'] as const) {
      const { hv } = await host(mode);
      const a = boot(hv, 30, (i) => i);
      const b = boot(hv, 30, (i) => i); // the same contents, page for page
      for (let i = 0; i < 30; i++) {
        expect(read(hv, a, i)).toEqual(pageOf(i));
        expect(read(hv, b, i)).toEqual(pageOf(i));
      }
      expect(hv.audit()).toEqual([]);
      peak[mode] = hv.swapStats()!.diskBytesPeak;
      if (mode === 'shared') expect(hv.swapStats()!.slotsSavedByDedup).toBeGreaterThan(10);
      else expect(hv.swapStats()!.slotsSavedByDedup).toBe(0);
    }
    expect(peak['shared']).toBeLessThan(peak['per-domain']!);
  });

  it('keeps the slot of a page swapped in and not written: evicting it again writes nothing', async () => {
    let hv: Hypervisor | undefined;
    const policy = new PickPolicy();
    hv = await Hypervisor.create({
      frames: FRAMES,
      dedup: createDedup('none'),
      swap: { backend: new SharedSwap({ device: new MemorySwapDevice({ slots: 64 }), hashPage: (p) => hv!.memory.hashPage(p) }), policy, lowWatermark: 1, highWatermark: 1 },
    });
    const a = boot(hv, 8, (i) => i);
    const evict = (gfn: number): void => {
      policy.next = hv!.p2m.table(a)!.mfn(asGfn(gfn));
      expect(hv!.pager!.evictOne()).toBe(true);
      expect(hv!.p2m.table(a)!.type(asGfn(gfn))).toBe(P2mType.paged);
    };
    evict(3);
    expect(hv.swapStats()).toMatchObject({ swapOuts: 1, swapBytesWritten: PAGE_SIZE });
    expect(read(hv, a, 3)).toEqual(pageOf(3)); // swapped in: the slot stays in the swap cache
    expect(hv.swapStats()).toMatchObject({ swapIns: 1, swapSlotsUsed: 1 });
    evict(3); // unmodified: back to its slot, nothing written
    expect(hv.swapStats()).toMatchObject({ swapOuts: 1, swapBytesWritten: PAGE_SIZE, swapSlotsUsed: 1 });
    expect(read(hv, a, 3)).toEqual(pageOf(3));
    hv.writePage(a, asGfn(3), 0, Uint8Array.of(1), 0, 1); // written: the cached slot goes
    expect(hv.swapStats()!.swapSlotsUsed).toBe(0);
    evict(3); // so this eviction writes again
    expect(hv.swapStats()).toMatchObject({ swapOuts: 2, swapBytesWritten: 2 * PAGE_SIZE });
    const expected = pageOf(3);
    expected[0] = 1;
    expect(read(hv, a, 3)).toEqual(expected);
    expect(hv.audit()).toEqual([]);
  });

  it('writes a shared frame once for all its sharers, and each sharer reads it back', async () => {
    let hv: Hypervisor | undefined;
    const policy = new PickPolicy();
    hv = await Hypervisor.create({
      frames: FRAMES,
      dedup: createDedup('inline'),
      swap: { backend: new SharedSwap({ device: new MemorySwapDevice({ slots: 64 }), hashPage: (p) => hv!.memory.hashPage(p) }), policy, lowWatermark: 1, highWatermark: 1 },
    });
    const doms = [0, 1, 2].map(() => boot(hv!, 4, (i) => 50 + i)); // identical guests: shared frames
    policy.next = hv.p2m.table(doms[0]!)!.mfn(asGfn(2));
    expect(hv.p2m.rmap.count(policy.next)).toBe(3);
    expect(hv.pager!.evictOne()).toBe(true);
    expect(hv.swapStats()).toMatchObject({ swapOuts: 1, swapBytesWritten: PAGE_SIZE, swapSlotsUsed: 1 });
    for (const d of doms) expect(hv.p2m.table(d)!.type(asGfn(2))).toBe(P2mType.paged);
    expect(hv.audit()).toEqual([]);
    for (const d of doms) expect(read(hv, d, 2)).toEqual(pageOf(52));
    expect(hv.audit()).toEqual([]);
  });

  it('per-domain areas: a shared frame is stored once per sharer; a failed store rolls back the others', async () => {
    let hv: Hypervisor | undefined;
    const policy = new PickPolicy();
    const faults = new FaultPlan({ failWriteAt: [2] }); // the second store of the first eviction fails
    hv = await Hypervisor.create({
      frames: FRAMES,
      dedup: createDedup('inline'),
      swap: {
        backend: () => new SharedSwap({ device: new MemorySwapDevice({ slots: 16, faults }), hashPage: (p) => hv!.memory.hashPage(p), dedup: false }),
        policy,
        lowWatermark: 1,
        highWatermark: 1,
      },
    });
    const [a, b] = [boot(hv, 2, (i) => 70 + i), boot(hv, 2, (i) => 70 + i)];
    policy.next = hv.p2m.table(a)!.mfn(asGfn(1));
    expect(hv.pager!.evictOne()).toBe(true); // first try fails and rolls back, the retry succeeds
    expect(hv.swapStats()).toMatchObject({ evictionFailures: 1, swapSlotsUsed: 2 });
    expect(hv.audit()).toEqual([]); // no slot left behind by the failed try
    expect(read(hv, a, 1)).toEqual(pageOf(71));
    expect(read(hv, b, 1)).toEqual(pageOf(71));
    expect(hv.audit()).toEqual([]);
  });

  it('frees slots when pages are released and when a domain is destroyed', async () => {
    const { hv } = await host('shared');
    const a = boot(hv, 40, (i) => i);
    expect(hv.swapStats()!.swapSlotsUsed).toBeGreaterThan(0);
    hv.decreaseReservation(a, Array.from({ length: 20 }, (_, i) => i));
    expect(hv.audit()).toEqual([]);
    hv.destroyDomain(a);
    expect(hv.swapStats()!.swapSlotsUsed).toBe(0);
    expect(hv.audit()).toEqual([]);
  });
});

describe('swap faults', () => {
  it('a failed swap-out leaves the page in RAM; with nothing else to evict the allocation is ENOMEM, and nothing is lost', async () => {
    const { hv, faults } = await host('shared', 'clock', { writeErrorProbability: 1 });
    const a = hv.createDomain({ maxPages: 40 });
    hv.populatePhysmap(a, Array.from({ length: 30 }, (_, i) => i));
    for (let i = 0; i < 30; i++) hv.writePage(a, asGfn(i), 0, pageOf(i), 0, PAGE_SIZE);
    expect(() => hv.populatePhysmap(a, [30, 31, 32, 33, 34])).toThrow(/ENOMEM/);
    expect(hv.swapStats()!.evictionFailures).toBeGreaterThan(0);
    for (let i = 0; i < 30; i++) expect(read(hv, a, i)).toEqual(pageOf(i));
    faults.clear(); // the fault clears: the run goes on
    hv.populatePhysmap(a, [30, 31, 32, 33, 34]);
    expect(hv.domainStats(a).pagedPages).toBeGreaterThan(0);
    expect(hv.audit()).toEqual([]);
  });

  it.each([
    ['fills', { fullAfterWrites: 6 }],
    ['fails', { failWriteAt: [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26] }],
  ])('a swap area that %s midway: the refused allocation leaves every page where it was', async (_, faults: FaultPlanOptions) => {
    const { hv } = await host('shared', 'lru', faults);
    const a = hv.createDomain({ maxPages: 40 });
    hv.populatePhysmap(a, Array.from({ length: 24 }, (_, i) => i));
    for (let i = 0; i < 24; i++) hv.writePage(a, asGfn(i), 0, pageOf(i), 0, PAGE_SIZE);
    expect(hv.totals().pagedPages).toBe(0);
    const before = observableDigest(hv);
    // 12 frames more than are free: a few pages go out before the area stops taking them.
    expect(() => hv.populatePhysmap(a, Array.from({ length: 16 }, (_, i) => 24 + i))).toThrow(/ENOMEM/);
    expect(hv.swapStats()!.evictionFailures).toBeGreaterThan(0);
    expect(hv.swapStats()!.swapOuts).toBeGreaterThan(0); // some were written, then released
    expect(observableDigest(hv)).toBe(before);
    expect(hv.audit()).toEqual([]);
    for (let i = 0; i < 24; i++) expect(read(hv, a, i)).toEqual(pageOf(i));
    // What fits in the free frames still goes.
    hv.populatePhysmap(a, [24, 25, 26, 27, 28, 29]);
    expect(hv.audit()).toEqual([]);
    for (let i = 0; i < 24; i++) expect(read(hv, a, i)).toEqual(pageOf(i));
  });

  it('a failed swap-in pauses the domain and reports EIO; once cleared and unpaused the page reads right', async () => {
    const { hv, faults } = await host('shared', 'lru', { readErrorProbability: 1 });
    const a = boot(hv, 40, (i) => i); // distinct pages: booting never reads the device
    expect(hv.p2m.table(a)!.type(asGfn(0))).toBe(P2mType.paged); // LRU evicted the first pages
    expect(() => read(hv, a, 0)).toThrow(/EIO: dom 1 gfn 0: swap-in of slot \d+ failed .*domain paused/);
    expect(hv.isPaused(a)).toBe(true);
    expect(() => read(hv, a, 39)).toThrow(/EAGAIN/);
    expect(hv.swapStats()!.swapInFailures).toBe(1);
    expect(hv.audit()).toEqual([]);
    faults.clear();
    hv.unpauseDomain(a);
    for (let i = 0; i < 40; i++) expect(read(hv, a, i)).toEqual(pageOf(i));
    expect(hv.audit()).toEqual([]);
  });
});

describe("Xen's paging ops: nominate, evict, prep", () => {
  it('page a page out and back in, by hand and by the pager supplying the content', async () => {
    const { hv } = await host('shared');
    const a = boot(hv, 8, (i) => i);
    hv.pagingNominate(a, asGfn(2));
    expect(hv.p2m.table(a)!.type(asGfn(2))).toBe(P2mType.paging_out);
    expect(read(hv, a, 2)).toEqual(pageOf(2)); // still in RAM: reads do not cancel
    hv.pagingEvict(a, asGfn(2));
    expect(hv.p2m.table(a)!.type(asGfn(2))).toBe(P2mType.paged);
    hv.pagingPrep(a, asGfn(2));
    expect(hv.p2m.table(a)!.type(asGfn(2))).toBe(P2mType.ram_rw);
    expect(read(hv, a, 2)).toEqual(pageOf(2));
    // With a buffer (prep + load): the frame holds what the pager gave.
    hv.pagingNominate(a, asGfn(5));
    hv.pagingEvict(a, asGfn(5));
    hv.pagingPrep(a, asGfn(5), pageOf(500));
    expect(read(hv, a, 5)).toEqual(pageOf(500));
    expect(hv.audit()).toEqual([]);
  });

  it('a write cancels a nomination; wrong states and no swap are refused, changing nothing', async () => {
    const { hv } = await host('shared');
    const a = boot(hv, 4, (i) => i);
    hv.pagingNominate(a, asGfn(1));
    hv.writePage(a, asGfn(1), 0, Uint8Array.of(7), 0, 1);
    expect(hv.p2m.table(a)!.type(asGfn(1))).toBe(P2mType.ram_rw);
    expect(() => hv.pagingEvict(a, asGfn(1))).toThrow(/EINVAL: .* is ram_rw, not paging_out/);
    expect(() => hv.pagingPrep(a, asGfn(1))).toThrow(/EINVAL: .* not paged/);
    hv.pagingNominate(a, asGfn(3));
    expect(() => hv.pagingNominate(a, asGfn(3))).toThrow(/only a private ram_rw page/);
    expect(() => hv.pagingEvict(a, asGfn(9))).toThrow(/EINVAL: gfn 9 is outside/);
    expect(hv.audit()).toEqual([]);
    const plain = await Hypervisor.create({ frames: 16, dedup: createDedup('none') });
    const b = plain.createDomain({ maxPages: 2 });
    plain.populatePhysmap(b, [0]);
    expect(() => plain.pagingNominate(b, asGfn(0))).toThrow(/EOPNOTSUPP/);
  });
});

describe('paging ops through the hypercall ABI', () => {
  it('nominate, evict and prep as hypercalls; another guest may not', async () => {
    const { hv } = await host('shared');
    const a = boot(hv, 4, (i) => i);
    const b = boot(hv, 4, (i) => 10 + i);
    const dom0 = new HypercallClient(hv, DOMID_CONTROL);
    dom0.pagingNominate(a, asGfn(1));
    dom0.pagingEvict(a, asGfn(1));
    expect(hv.p2m.table(a)!.type(asGfn(1))).toBe(P2mType.paged);
    expect(() => new HypercallClient(hv, b).pagingPrep(a, asGfn(1))).toThrow(/EPERM/);
    expect(() => dom0.pagingEvict(a, asGfn(1))).toThrow(/EINVAL: .*not paging_out/);
    dom0.pagingPrep(a, asGfn(1));
    expect(read(hv, a, 1)).toEqual(pageOf(1));
    expect(hv.audit()).toEqual([]);
  });
});
