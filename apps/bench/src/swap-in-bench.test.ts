import { describe, expect, it } from 'vitest';
import { asMfn, INVALID_MFN } from '@pagevisor/types';
import { benchSwapIn, SteeredPolicy, SWAP_IN_CASES } from './swap-in-bench.js';

// Not timed assertions: the benchmark's own checks (paths taken, contents read back, audit,
// duplicate frames) throw when wrong; here only its shape and what it counted.
describe('benchSwapIn', () => {
  it('faults every page of every case in, the way the case names, reading back what was written', async () => {
    const pages = 200; // not a multiple of the chunk: the last chunk is short
    const repeats = 2;
    const r = await benchSwapIn(pages, repeats, { minSampleMs: 0, maxRounds: 1 });
    expect(r).toMatchObject({ pages, repeats, rounds: 1, duplicateFrames: 0 });
    for (const c of SWAP_IN_CASES) {
      expect(r.faultsPerS[c]).toHaveLength(repeats);
      for (const x of r.faultsPerS[c]) expect(Number.isFinite(x) && x > 0, `${c}: ${x}`).toBe(true);
    }
    expect(r.ratios.deduped).toEqual(r.faultsPerS.deduped.map((x, i) => x / r.faultsPerS.plain[i]!));
    expect(r.ratios.cached).toEqual(r.faultsPerS.cached.map((x, i) => x / r.faultsPerS.plain[i]!));
    // Every page of both domains of every case, after each of the two warm-up rounds and each timed one.
    expect(r.pagesVerified).toBe((2 + repeats * r.rounds) * SWAP_IN_CASES.length * 2 * pages);
  });

  it('refuses sizes that measure nothing', async () => {
    await expect(benchSwapIn(0)).rejects.toThrow(RangeError);
    await expect(benchSwapIn(16, 0)).rejects.toThrow(RangeError);
  });
});

describe('SteeredPolicy', () => {
  it('gives the frame it is steered to while it tracks it, else none', () => {
    const p = new SteeredPolicy();
    p.insert(asMfn(3));
    p.insert(asMfn(5));
    expect(p.victim()).toBe(INVALID_MFN);
    p.next = asMfn(5);
    expect(p.victim()).toBe(asMfn(5));
    p.remove(asMfn(5));
    expect([p.victim(), p.size]).toEqual([INVALID_MFN, 1]);
    p.reset();
    expect(p.size).toBe(0);
  });
});
