import { describe, expect, it } from 'vitest';
import { compareMeasurements, EXACT_NOISE, FEW_SAMPLES_NOISE, machineDrift, MIN_NOISE, noiseThreshold, ratioOf, verdictOf } from './compare.js';
import { measurement, type Better, type Measurement } from './measurement.js';

function m(key: string, samples: number[], better: Better = 'higher', exact = false): Measurement {
  return measurement({ suite: 'micro', group: 'g', key, name: key, unit: 'ops/s', better, samples, exact });
}

describe('noiseThreshold', () => {
  it('is the larger relative spread of the two runs when it exceeds 5%', () => {
    const a = m('a', [90, 100, 110]); // spread 0.2
    const b = m('a', [95, 100, 105]); // spread 0.1
    expect(noiseThreshold(a, b)).toBeCloseTo(0.2);
    expect(noiseThreshold(b, a)).toBeCloseTo(0.2);
  });

  it('never goes below 5%', () => {
    expect(noiseThreshold(m('a', [100, 100, 101]), m('a', [100, 100, 100]))).toBe(MIN_NOISE);
  });

  it('is 25% when either run has fewer than three samples', () => {
    expect(noiseThreshold(m('a', [100]), m('a', [100, 100, 100]))).toBe(FEW_SAMPLES_NOISE);
    expect(noiseThreshold(m('a', [100, 100, 100]), m('a', [99, 101]))).toBe(FEW_SAMPLES_NOISE);
  });

  it('is (almost) 0 for two exact figures, whatever their samples', () => {
    expect(noiseThreshold(m('a', [7], 'lower', true), m('a', [7], 'lower', true))).toBe(EXACT_NOISE);
  });

  it('treats an exact figure against a timed one as timed', () => {
    expect(noiseThreshold(m('a', [7], 'lower', true), m('a', [7, 7, 7]))).toBe(FEW_SAMPLES_NOISE);
  });
});

describe('verdictOf', () => {
  it('calls a drop of a higher-is-better figure beyond the noise a regression', () => {
    expect(verdictOf('higher', 100, 80, 0.1)).toBe('regression');
    expect(verdictOf('higher', 100, 120, 0.1)).toBe('improvement');
  });

  it('calls a rise of a lower-is-better figure beyond the noise a regression', () => {
    expect(verdictOf('lower', 100, 120, 0.1)).toBe('regression');
    expect(verdictOf('lower', 100, 80, 0.1)).toBe('improvement');
  });

  it('calls changes within the noise unchanged, the boundary included', () => {
    expect(verdictOf('higher', 100, 91, 0.1)).toBe('unchanged');
    expect(verdictOf('higher', 100, 109, 0.1)).toBe('unchanged');
    expect(verdictOf('lower', 100, 110, 0.1)).toBe('unchanged');
  });

  it('handles medians of 0', () => {
    expect(verdictOf('higher', 0, 0, 0.05)).toBe('unchanged');
    expect(verdictOf('higher', 0, 5, 0.05)).toBe('improvement');
    expect(verdictOf('lower', 0, 5, 0.05)).toBe('regression');
    expect(verdictOf('lower', 5, 0, 0.05)).toBe('improvement');
  });

  it('sees any change of an exact figure', () => {
    expect(verdictOf('lower', 16, 16.01, EXACT_NOISE)).toBe('regression');
    expect(verdictOf('lower', 16, 16, EXACT_NOISE)).toBe('unchanged');
  });
});

describe('ratioOf', () => {
  it('is new over old, 1 for equal medians and infinite from 0', () => {
    expect(ratioOf(100, 150)).toBe(1.5);
    expect(ratioOf(0, 0)).toBe(1);
    expect(ratioOf(0, 3)).toBe(Infinity);
  });
});

describe('compareMeasurements', () => {
  const oldRun = {
    measurements: [m('same', [100, 101, 102]), m('slower', [100, 100, 100]), m('faster', [100, 100, 100]), m('noisy', [60, 100, 140]), m('dropped', [1, 1, 1])],
  };
  const newRun = {
    measurements: [m('added', [5, 5, 5]), m('noisy', [75, 75, 76]), m('faster', [130, 130, 130]), m('slower', [70, 70, 71]), m('same', [103, 103, 103])],
  };
  const c = compareMeasurements(oldRun, newRun, 'old.json', '2026-11-25');

  it('gives a verdict for every measurement in both runs, in the new run order', () => {
    expect(c.entries.map((e) => [e.id, e.verdict])).toEqual([
      ['micro.g.noisy', 'unchanged'],
      ['micro.g.faster', 'improvement'],
      ['micro.g.slower', 'regression'],
      ['micro.g.same', 'unchanged'],
    ]);
  });

  it('judges a noisy figure against its own spread', () => {
    const noisy = c.entries.find((e) => e.id === 'micro.g.noisy')!;
    expect(noisy.ratio).toBeCloseTo(0.75);
    expect(noisy.noise).toBeCloseTo(0.8);
  });

  it('lists regressions, improvements and the measurements of one run only', () => {
    expect(c.regressions).toEqual(['micro.g.slower']);
    expect(c.improvements).toEqual(['micro.g.faster']);
    expect(c.onlyInOld).toEqual(['micro.g.dropped']);
    expect(c.onlyInNew).toEqual(['micro.g.added']);
    expect(c.against).toBe('old.json');
    expect(c.againstDate).toBe('2026-11-25');
  });

  it('finds nothing to report when comparing a run with itself', () => {
    const self = compareMeasurements(newRun, newRun);
    expect(self.regressions).toEqual([]);
    expect(self.improvements).toEqual([]);
    expect(self.entries.every((e) => e.ratio === 1)).toBe(true);
  });

  it('compares with an empty run: everything is only in one of them', () => {
    const none = compareMeasurements({ measurements: [] }, newRun);
    expect(none.entries).toEqual([]);
    expect(none.onlyInNew).toHaveLength(5);
  });
});

describe('compareMeasurements against the limits', () => {
  const limitOld = m('limit', [1000, 1000, 1000]);
  const limitNew = { ...m('limit', [700, 700, 700]), id: 'limits.machine.copy' };
  const write = (median: number, limitMedian: number): Measurement => ({ ...m('write', [median, median, median]), limit: { id: 'limits.machine.copy', name: 'copy', ratio: median / limitMedian } });

  it('gives the change of the ratio to the limit, which cancels a slower machine', () => {
    const c = compareMeasurements({ measurements: [write(500, 1000)] }, { measurements: [write(350, 700)] });
    expect(c.entries[0]!.verdict).toBe('regression');
    expect(c.entries[0]!.limitRatioChange).toBeCloseTo(1);
  });

  it('warns when the limits themselves moved beyond the noise', () => {
    const moved = compareMeasurements({ measurements: [{ ...limitOld, id: 'limits.machine.copy' }] }, { measurements: [limitNew] }, '', '', ['given']);
    expect(moved.warnings[0]).toBe('given');
    expect(moved.warnings[1]).toMatch(/^the machine's limits moved \(limits\.machine\.copy 0\.70x\)/);
    const still = compareMeasurements({ measurements: [{ ...limitOld, id: 'limits.machine.copy' }] }, { measurements: [{ ...limitOld, id: 'limits.machine.copy' }] });
    expect(still.warnings).toEqual([]);
  });
});

describe('machineDrift', () => {
  const lim = (key: string, median: number): Measurement => ({ ...measurement({ suite: 'limits', group: 'machine', key, name: key, unit: 'pages/s', better: 'higher', samples: [median, median, median] }) });
  const oldRun = { measurements: [lim('copy', 100), lim('hash', 100), lim('compare', 100), m('write', [50, 50, 50])] };
  const newRun = { measurements: [lim('copy', 80), lim('hash', 90), lim('compare', 130), m('write', [41, 41, 41])] };

  it('is the median move of the limits in both runs, 0 without any', () => {
    expect(machineDrift(oldRun, newRun)).toBeCloseTo(0.2);
    expect(machineDrift({ measurements: [m('write', [1, 1, 1])] }, { measurements: [m('write', [2, 2, 2])] })).toBe(0);
  });

  it('widens the noise of timed figures to the drift, not that of the limits or exact figures', () => {
    const c = compareMeasurements(oldRun, newRun);
    expect(c.machineDrift).toBeCloseTo(0.2);
    const write = c.entries.find((e) => e.id === 'micro.g.write')!;
    expect(write.noise).toBeCloseTo(0.2);
    expect(write.verdict).toBe('unchanged');
    expect(c.entries.find((e) => e.id === 'limits.machine.copy')!).toMatchObject({ noise: MIN_NOISE, verdict: 'regression' });
    const exact = compareMeasurements(
      { measurements: [...oldRun.measurements, m('saved', [50], 'higher', true)] },
      { measurements: [...newRun.measurements, m('saved', [49], 'higher', true)] },
    );
    expect(exact.entries.find((e) => e.id === 'micro.g.saved')!).toMatchObject({ noise: EXACT_NOISE, verdict: 'regression' });
    expect(c.warnings.at(-1)).toMatch(/median drift, 20\.0%/);
  });
});
