import { describe, expect, it } from 'vitest';
import { measurement, median, relativeSpread, withBounds, withLimit } from './measurement.js';

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

  it('keeps a native ratio beside the JavaScript one', () => {
    const js = measurement({ ...spec, key: 'copy', samples: [200] });
    const native = measurement({ ...spec, key: 'native-copy', samples: [400] });
    const m = withLimit(withLimit(measurement({ ...spec, samples: [100] }), js, 'copy'), native, 'native memcpy', 'native');
    expect(m.limit).toEqual({ id: 'micro.p2m.copy', name: 'copy', ratio: 0.5 });
    expect(m.native).toEqual({ id: 'micro.p2m.native-copy', name: 'native memcpy', ratio: 0.25 });
  });

  it('takes the ratio to each bound that was measured, and leaves the others out', () => {
    const js = measurement({ suite: 'limits', group: 'machine', key: 'copy', name: 'copy', unit: 'pages/s', better: 'higher', samples: [200] });
    const limits = new Map([[js.id, js]]);
    const bounds = [
      { id: 'limits.machine.copy', name: 'copy' },
      { id: 'limits.native.copy', name: 'native memcpy', kind: 'native' },
    ] as const;
    const m = withBounds(measurement({ ...spec, samples: [50] }), limits, bounds);
    expect(m.limit).toEqual({ id: 'limits.machine.copy', name: 'copy', ratio: 0.25 });
    expect(m.native).toBeUndefined();
    const native = measurement({ suite: 'limits', group: 'native', key: 'copy', name: 'memcpy', unit: 'pages/s', better: 'higher', samples: [500] });
    expect(withBounds(measurement({ ...spec, samples: [50] }), new Map([[js.id, js], [native.id, native]]), bounds).native).toEqual({ id: 'limits.native.copy', name: 'native memcpy', ratio: 0.1 });
  });
});
