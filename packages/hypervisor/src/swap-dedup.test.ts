import { describe, expect, it } from 'vitest';
import { createDedup, KsmDedup } from '@pagevisor/dedup';
import { createEvictionPolicy, MemorySwapDevice, SharedSwap } from '@pagevisor/swap';
import { asGfn, P2mType, PAGE_SIZE, type DomId } from '@pagevisor/types';
import { Hypervisor } from './hypervisor.js';
import { PickPolicy } from '../tests/pick-policy.js';
import { pageOf, read } from '../tests/pages.js';
import { observableDigest } from './observable-state.js';

/** 64 frames, one shared swap area, a policy the test steers, and `strategy`. */
async function host(strategy: 'none' | 'inline') {
  let hv: Hypervisor | undefined;
  const policy = new PickPolicy();
  const area = new SharedSwap({ device: new MemorySwapDevice({ slots: 64 }), hashPage: (p) => hv!.memory.hashPage(p) });
  hv = await Hypervisor.create({ frames: 64, dedup: createDedup(strategy), swap: { backend: area, policy, lowWatermark: 1, highWatermark: 2 } });
  /** A domain whose gfn i holds pageOf(seeds[i]), in trust group `group`. */
  const guest = (seeds: readonly number[], group = 0): DomId => {
    const dom = hv.createDomain({ maxPages: 8, trustGroup: group });
    hv.populatePhysmap(dom, seeds.map((_, i) => i));
    seeds.forEach((s, i) => hv.writePage(dom, asGfn(i), 0, pageOf(s), 0, PAGE_SIZE));
    return dom;
  };
  /** Evicts the frame `dom`'s gfn maps now, as the policy would. */
  const evict = (dom: DomId, gfn: number): void => {
    policy.next = hv.p2m.table(dom)!.mfn(asGfn(gfn));
    expect(hv.pager!.evictOne()).toBe(true);
  };
  return { hv, policy, guest, evict, type: (dom: DomId, gfn: number) => hv.p2m.table(dom)!.type(asGfn(gfn)) };
}

describe('swap-in through de-duplication', () => {
  it('a frame shared by three domains goes out as one slot and comes back as one frame, shared again (the swap cache by slot)', async () => {
    const { hv, guest, evict, type } = await host('none');
    const doms = [guest([7]), guest([7]), guest([7])];
    // Share the three pages explicitly (nominate + share): one frame, three mappers.
    for (const d of doms.slice(1)) hv.share(doms[0]!, asGfn(0), hv.nominateGfn(doms[0]!, asGfn(0)), d, asGfn(0), hv.nominateGfn(d, asGfn(0)));
    const used = hv.totals().machineFramesUsed;
    evict(doms[0]!, 0);
    expect(doms.map((d) => type(d, 0))).toEqual([P2mType.paged, P2mType.paged, P2mType.paged]);
    expect(hv.swapStats()).toMatchObject({ swapOuts: 1, swapSlotsUsed: 1 });
    for (const d of doms) expect(read(hv, d, 0)).toEqual(pageOf(7));
    // The first fault read the slot into a frame; the two others mapped that frame.
    expect(hv.swapStats()).toMatchObject({ swapIns: 1, swapInsCached: 2, swapInsDeduped: 0 });
    expect(hv.totals().machineFramesUsed).toBe(used);
    expect(doms.map((d) => type(d, 0))).toEqual([P2mType.ram_shared, P2mType.ram_shared, P2mType.ram_shared]);
    expect(hv.duplicateFrames()).toBe(0);
    expect(hv.audit()).toEqual([]);
    // Evicting it again writes nothing: the frame still caches its slot.
    evict(doms[1]!, 0);
    expect(hv.swapStats()).toMatchObject({ swapOuts: 1, swapSlotsUsed: 1 });
    // A write after the next swap-in breaks the sharing for the writer only.
    expect(read(hv, doms[2]!, 0)).toEqual(pageOf(7));
    hv.writePage(doms[2]!, asGfn(0), 0, Uint8Array.of(9), 0, 1);
    expect(read(hv, doms[0]!, 0)).toEqual(pageOf(7));
    expect(read(hv, doms[1]!, 0)).toEqual(pageOf(7));
    expect(read(hv, doms[2]!, 0)[0]).toBe(9);
    expect(hv.audit()).toEqual([]);
  });

  it('a page paged out before another domain wrote its content comes back onto that frame (inline)', async () => {
    const { hv, guest, evict, type } = await host('inline');
    const a = guest([5, 6]);
    evict(a, 0);
    // b writes the same content while a's copy is out: the index cannot see a's, so b gets a frame.
    const b = guest([5]);
    const used = hv.totals().machineFramesUsed;
    expect(read(hv, a, 0)).toEqual(pageOf(5));
    expect(hv.swapStats()).toMatchObject({ swapIns: 1, swapInsDeduped: 1, swapInsCached: 0, swapSlotsUsed: 0 });
    expect(hv.totals().machineFramesUsed).toBe(used);
    expect([type(a, 0), type(b, 0)]).toEqual([P2mType.ram_shared, P2mType.ram_shared]);
    expect(hv.p2m.table(a)!.mfn(asGfn(0))).toBe(hv.p2m.table(b)!.mfn(asGfn(0)));
    expect(hv.duplicateFrames()).toBe(0);
    expect(hv.audit()).toEqual([]);
  });

  it('does not share across trust groups: the page gets a frame of its own', async () => {
    const { hv, guest, evict } = await host('inline');
    const a = guest([5], 1);
    evict(a, 0);
    const b = guest([5], 2);
    expect(read(hv, a, 0)).toEqual(pageOf(5));
    expect(hv.swapStats()).toMatchObject({ swapIns: 1, swapInsDeduped: 0 });
    expect(hv.p2m.table(a)!.mfn(asGfn(0))).not.toBe(hv.p2m.table(b)!.mfn(asGfn(0)));
    // Two frames of one content, in two trust groups: counted, and allowed.
    expect(hv.duplicateFrames()).toBe(1);
    expect(hv.audit()).toEqual([]);
  });

  it('eviction passes over a frame with sharers while a private one can go, and takes it when none can', async () => {
    const { hv, policy, guest, evict, type } = await host('inline');
    const [a, b] = [guest([7, 8]), guest([7])]; // gfn 0 of both: one frame, two mappers; a's gfn 1: private
    policy.next = hv.p2m.table(a)!.mfn(asGfn(0));
    expect(hv.pager!.evictOne()).toBe(true);
    expect([type(a, 0), type(b, 0), type(a, 1)]).toEqual([P2mType.ram_shared, P2mType.ram_shared, P2mType.paged]);
    expect(hv.totals().pagesSharing).toBe(1);
    // Only the shared frame left to evict: it goes, once for both mappers.
    evict(a, 0);
    expect([type(a, 0), type(b, 0)]).toEqual([P2mType.paged, P2mType.paged]);
    expect(hv.swapStats()).toMatchObject({ swapOuts: 2, swapSlotsUsed: 2 });
    expect(hv.audit()).toEqual([]);
    expect([read(hv, a, 0), read(hv, b, 0), read(hv, a, 1)]).toEqual([pageOf(7), pageOf(7), pageOf(8)]);
  });

  it("the audit compares a swap-cache frame with its slot's content", async () => {
    const { hv, guest, evict } = await host('none');
    const a = guest([3]);
    evict(a, 0);
    expect(read(hv, a, 0)).toEqual(pageOf(3));
    const mfn = hv.p2m.table(a)!.mfn(asGfn(0));
    hv.memory.write(mfn, 10, Uint8Array.of(0xee), 0, 1); // behind the hypervisor's back
    expect(hv.audit()).toContain(`swap: mfn ${mfn}: its content differs from swap-cache slot 0`);
  });
});

describe('unmerging on a host that pages out', () => {
  /** 64 frames, a KSM scanner and a shared area of `slots` slots; guest a's 30 pages hold one content, merged. */
  async function merged(slots: number) {
    let hv: Hypervisor | undefined;
    const ksm = new KsmDedup({ pages_to_scan: 100, sleep_millisecs: 1 });
    const area = new SharedSwap({ device: new MemorySwapDevice({ slots }), hashPage: (p) => hv!.memory.hashPage(p) });
    hv = await Hypervisor.create({ frames: 64, dedup: ksm, swap: { backend: area, policy: createEvictionPolicy('lru', { frames: 64 }), lowWatermark: 1, highWatermark: 2 } });
    const a = hv.createDomain({ maxPages: 30 });
    hv.populatePhysmap(a, Array.from({ length: 30 }, (_, i) => i));
    for (let i = 0; i < 30; i++) hv.writePage(a, asGfn(i), 0, pageOf(1), 0, PAGE_SIZE);
    hv.advise(a, asGfn(0), 30, true);
    while (ksm.stats()['full_scans']! < 2) hv.wakeDedup(ksm.nextWakeNs());
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 29 });
    // Another guest takes most of what is left: fewer free frames than the unmerge needs.
    const b = hv.createDomain({ maxPages: 40 });
    hv.populatePhysmap(b, Array.from({ length: 40 }, (_, i) => i));
    for (let i = 0; i < 40; i++) hv.writePage(b, asGfn(i), 0, pageOf(100 + i), 0, PAGE_SIZE);
    expect(hv.frames.freeFrames).toBeLessThan(29);
    return { hv, ksm, a, b };
  }

  it('MADV_UNMERGEABLE pages others out to make room instead of refusing', async () => {
    const { hv, a, b } = await merged(64);
    const paged = hv.totals().pagedPages;
    hv.advise(a, asGfn(0), 30, false);
    expect(hv.totals().pagedPages).toBeGreaterThan(paged);
    expect(hv.domainStats(a).sharedPages).toBe(0);
    expect(hv.audit()).toEqual([]);
    for (let i = 0; i < 30; i++) expect(read(hv, a, i)).toEqual(pageOf(1));
    for (let i = 0; i < 40; i++) expect(read(hv, b, i)).toEqual(pageOf(100 + i));
  });

  it('refuses with ENOMEM, changing nothing, when the swap area cannot take enough pages', async () => {
    const { hv, a } = await merged(2);
    const before = observableDigest(hv);
    expect(() => hv.advise(a, asGfn(0), 30, false)).toThrow(/madvise_unmergeable: ENOMEM: 29 frames needed to unmerge, \d+ free and no more could be paged out/);
    expect(observableDigest(hv)).toBe(before);
    expect(hv.audit()).toEqual([]);
  });
});
