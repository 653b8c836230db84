import { describe, expect, it } from 'vitest';
import { P2M_MAX_MFN } from '@pagevisor/p2m';
import { asGfn, HypervisorError, P2mType, PAGE_SIZE } from '@pagevisor/types';
import { Hypervisor } from './hypervisor.js';
import { pageOf, read } from '../tests/pages.js';

/** 2^30 frames of 4 KiB: 4 TiB, the largest host. */
const MAX_FRAMES = 2 ** 30;

/** The HypervisorError `fn` throws. */
function refusal(fn: () => unknown): HypervisorError {
  try {
    fn();
  } catch (e) {
    if (e instanceof HypervisorError) return e;
    throw e;
  }
  throw new Error('not refused');
}

describe('the largest host: 2^30 frames (4 TiB)', () => {
  it('refuses one frame more, naming the limit', async () => {
    expect(P2M_MAX_MFN + 1).toBe(MAX_FRAMES);
    for (const frames of [MAX_FRAMES + 1, 2 ** 31, 1]) {
      const e = await Hypervisor.create({ frames }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(HypervisorError);
      expect((e as HypervisorError).errnoName).toBe('EINVAL');
      expect((e as HypervisorError).detail).toBe(`frames must be an integer in [2, 2^30] (4 TiB, what a p2m entry holds), got ${frames}`);
    }
  });

  it('is built cheaply (its arrays are zeros, taken lazily), and a domain of 2^30 gfns writes its last gfn', async () => {
    const before = process.memoryUsage().rss;
    const started = performance.now();
    const hv = await Hypervisor.create({ frames: MAX_FRAMES });
    expect([hv.frames.totalFrames, hv.frames.freeFrames]).toEqual([MAX_FRAMES, MAX_FRAMES - 1]);
    // A domain's gfns address the whole machine, and no more.
    const e = refusal(() => hv.createDomain({ maxPages: 4, gfnCount: MAX_FRAMES + 1 }));
    expect([e.errnoName, e.detail]).toEqual(['EINVAL', `gfnCount must be an integer in [0, ${MAX_FRAMES}], got ${MAX_FRAMES + 1}`]);
    const dom = hv.createDomain({ maxPages: 4, gfnCount: MAX_FRAMES });
    const last = MAX_FRAMES - 1;
    hv.populatePhysmap(dom, [last]);
    hv.writePage(dom, asGfn(last), 0, pageOf(42), 0, PAGE_SIZE);
    expect(read(hv, dom, last)).toEqual(pageOf(42));
    const table = hv.p2m.table(dom)!;
    expect([table.type(asGfn(last)), table.populated, hv.frames.gfn(table.mfn(asGfn(last)))]).toEqual([P2mType.ram_rw, 1, last]);
    expect(performance.now() - started).toBeLessThan(20_000);
    // Frame table, buddy, reverse map, index and a 2^30-gfn p2m: 20 GiB of arrays, a few hundred MiB touched.
    expect(hv.metadataBytes()).toBeGreaterThan(16 * 2 ** 30);
    expect(process.memoryUsage().rss - before).toBeLessThan(2 ** 30);
  });

  it('maps, shares and unshares frames above 2^28, and gfns up to 2^30 - 1, on a host whose buddy hands out its top frames first', async () => {
    const before = process.memoryUsage().rss;
    // 2^30 - 1 frames carve into blocks of orders 0, 1, 2, ... at the top: the smallest, the top
    // ones, are split first.
    const hv = await Hypervisor.create({ frames: MAX_FRAMES - 1 });
    expect(hv.zeroMfn).toBe(MAX_FRAMES - 2);
    // Two domains of 2^30 gfns each: the 2^31 reverse-map ids, all taken.
    const a = hv.createDomain({ maxPages: 8, gfnCount: MAX_FRAMES });
    const b = hv.createDomain({ maxPages: 8, gfnCount: MAX_FRAMES });
    const ga = MAX_FRAMES - 1;
    const gb = MAX_FRAMES - 2;
    hv.populatePhysmap(a, [ga, 5]);
    hv.populatePhysmap(b, [gb, 5]);
    hv.writePage(a, asGfn(ga), 0, pageOf(7), 0, PAGE_SIZE);
    hv.writePage(a, asGfn(5), 0, pageOf(8), 0, PAGE_SIZE);
    // The same contents in b, at another gfn and at the same one: one frame each, shared.
    hv.writePage(b, asGfn(gb), 0, pageOf(7), 0, PAGE_SIZE);
    hv.writePage(b, asGfn(5), 0, pageOf(8), 0, PAGE_SIZE);
    const ta = hv.p2m.table(a)!;
    const tb = hv.p2m.table(b)!;
    const m7 = ta.mfn(asGfn(ga));
    const m8 = ta.mfn(asGfn(5));
    expect(m7).toBeGreaterThan(2 ** 28);
    expect(m8).toBeGreaterThan(2 ** 28);
    expect([tb.mfn(asGfn(gb)), tb.mfn(asGfn(5))]).toEqual([m7, m8]);
    for (const [t, g] of [[ta, ga], [tb, gb], [ta, 5], [tb, 5]] as const) expect(t.type(asGfn(g))).toBe(P2mType.ram_shared);
    expect([hv.p2m.rmap.count(m7), hv.p2m.rmap.count(m8), hv.frames.refcount(m7), hv.frames.refcount(m8)]).toEqual([2, 2, 2, 2]);
    const mappers: [number, number][] = [];
    hv.p2m.rmap.forEach(m7, (d, g) => mappers.push([d, g]));
    expect(mappers.sort((x, y) => x[0] - y[0])).toEqual([[a, ga], [b, gb]]);
    // A write breaks the sharing: b gets a frame of its own, a keeps the shared one's content.
    hv.writePage(b, asGfn(gb), 0, Uint8Array.of(1, 2, 3), 0, 3);
    const own = tb.mfn(asGfn(gb));
    expect([own > 2 ** 28, own !== m7, tb.type(asGfn(gb)), hv.p2m.rmap.count(m7)]).toEqual([true, true, P2mType.ram_rw, 1]);
    expect(read(hv, a, ga)).toEqual(pageOf(7));
    const want = pageOf(7);
    want.set([1, 2, 3]);
    expect(read(hv, b, gb)).toEqual(want);
    expect(read(hv, b, 5)).toEqual(pageOf(8));
    expect(hv.totals()).toMatchObject({ guestPages: 4, pagesShared: 1, pagesSharing: 1 });
    // A third domain finds no reverse-map ids left for 2^30 gfns.
    expect(refusal(() => hv.createDomain({ maxPages: 1, gfnCount: MAX_FRAMES })).errnoName).toBe('ENOMEM');
    expect(process.memoryUsage().rss - before).toBeLessThan(2 ** 30);
  });
});
