import { describe, expect, it } from 'vitest';
import { measurement, median, relativeSpread, withLimit } from './measurement.js';

describe('median and relativeSpread', () => {
  it('takes the middle value, or the mean of the middle two', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('measures (max - min) / median, 0 for one value or a median of 0', () => {
    expect(relativeSpread([90, 100, 110])).toBeCloseTo(0.2);
    expect(relativeSpread([5])).toBe(0);
    expect(relativeSpread([0, 0, 1])).toBe(0);
  });
});

describe('measurement', () => {
  const spec = { suite: 'micro', group: 'p2m', key: 'get', name: 'p2m get', unit: 'ops/s', better: 'higher' } as const;

  it('derives id, median, extremes and spread from the samples', () => {
    const m = measurement({ ...spec, samples: [10, 30, 20] });
    expect(m).toMatchObject({ id: 'micro.p2m.get', median: 20, min: 10, max: 30, samples: [10, 30, 20] });
    expect(m.spread).toBeCloseTo(1);
    expect(m.exact).toBeUndefined();
  });

  it('refuses no samples and samples that are not finite numbers', () => {
    expect(() => measurement({ ...spec, samples: [] })).toThrow(/no samples/);
    expect(() => measurement({ ...spec, samples: [1, NaN] })).toThrow(/not a finite number/);
    expect(() => measurement({ ...spec, samples: [Infinity] })).toThrow(/not a finite number/);
  });

  it('takes the ratio of medians to a limit', () => {
    const limit = measurement({ ...spec, key: 'copy', samples: [200] });
    const m = withLimit(measurement({ ...spec, samples: [50] }), limit, 'copy');
    expect(m.limit).toEqual({ id: 'micro.p2m.copy', name: 'copy', ratio: 0.25 });
  });
});
