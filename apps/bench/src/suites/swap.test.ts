import { beforeAll, describe, expect, it } from 'vitest';
import { median } from '../measurement.js';
import type { BenchResult } from '../result.js';
import { runBench } from '../run-bench.js';
import { SWAP_IN_ID } from './swap.js';

// Not timed assertions: a quick run of the swap suite measures every figure, each finite and
// positive, and pairs the swap-in hits with the plain swap-in they are judged against.
describe('a quick run of the swap suite', () => {
  let result: BenchResult;
  const repeats = 2;
  beforeAll(async () => {
    result = await runBench({ suites: ['swap'], quick: true, repeats, isolate: false });
  }, 180_000);
  const byId = (id: string) => {
    const m = result.measurements.find((x) => x.id === id);
    if (m === undefined) throw new Error(`no measurement ${id}`);
    return m;
  };

  it('runs without errors, limits included for the ratios', () => {
    expect(result.errors).toEqual([]);
    expect(result.options.suites).toEqual(['limits', 'swap']);
    for (const m of result.measurements.filter((x) => x.suite === 'swap')) {
      for (const x of m.samples) expect(Number.isFinite(x) && x > 0, `${m.id}: ${x}`).toBe(true);
      expect(m.samples.length, m.id).toBe(m.exact === true ? 1 : repeats);
    }
  });

  it('measures plain, de-duplicated and swap-cache swap-ins, the hits as ratios to the plain one timed beside them', () => {
    const plain = byId(SWAP_IN_ID.plain);
    expect(plain).toMatchObject({ unit: 'faults/s', better: 'higher' });
    expect(plain.limit).toBeUndefined();
    for (const id of [SWAP_IN_ID.deduped, SWAP_IN_ID.cached]) {
      const m = byId(id);
      // The median of the per-repeat ratios, not the ratio of the medians.
      expect(m.limit).toEqual({ id: plain.id, name: 'plain swap-in (paired)', ratio: median(m.samples.map((x, i) => x / plain.samples[i]!)) });
    }
    const notes = result.suites.find((s) => s.suite === 'swap')!.notes.join('\n');
    expect(notes).toMatch(/swap-in: .* 0 duplicate frames at the end/);
  });

  it('judges the swap-in target on the de-duplicated hit, as indicative in a quick run', () => {
    const t = result.targets.find((x) => x.key === 'swap-in-dedup')!;
    expect(t).toMatchObject({ value: byId(SWAP_IN_ID.deduped).limit!.ratio, source: SWAP_IN_ID.deduped, note: expect.stringMatching(/quick/) });
    expect(typeof t.met).toBe('boolean');
  });
});
