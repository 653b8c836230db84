import { describe, expect, it } from 'vitest';
import { parseScenario, ScenarioError } from '@pagevisor/workloads';
import { makeDedup } from './make-dedup.js';

function dedupOf(dedup: Record<string, unknown>) {
  return parseScenario({ name: 'd', machine: { memoryMiB: 1 }, guests: [{ name: 'g', memoryMiB: 1 }], dedup }).dedup;
}

function issuesOf(dedup: Record<string, unknown>): readonly string[] {
  try {
    makeDedup(dedupOf(dedup), 1);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).issues;
  }
  throw new Error('expected a ScenarioError');
}

describe('makeDedup', () => {
  it('builds the strategy named, with its options', () => {
    expect(makeDedup(dedupOf({}), 1).name).toBe('inline');
    expect(makeDedup(dedupOf({ strategy: 'none' }), 1).name).toBe('none');
    expect(makeDedup(dedupOf({ strategy: 'inline', initialCapacity: 64 }), 1).stats()['capacity']).toBe(64);
  });

  it('refuses what the strategy refuses, with its message naming the option', () => {
    expect(issuesOf({ strategy: 'inline', initialCapacity: 3 })[0]).toMatch(/^dedup: initialCapacity must be a power of two/);
    expect(issuesOf({ strategy: 'inline', initialCapacity: 64, colour: 1 })[0]).toMatch(/^dedup: inline has no option "colour"/);
    expect(issuesOf({ strategy: 'none', initialCapacity: 64 })[0]).toMatch(/^dedup: none has no option "initialCapacity"/);
  });

  it("seeds ESX's random scan from the scenario seed unless the options name one", () => {
    const knobs = (seed: number, options: Record<string, unknown> = {}) => makeDedup(dedupOf({ strategy: 'esx', ...options }), seed);
    // Different scenario seeds give different scan orders; an explicit seed wins over both.
    expect(knobs(1)).not.toEqual(knobs(2));
    expect(knobs(1, { seed: 9 })).toEqual(knobs(2, { seed: 9 }));
  });
});
