import { describe, expect, it } from 'vitest';
import { parseScenario, ScenarioError } from '@pagevisor/workloads';
import { makeDedup } from './make-dedup.js';

function dedupOf(dedup: Record<string, unknown>) {
  return parseScenario({ name: 'd', machine: { memoryMiB: 1 }, guests: [{ name: 'g', memoryMiB: 1 }], dedup }).dedup;
}

function issuesOf(dedup: Record<string, unknown>): readonly string[] {
  try {
    makeDedup(dedupOf(dedup));
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).issues;
  }
  throw new Error('expected a ScenarioError');
}

describe('makeDedup', () => {
  it('builds the strategy named, with its options', () => {
    expect(makeDedup(dedupOf({})).name).toBe('inline');
    expect(makeDedup(dedupOf({ strategy: 'none' })).name).toBe('none');
    expect(makeDedup(dedupOf({ strategy: 'inline', initialCapacity: 64 })).stats()['capacity']).toBe(64);
  });

  it('names the option a strategy refuses as dedup.<option>', () => {
    expect(issuesOf({ strategy: 'inline', initialCapacity: 3 })[0]).toMatch(/^dedup\.initialCapacity: initialCapacity must be a power of two/);
    // The unknown option is named, not the known ones listed after it.
    expect(issuesOf({ strategy: 'inline', initialCapacity: 64, colour: 1 })[0]).toMatch(/^dedup\.colour: inline has no option "colour"/);
    expect(issuesOf({ strategy: 'none', initialCapacity: 64 })[0]).toMatch(/^dedup\.initialCapacity: none has no option/);
  });
});
