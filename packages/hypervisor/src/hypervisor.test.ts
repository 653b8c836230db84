import { describe, expect, it } from 'vitest';
import { createDedup } from '@pagevisor/dedup';
import { asGfn, PAGE_SIZE, type DomId } from '@pagevisor/types';
import { Hypervisor } from './hypervisor.js';
import { MEMF_POPULATE_ON_DEMAND } from './memory-ops.js';
import { pageOf, read } from '../tests/pages.js';

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

/** A guest of `pages` pages whose page i holds content `seed(i)`. */
function boot(hv: Hypervisor, pages: number, seed: (i: number) => number): DomId {
  const dom = hv.createDomain({ maxPages: pages });
  hv.populatePhysmap(dom, range(pages));
  for (let i = 0; i < pages; i++) hv.writePage(dom, asGfn(i), 0, pageOf(seed(i)), 0, PAGE_SIZE);
  return dom;
}

async function host(strategy: 'inline' | 'none' = 'inline', frames = 1024): Promise<Hypervisor> {
  return Hypervisor.create({ frames, dedup: createDedup(strategy) });
}

describe('de-duplication across domains', () => {
  it('two guests with identical contents use the frames of one, plus the frames written since', async () => {
    const hv = await host();
    const a = boot(hv, 64, (i) => 1000 + i);
    const b = boot(hv, 64, (i) => 1000 + i);
    let t = hv.totals();
    expect(t.guestPages).toBe(128);
    expect(t.machineFramesUsed).toBe(64 + 1); // the frames of one guest and the zero frame
    expect(t.pagesShared).toBe(64);
    expect(t.pagesSharing).toBe(64);
    expect(t.savedPct).toBeCloseTo(((128 - 65) / 128) * 100, 2);

    // Writing a few bytes into 5 of b's pages costs exactly 5 more frames.
    for (const g of [0, 7, 20, 33, 63]) hv.writePage(b, asGfn(g), 100, Uint8Array.of(1, 2, 3), 0, 3);
    t = hv.totals();
    expect(t.machineFramesUsed).toBe(65 + 5);
    expect(t.cowFaults).toBe(5);
    expect(t.zeroFaults).toBe(64); // a's boot wrote over its 64 zero-frame mappings
    expect(t.pagesShared).toBe(59);
    expect(hv.domainStats(b)).toMatchObject({ privatePages: 5, sharedPages: 59, cowFaults: 5 });
    expect(hv.domainStats(a)).toMatchObject({ privatePages: 0, sharedPages: 64, cowFaults: 0, zeroFaults: 64 });
    expect(hv.audit()).toEqual([]);
  });

  it('guests with nothing in common save nothing', async () => {
    const hv = await host();
    boot(hv, 50, (i) => i);
    boot(hv, 50, (i) => 100 + i);
    const t = hv.totals();
    expect(t.pagesShared).toBe(0);
    expect(t.pagesSharing).toBe(0);
    expect(t.zeroPages).toBe(0);
    expect(t.machineFramesUsed).toBe(100 + 1); // their own frames and the (unused) zero frame
    expect(hv.audit()).toEqual([]);
  });

  it('a guest writing to a shared page never changes what any other guest reads', async () => {
    const hv = await host();
    const doms = [0, 1, 2].map(() => boot(hv, 8, (i) => 7 + i));
    const original = read(hv, doms[0]!, 3);
    hv.writePage(doms[1]!, asGfn(3), 0, Uint8Array.of(9, 9, 9, 9), 0, 4);
    hv.writePage(doms[2]!, asGfn(3), 0, pageOf(555), 0, PAGE_SIZE);
    expect(read(hv, doms[0]!, 3)).toEqual(original);
    const expected1 = original.slice();
    expected1.set([9, 9, 9, 9], 0);
    expect(read(hv, doms[1]!, 3)).toEqual(expected1);
    expect(read(hv, doms[2]!, 3)).toEqual(pageOf(555));
    expect(hv.audit()).toEqual([]);
  });

  it('a frame shared at many gfns (a heavy list) keeps every reader right through writes and the destruction of one sharer', async () => {
    const hv = await host('inline', 2048);
    // Two guests whose every page holds one content: one frame, 1024 mappings at 512 gfns each.
    const a = boot(hv, 512, () => 7);
    const b = boot(hv, 512, () => 7);
    expect(hv.totals()).toMatchObject({ pagesShared: 1, pagesSharing: 1023 });
    expect(hv.audit()).toEqual([]);
    // Each guest writes new content over a scattered third of its pages, some twice.
    const expected = new Map<string, number>();
    for (const [dom, salt] of [[a, 1], [b, 2]] as const) {
      for (let k = 0; k < 512; k += 3) {
        const g = (k * 97) % 512;
        hv.writePage(dom, asGfn(g), 0, pageOf(100 + g * salt), 0, PAGE_SIZE);
        expected.set(`${dom}:${g}`, 100 + g * salt);
      }
    }
    for (const dom of [a, b]) {
      for (let g = 0; g < 512; g++) expect(read(hv, dom, g)).toEqual(pageOf(expected.get(`${dom}:${g}`) ?? 7));
    }
    expect(hv.audit()).toEqual([]);
    hv.destroyDomain(a);
    for (let g = 0; g < 512; g++) expect(read(hv, b, g)).toEqual(pageOf(expected.get(`${b}:${g}`) ?? 7));
    expect(hv.audit()).toEqual([]);
  });

  it('the last sharer keeps its frame on write instead of copying', async () => {
    const hv = await host();
    const a = boot(hv, 1, () => 42);
    const b = boot(hv, 1, () => 42);
    expect(hv.totals().machineFramesUsed).toBe(2);
    hv.writePage(a, asGfn(0), 0, Uint8Array.of(1), 0, 1); // copies: b still shares
    expect(hv.cow.copied).toBe(1);
    expect(hv.totals().machineFramesUsed).toBe(3);
    hv.writePage(b, asGfn(0), 0, Uint8Array.of(2), 0, 1); // b is the last sharer: keeps it
    expect(hv.cow.kept).toBe(1);
    expect(hv.totals().machineFramesUsed).toBe(3);
    expect(read(hv, b, 0)[0]).toBe(2);
    expect(hv.audit()).toEqual([]);
  });

  it('inline populate maps the zero frame; a write to it allocates', async () => {
    const hv = await host();
    const d = hv.createDomain({ maxPages: 32 });
    hv.populatePhysmap(d, range(32));
    expect(hv.totals()).toMatchObject({ guestPages: 32, zeroPages: 32, machineFramesUsed: 1 });
    expect(read(hv, d, 5).every((x) => x === 0)).toBe(true);
    hv.writePage(d, asGfn(5), 10, Uint8Array.of(7), 0, 1);
    expect(hv.cow.zeroAllocated).toBe(1);
    expect(hv.totals()).toMatchObject({ zeroPages: 31, machineFramesUsed: 2, cowFaults: 0, zeroFaults: 1 });
    // Writing zeros over a whole page maps the zero frame again and frees the private one.
    hv.writePage(d, asGfn(5), 0, new Uint8Array(PAGE_SIZE), 0, PAGE_SIZE);
    expect(hv.totals()).toMatchObject({ zeroPages: 32, machineFramesUsed: 1 });
    expect(hv.audit()).toEqual([]);
  });

  it('without dedup, populate allocates a zeroed frame per page and nothing is shared', async () => {
    const hv = await host('none');
    const a = boot(hv, 16, () => 3);
    const b = boot(hv, 16, () => 3);
    expect(hv.totals()).toMatchObject({ guestPages: 32, machineFramesUsed: 33, pagesShared: 0, zeroPages: 0 });
    expect(read(hv, a, 2)).toEqual(read(hv, b, 2));
    expect(hv.audit()).toEqual([]);
  });

  it('counts resident frames whose content another resident frame holds (duplicateFrames)', async () => {
    const none = await host('none');
    // 24 frames of content 3, 16 of content 4, the zero frame: 23 + 15 duplicates.
    boot(none, 16, () => 3);
    boot(none, 16, (i) => (i < 8 ? 3 : 4));
    boot(none, 8, () => 4);
    expect(none.duplicateFrames()).toBe(23 + 15);
    const inline = await host('inline');
    boot(inline, 16, () => 3);
    boot(inline, 16, (i) => (i < 8 ? 3 : 4));
    expect(inline.duplicateFrames()).toBe(0);
    // A page of zeros in a frame of its own duplicates the zero frame.
    const d = inline.createDomain({ maxPages: 1 });
    inline.populatePhysmap(d, [0]);
    inline.writePage(d, asGfn(0), 0, Uint8Array.of(1), 0, 1);
    inline.writePage(d, asGfn(0), 0, Uint8Array.of(0), 0, 1);
    expect(inline.duplicateFrames()).toBe(1);
  });

  it('populate-on-demand pages read zeros without a frame and get one on first write', async () => {
    const hv = await host('none');
    const d = hv.createDomain({ maxPages: 8 });
    hv.populatePhysmap(d, [0, 4], 2, MEMF_POPULATE_ON_DEMAND);
    expect(hv.domainStats(d)).toMatchObject({ totPages: 8, podPages: 8, privatePages: 0 });
    expect(hv.totals().machineFramesUsed).toBe(1);
    expect(read(hv, d, 6).every((x) => x === 0)).toBe(true);
    hv.writePage(d, asGfn(6), 4095, Uint8Array.of(5), 0, 1);
    expect(hv.domainStats(d)).toMatchObject({ podPages: 7, privatePages: 1 });
    expect(read(hv, d, 6)[4095]).toBe(5);
    expect(hv.audit()).toEqual([]);
  });

  it('decrease_reservation and domain destruction give every frame back', async () => {
    const hv = await host();
    const a = boot(hv, 32, (i) => i % 4);
    const b = boot(hv, 32, (i) => i);
    expect(hv.decreaseReservation(a, [0, 4, 8], 2)).toBe(3);
    expect(hv.currentReservation(a)).toBe(20);
    expect(hv.audit()).toEqual([]);
    hv.destroyDomain(b);
    hv.destroyDomain(a);
    expect(hv.totals()).toMatchObject({ guestPages: 0, machineFramesUsed: 1, pagesShared: 0 });
    expect(hv.dedup.size).toBe(1); // only the zero frame stays indexed
    expect(hv.audit()).toEqual([]);
  });

  it('increase_reservation picks the lowest free aligned gfns', async () => {
    const hv = await host();
    const d = hv.createDomain({ maxPages: 16 });
    hv.populatePhysmap(d, [0, 2]);
    expect(hv.increaseReservation(d, 2, 1)).toEqual([4, 6]);
    expect(hv.increaseReservation(d, 3, 0)).toEqual([1, 3, 8]);
    expect(hv.currentReservation(d)).toBe(9);
    expect(hv.maximumReservation(d)).toBe(16);
  });
});

describe('explicit sharing (nominate, share)', () => {
  it('merges two equal pages; the client handle stops working after the share', async () => {
    const hv = await host('none');
    const a = boot(hv, 2, () => 77);
    const b = boot(hv, 2, () => 77);
    const ha = hv.nominateGfn(a, asGfn(1));
    const hb = hv.nominateGfn(b, asGfn(1));
    expect(ha).not.toBe(hb);
    const used = hv.totals().machineFramesUsed;
    hv.share(a, asGfn(1), ha, b, asGfn(1), hb);
    expect(hv.totals()).toMatchObject({ machineFramesUsed: used - 1, pagesShared: 1, pagesSharing: 1 });
    expect(() => hv.share(a, asGfn(1), ha, b, asGfn(1), hb)).toThrow(/client handle .* is not current/);
    expect(read(hv, b, 1)).toEqual(pageOf(77));
    expect(hv.audit()).toEqual([]);
  });

  it('refuses pages that differ and stale handles', async () => {
    const hv = await host('none');
    const a = boot(hv, 1, () => 1);
    const b = boot(hv, 1, () => 2);
    const ha = hv.nominateGfn(a, asGfn(0));
    const hb = hv.nominateGfn(b, asGfn(0));
    expect(() => hv.share(a, asGfn(0), ha, b, asGfn(0), hb)).toThrow(/differ in content/);
    expect(() => hv.share(a, asGfn(0), ha + 100, b, asGfn(0), hb)).toThrow(/source handle/);
    expect(read(hv, a, 0)).toEqual(pageOf(1));
    expect(read(hv, b, 0)).toEqual(pageOf(2));
    expect(hv.audit()).toEqual([]);
  });
});

describe('simulated cost', () => {
  it('charges a copy-on-write fault to the writing domain', async () => {
    const hv = await host();
    const a = boot(hv, 1, () => 5);
    const b = boot(hv, 1, () => 5);
    const before = hv.domainStats(b).cpuNs;
    hv.writePage(b, asGfn(0), 0, Uint8Array.of(1), 0, 1);
    const c = hv.costModel;
    expect(hv.domainStats(b).cpuNs - before).toBe(c.faultNs + c.frameAllocNs + c.pageCopyNs);
    expect(hv.domainStats(a).cpuNs).toBeLessThan(hv.domainStats(b).cpuNs);
  });
});
