import { describe, expect, it } from 'vitest';
import { measurement, type Measurement } from './measurement.js';
import { mergeSamples } from './run-bench.js';

const one = (value: number, extra: Partial<Measurement> = {}, exact = false): Measurement => ({
  ...measurement({ suite: 'micro', group: 'hypervisor', key: 'inline-write-new', name: 'inline write', unit: 'pages/s', better: 'higher', samples: [value], exact }),
  ...extra,
});

describe('mergeSamples', () => {
  it('puts one sample per process side by side, with their median and spread', () => {
    const m = mergeSamples([one(100), one(300), one(200)]);
    expect(m).toMatchObject({ id: 'micro.hypervisor.inline-write-new', samples: [100, 300, 200], median: 200, min: 100, max: 300, spread: 1 });
  });

  it('takes the median of the ratios each process took to its own limit', () => {
    const limit = (ratio: number): Partial<Measurement> => ({ limit: { id: 'micro.hypervisor.copy-hash-paired', name: 'copy+hash (paired)', ratio } });
    const m = mergeSamples([one(100, limit(0.5)), one(300, limit(0.7)), one(200, limit(0.6))]);
    expect(m.limit).toEqual({ id: 'micro.hypervisor.copy-hash-paired', name: 'copy+hash (paired)', ratio: 0.6 });
  });

  it('merges the native ratio like the JavaScript one, and drops a ratio some process lacks', () => {
    const both = (js: number, native: number): Partial<Measurement> => ({
      limit: { id: 'limits.machine.copy', name: 'copy', ratio: js },
      native: { id: 'limits.native.copy', name: 'native memcpy', ratio: native },
    });
    const m = mergeSamples([one(100, both(0.5, 0.2)), one(300, both(0.7, 0.4)), one(200, both(0.6, 0.3))]);
    expect(m.limit!.ratio).toBe(0.6);
    expect(m.native).toEqual({ id: 'limits.native.copy', name: 'native memcpy', ratio: 0.3 });
    // One process without the C reference: no native ratio, the JavaScript one stays.
    const partial = mergeSamples([one(100, both(0.5, 0.2)), one(300, { limit: { id: 'limits.machine.copy', name: 'copy', ratio: 0.7 } })]);
    expect(partial.limit!.ratio).toBeCloseTo(0.6);
    expect(partial.native).toBeUndefined();
  });

  it('keeps an exact figure once, and flags processes that disagree on it', () => {
    expect(mergeSamples([one(46, {}, true), one(46, {}, true)])).toMatchObject({ samples: [46], exact: true });
    expect(mergeSamples([one(46, {}, true), one(47, {}, true)]).note).toMatch(/NOT deterministic/);
  });
});
