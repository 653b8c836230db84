import { describe, expect, it } from 'vitest';
import { EsxDedup, InlineDedup, type EsxDedupOptions } from '@pagevisor/dedup';
import { asGfn, HypervisorError, NS_PER_MS, NS_PER_S, PAGE_SIZE, Prng, type DomId } from '@pagevisor/types';
import { Hypervisor } from './hypervisor.js';
import { MEMF_POPULATE_ON_DEMAND } from './memory-ops.js';
import { read } from '../tests/pages.js';

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

const pool = new Map<number, Uint8Array>();

/** Content `c` of a small pool (a fresh copy); content 0 is all zeros. */
function content(c: number): Uint8Array {
  let p = pool.get(c);
  if (p === undefined) {
    p = new Uint8Array(PAGE_SIZE);
    if (c !== 0) new Prng(c).fillBytes(p);
    pool.set(c, p);
  }
  return p.slice();
}

/** Expects `dom`'s page `gfn` to hold `expected` (a byte compare first: toEqual on 4 KiB is slow). */
function expectPage(hv: Hypervisor, dom: DomId, gfn: number, expected: Uint8Array): void {
  const actual = read(hv, dom, gfn);
  if (!Buffer.from(actual.buffer).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength))) {
    expect(actual, `dom ${dom} gfn ${gfn}`).toEqual(expected);
  }
}

/** A domain of `pages` pages, page i holding content(contentOf(i)). */
function boot(hv: Hypervisor, pages: number, contentOf: (i: number) => number): DomId {
  const dom = hv.createDomain({ maxPages: pages });
  hv.populatePhysmap(dom, range(pages));
  for (let i = 0; i < pages; i++) hv.writePage(dom, asGfn(i), 0, content(contentOf(i)), 0, PAGE_SIZE);
  return dom;
}

async function esxHost(opts: EsxDedupOptions = {}, frames = 1024): Promise<Hypervisor & { dedup: EsxDedup }> {
  const hv = await Hypervisor.create({ frames, dedup: new EsxDedup(opts) });
  return hv as Hypervisor & { dedup: EsxDedup };
}

/** Wakes the scanner at every due time up to `endNs`, auditing after each wake-up; returns the wake-ups done. */
function runUntil(hv: Hypervisor, endNs: number, stop: () => boolean = () => false): number {
  let wakes = 0;
  for (let t = hv.dedup.nextWakeNs!(); t <= endNs && !stop(); t = hv.dedup.nextWakeNs!()) {
    hv.dedup.wake!(t);
    wakes++;
    const problems = hv.audit();
    if (problems.length > 0) throw new Error(`audit after the wake-up at ${t} ns: ${problems.join('; ')}`);
  }
  return wakes;
}

describe('EsxDedup in the hypervisor', () => {
  it('on static contents ends with one frame per distinct content plus the zero frame, as inline does', async () => {
    // 3 guests of 96 pages over 20 contents (content 0: zeros), each guest in its own order.
    const contentOf = (dom: number) => (i: number) => (i * 7 + dom * 5) % 20;
    const hv = await esxHost({ scanRatePerDomainPagesPerS: 1000, seed: 7 });
    const doms = [1, 2, 3].map((d) => boot(hv, 96, contentOf(d)));
    expect(hv.totals().machineFramesUsed).toBe(3 * 96 + 1); // nothing shared yet, zeros included
    expect(hv.dedup.nextWakeNs()).toBe(Infinity); // nothing marked mergeable
    for (const d of doms) hv.setDomainMergeable(d, true);

    const converged = () => hv.totals().machineFramesUsed === 19 + 1;
    runUntil(hv, 60 * NS_PER_S, converged);
    expect(converged()).toBe(true);
    const s = hv.dedup.stats();
    expect(s.zero_merges).toBeGreaterThan(0);
    expect(s.shared_frames).toBe(19);
    expect(s.hint_hits).toBeGreaterThan(0);
    expect(hv.totals().zeroPages).toBe(15); // 5 zero pages a guest: i*7 + 5d ≡ 0 (mod 20)
    for (const [k, d] of doms.entries()) {
      for (let i = 0; i < 96; i++) expectPage(hv, d, i, content(contentOf(k + 1)(i)));
    }
    // Scanning on changes nothing more.
    const used = hv.totals().machineFramesUsed;
    runUntil(hv, hv.dedup.nextWakeNs() + 5 * NS_PER_S);
    expect(hv.totals().machineFramesUsed).toBe(used);

    const inline = await Hypervisor.create({ frames: 1024, dedup: new InlineDedup() });
    [1, 2, 3].forEach((d) => boot(inline, 96, contentOf(d)));
    expect(inline.totals().machineFramesUsed).toBe(used);
  });

  it('holds the per-domain rate when the global rate does not bind', async () => {
    const hv = await esxHost({ scanRatePerDomainPagesPerS: 500, scanRateGlobalPagesPerS: 10_000, wakeIntervalMs: 100 });
    const doms = [0, 1, 2].map((k) => boot(hv, 200, (i) => 1 + ((i + k) % 50)));
    for (const d of doms) hv.setDomainMergeable(d, true);
    expect(runUntil(hv, 10 * NS_PER_S)).toBe(100);
    for (const d of doms) expect(hv.dedup.domainStats(d).pages_scanned).toBe(500 * 10);
    expect(hv.dedup.stats().pages_scanned).toBe(3 * 500 * 10);
  });

  it('shares the global rate in turn when it binds, and carries fractions of a page over', async () => {
    const hv = await esxHost({ scanRatePerDomainPagesPerS: 500, scanRateGlobalPagesPerS: 1000, wakeIntervalMs: 100 });
    const doms = [0, 1, 2].map((k) => boot(hv, 200, (i) => 1 + ((i + k) % 50)));
    for (const d of doms) hv.setDomainMergeable(d, true);
    runUntil(hv, 10 * NS_PER_S);
    expect(hv.dedup.stats().pages_scanned).toBe(1000 * 10);
    for (const d of doms) {
      const n = hv.dedup.domainStats(d).pages_scanned!;
      expect(Math.abs(n - (1000 * 10) / 3)).toBeLessThanOrEqual(1);
    }

    // 15 pages/s at 10 wake-ups a second is 1.5 pages a wake-up.
    const slow = await esxHost({ scanRatePerDomainPagesPerS: 15, wakeIntervalMs: 100 });
    const d = boot(slow, 64, (i) => i + 1);
    slow.setDomainMergeable(d, true);
    runUntil(slow, 20 * NS_PER_S);
    expect(Math.abs(slow.dedup.domainStats(d).pages_scanned! - 15 * 20)).toBeLessThanOrEqual(1);
  });

  it('never scans faster than the rates, however late the wake-ups come', async () => {
    const hv = await esxHost({ scanRatePerDomainPagesPerS: 100, wakeIntervalMs: 100 });
    const d = boot(hv, 64, (i) => i + 1);
    hv.setDomainMergeable(d, true);
    // Woken once a second instead of ten times: one interval's worth each time.
    for (let t = 1; t <= 10; t++) hv.dedup.wake!(t * NS_PER_S);
    expect(hv.dedup.stats().pages_scanned).toBe(10 * 10);
    expect(hv.dedup.nextWakeNs!()).toBe(10 * NS_PER_S + 100 * NS_PER_MS);
  });

  it('a guest writing to a merged page reads its own data and never changes another guest', async () => {
    const hv = await esxHost({ scanRatePerDomainPagesPerS: 2000 });
    const a = boot(hv, 32, (i) => 1 + (i % 8));
    const b = boot(hv, 32, (i) => 1 + (i % 8));
    hv.setDomainMergeable(a, true);
    hv.setDomainMergeable(b, true);
    runUntil(hv, 60 * NS_PER_S, () => hv.totals().machineFramesUsed === 8 + 1);
    expect(hv.totals().machineFramesUsed).toBe(9);

    const mine = Uint8Array.of(0xde, 0xad, 0xbe, 0xef);
    hv.writePage(a, asGfn(3), 100, mine, 0, mine.length);
    hv.writePage(b, asGfn(11), 0, content(0), 0, PAGE_SIZE); // a whole page of zeros
    const expectA = content(1 + 3);
    expectA.set(mine, 100);
    expectPage(hv, a, 3, expectA);
    expectPage(hv, b, 3, content(1 + 3));
    expectPage(hv, a, 11, content(1 + 3)); // 11 % 8 = 3: same content as gfn 3 had
    expectPage(hv, b, 11, content(0));
    expect(hv.totals().cowFaults).toBe(2);
    expect(hv.audit()).toEqual([]);

    // Scanning on: b's page of zeros goes to the zero frame, a's changed page stays its own.
    runUntil(hv, hv.dedup.nextWakeNs() + 10 * NS_PER_S);
    expect(hv.totals().zeroPages).toBe(1);
    expect(hv.totals().machineFramesUsed).toBe(8 + 1 + 1);
    expectPage(hv, a, 3, expectA);
    for (let i = 0; i < 32; i++) {
      if (i !== 3) expectPage(hv, a, i, content(1 + (i % 8)));
      if (i !== 11) expectPage(hv, b, i, content(1 + (i % 8)));
    }
  });

  it('drops a hint whose page changed, and merges with a hint whose page did not', async () => {
    // One page a domain a wake-up; domains take turns being first.
    const hv = await esxHost({ scanRatePerDomainPagesPerS: 10, wakeIntervalMs: 100 });
    const a = boot(hv, 1, () => 5);
    hv.setDomainMergeable(a, true);
    runUntil(hv, 100 * NS_PER_MS);
    expect(hv.dedup.stats()).toMatchObject({ hints: 1, pages_scanned: 1 });

    // a's page changes under its hint (a private page: no fault, the hint does not know).
    hv.writePage(a, asGfn(0), 0, content(6), 0, PAGE_SIZE);
    const b = boot(hv, 1, () => 5);
    hv.setDomainMergeable(b, true);
    runUntil(hv, 200 * NS_PER_MS); // b first: a's hint of content 5 is stale; then a: a new hint
    expect(hv.dedup.stats()).toMatchObject({ hints: 2, hint_stale: 1, hint_hits: 0, pages_merged: 0 });
    expect(hv.totals().machineFramesUsed).toBe(3);

    hv.writePage(a, asGfn(0), 0, content(5), 0, PAGE_SIZE);
    runUntil(hv, 300 * NS_PER_MS); // a first: its own hint (content 6) is stale; b's hint matches
    expect(hv.dedup.stats()).toMatchObject({ hints: 0, hint_stale: 2, hint_hits: 1, pages_merged: 1, shared_frames: 1 });
    expect(hv.dedup.domainStats(b).merged).toBe(1);
    expect(hv.totals().machineFramesUsed).toBe(2);
    expectPage(hv, b, 0, content(5));
  });

  it('merges only advised ranges, and unmerges a range advised unmergeable', async () => {
    const hv = await esxHost({ scanRatePerDomainPagesPerS: 2000 });
    const a = boot(hv, 40, (i) => 1 + (i % 4));
    hv.advise(a, asGfn(0), 20, true);
    expect(hv.dedup.domainStats(a).mergeable_pages).toBe(20);
    runUntil(hv, 30 * NS_PER_S, () => hv.totals().machineFramesUsed === 4 + 20 + 1);
    expect(hv.totals().machineFramesUsed).toBe(4 + 20 + 1);
    expect(hv.domainStats(a)).toMatchObject({ privatePages: 20, sharedPages: 20 });

    hv.advise(a, asGfn(0), 10, false);
    expect(hv.dedup.stats().unmerged).toBeGreaterThan(0);
    runUntil(hv, hv.dedup.nextWakeNs() + 5 * NS_PER_S);
    // Pages 0..9 have frames of their own again; 10..19 still share 4 frames.
    expect(hv.domainStats(a)).toMatchObject({ privatePages: 30, sharedPages: 10 });
    expect(hv.totals().machineFramesUsed).toBe(30 + 4 + 1);

    hv.setDomainMergeable(a, true);
    hv.setDomainMergeable(a, false);
    expect(hv.dedup.nextWakeNs()).toBe(Infinity);
    expect(hv.totals()).toMatchObject({ pagesShared: 0, zeroPages: 0, machineFramesUsed: 40 + 1 });
    expect(hv.dedup.stats()).toMatchObject({ hints: 0, shared_frames: 0, mergeable_pages: 0 });
    for (let i = 0; i < 40; i++) expectPage(hv, a, i, content(1 + (i % 4)));
    expect(hv.audit()).toEqual([]);
  });

  it('refuses an unmerge with ENOMEM, changing nothing, when fewer frames are free than it needs', async () => {
    const hv = await esxHost({ scanRatePerDomainPagesPerS: 2000 }, 96);
    // 4 zero pages and 16 pages of one content, in two domains.
    const a = boot(hv, 12, (i) => (i < 4 ? 0 : 1));
    const b = boot(hv, 8, () => 1);
    hv.setDomainMergeable(a, true);
    hv.setDomainMergeable(b, true);
    runUntil(hv, 30 * NS_PER_S, () => hv.totals().machineFramesUsed === 2);
    expect(hv.totals()).toMatchObject({ machineFramesUsed: 2, zeroPages: 4 });
    // a's 8 sharers and 4 zero pages need 12 frames (b keeps sharing the frame): leave 11 free, and one in a domain that can go.
    const spare = boot(hv, 1, () => 9);
    boot(hv, hv.frames.freeFrames - 11, (i) => 100 + i);
    expect(hv.frames.freeFrames).toBe(11);
    const snapshot = () => ({
      stats: hv.dedup.stats(),
      a: hv.dedup.domainStats(a),
      totals: hv.totals(),
      free: hv.frames.freeFrames,
      p2m: [a, b].map((d) => range(hv.p2m.table(d)!.size).map((g) => [hv.p2m.table(d)!.type(asGfn(g)), hv.p2m.table(d)!.mfn(asGfn(g))])),
    });
    const before = snapshot();
    const refused = (fn: () => void, message: string): void => {
      expect(fn).toThrow(HypervisorError);
      expect(fn).toThrow(message);
      expect(snapshot()).toEqual(before);
      expect(hv.audit()).toEqual([]);
      for (let i = 0; i < 12; i++) expectPage(hv, a, i, content(i < 4 ? 0 : 1));
      for (let i = 0; i < 8; i++) expectPage(hv, b, i, content(1));
    };
    refused(() => hv.setDomainMergeable(a, false), 'set_memory_merge: ENOMEM: 12 frames needed to unmerge, 11 free');
    refused(() => hv.advise(a, asGfn(0), 12, false), 'madvise_unmergeable: ENOMEM: 12 frames needed to unmerge, 11 free');
    hv.destroyDomain(spare);
    hv.advise(a, asGfn(0), 12, false);
    expect(hv.frames.freeFrames).toBe(0);
    expect(hv.dedup.stats()).toMatchObject({ unmerged: 12, mergeable_pages: 8 });
    expect(hv.domainStats(a)).toMatchObject({ privatePages: 12, sharedPages: 0 });
    expect(hv.audit()).toEqual([]);
    for (let i = 0; i < 12; i++) expectPage(hv, a, i, content(i < 4 ? 0 : 1));
  });

  it('forgets a destroyed domain: its hints go, frames it shared stay with the others', async () => {
    const hv = await esxHost({ scanRatePerDomainPagesPerS: 2000 });
    const a = boot(hv, 16, (i) => 1 + i);
    const b = boot(hv, 16, (i) => 1 + (i % 8));
    hv.setDomainMergeable(a, true);
    hv.setDomainMergeable(b, true);
    runUntil(hv, 30 * NS_PER_S, () => hv.totals().machineFramesUsed === 16 + 1);
    const c = boot(hv, 8, (i) => 100 + i);
    hv.setDomainMergeable(c, true);
    runUntil(hv, hv.dedup.nextWakeNs() + 2 * NS_PER_S);
    expect(hv.dedup.domainStats(c).hints).toBe(8);
    hv.destroyDomain(c);
    hv.destroyDomain(a);
    expect(hv.audit()).toEqual([]);
    expect(hv.dedup.stats().hints).toBe(0);
    expect(hv.dedup.domainStats(a).pages_scanned).toBe(0);
    expect(hv.totals().machineFramesUsed).toBe(8 + 1);
    for (let i = 0; i < 16; i++) expectPage(hv, b, i, content(1 + (i % 8)));
  });

  it('counts draws of pages without a frame as skipped, not scanned', async () => {
    // 5 draws a wake-up (rate x interval), fewer than the 8 candidates.
    const hv = await esxHost({ scanRatePerDomainPagesPerS: 50 });
    const d = hv.createDomain({ maxPages: 8 });
    hv.populatePhysmap(d, range(4));
    hv.populatePhysmap(d, range(4, 4), 0, MEMF_POPULATE_ON_DEMAND);
    hv.setDomainMergeable(d, true);
    runUntil(hv, 10 * NS_PER_S);
    const s = hv.dedup.stats();
    expect(s.pages_scanned + s.pages_skipped).toBe(500);
    expect(s.pages_skipped).toBeGreaterThan(200);
    expect(s.pages_skipped).toBeLessThan(300);
    expect(s.zero_merges).toBe(4); // the 4 zeroed frames went to the zero frame
    expect(hv.totals().machineFramesUsed).toBe(1);
  });

  it('refuses advice for a domain that does not exist or a range outside it', async () => {
    const hv = await esxHost();
    const a = boot(hv, 4, (i) => i + 1);
    expect(() => hv.dedup.advise(99 as DomId, asGfn(0), 1, true)).toThrow(HypervisorError);
    expect(() => hv.dedup.advise(a, asGfn(2), 3, true)).toThrow(/outside dom/);
    expect(hv.dedup.domainStats(a).mergeable_pages).toBe(0);
  });

  it('a guest always reads back what it last wrote under random writes and scanning', async () => {
    for (const seed of [1, 2, 3, 4]) {
      const prng = new Prng(seed);
      const hv = await esxHost({ scanRatePerDomainPagesPerS: 400, seed, wakeIntervalMs: 10, populateZero: seed % 2 === 0 }, 512);
      const doms = [0, 1, 2].map(() => boot(hv, 24, () => 0));
      const model = doms.map(() => range(24).map(() => content(0)));
      hv.setDomainMergeable(doms[0]!, true);
      hv.advise(doms[1]!, asGfn(4), 16, true);
      hv.setDomainMergeable(doms[2]!, true);
      for (let step = 0; step < 600; step++) {
        const k = prng.nextInt(3);
        const g = prng.nextInt(24);
        const r = prng.nextInt(10);
        if (r < 4) {
          const c = content(prng.nextInt(6));
          hv.writePage(doms[k]!, asGfn(g), 0, c, 0, PAGE_SIZE);
          model[k]![g] = c;
        } else if (r < 6) {
          const bytes = Uint8Array.of(prng.nextInt(256), prng.nextInt(256));
          const off = prng.nextInt(PAGE_SIZE - 2);
          hv.writePage(doms[k]!, asGfn(g), off, bytes, 0, 2);
          model[k]![g] = model[k]![g]!.slice();
          model[k]![g]!.set(bytes, off);
        } else if (r < 7) {
          hv.advise(doms[1]!, asGfn(prng.nextInt(8)), 8, prng.nextInt(2) === 0);
        } else {
          runUntil(hv, hv.dedup.nextWakeNs() + prng.nextInt(3) * 10 * NS_PER_MS);
        }
        expectPage(hv, doms[k]!, g, model[k]![g]);
      }
      doms.forEach((d, k) => range(24).forEach((g) => expectPage(hv, d, g, model[k]![g])));
      // The run went through every path: merges, zero merges, hint hits, stale hints, unmerges.
      const s = hv.dedup.stats();
      for (const k of ['pages_merged', 'zero_merges', 'hint_hits', 'hint_stale', 'unmerged']) expect(s[k], k).toBeGreaterThan(0);
      expect(hv.audit()).toEqual([]);
    }
  });
});

describe('ESX with trust groups and an unpartitioned table', () => {
  it('keeps equal pages of two groups apart, each shared by nomination, with a clean audit after scans', async () => {
    const hv = await Hypervisor.create({ frames: 64, dedup: new EsxDedup({ seed: 1 }) });
    const a = hv.createDomain({ maxPages: 4, trustGroup: 0 });
    const b = hv.createDomain({ maxPages: 4, trustGroup: 1 });
    for (const d of [a, b]) {
      hv.populatePhysmap(d, [0]);
      hv.writePage(d, asGfn(0), 0, content(5), 0, PAGE_SIZE);
      hv.setDomainMergeable(d, true);
      hv.nominateGfn(d, asGfn(0));
    }
    for (let i = 0; i < 50; i++) hv.wakeDedup(hv.dedup.nextWakeNs!());
    expect(hv.audit()).toEqual([]);
    expect(hv.p2m.table(a)!.mfn(asGfn(0))).not.toBe(hv.p2m.table(b)!.mfn(asGfn(0)));
    expectPage(hv, a, 0, content(5));
    expectPage(hv, b, 0, content(5));
  });
});
