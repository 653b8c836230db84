import { describe, expect, it } from 'vitest';
import { expandSweep, jobId, parseSweep, SweepError } from './sweep.js';
import { parseScenario } from './scenario.js';

const base = {
  name: 'b',
  machine: { memoryMiB: 64 },
  guests: [{ name: 'vm', count: 2, memoryMiB: 8 }],
};

function issues(f: () => unknown): readonly string[] {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SweepError);
    return (e as SweepError).issues;
  }
  throw new Error('expected a SweepError');
}

describe('sweep files', () => {
  it('are the product of their axes, the last varying fastest, each point a validated scenario', () => {
    const sweep = parseSweep({ name: 's', base: 'b.json', axes: { 'dedup.strategy': ['inline', 'ksm'], 'machine.memoryMiB': [64, 128], seed: [1, 2, 3] } });
    const jobs = expandSweep(sweep, base);
    expect(jobs).toHaveLength(12);
    expect(jobs.slice(0, 4).map((j) => j.axes)).toEqual([
      { 'dedup.strategy': 'inline', 'machine.memoryMiB': 64, seed: 1 },
      { 'dedup.strategy': 'inline', 'machine.memoryMiB': 64, seed: 2 },
      { 'dedup.strategy': 'inline', 'machine.memoryMiB': 64, seed: 3 },
      { 'dedup.strategy': 'inline', 'machine.memoryMiB': 128, seed: 1 },
    ]);
    expect(jobs[3]!.scenario).toMatchObject({ seed: 1, machine: { memoryMiB: 128 }, dedup: { strategy: 'inline' }, durationS: 60 });
    // The id is the resolved scenario's: defaults written out or not, the same job.
    expect(jobs[0]!.id).toBe(jobId(parseScenario({ ...base, seed: 1, dedup: { strategy: 'inline' }, durationS: 60 })));
    expect(new Set(jobs.map((j) => j.id)).size).toBe(12);
    expect(jobs[0]!.id).toMatch(/^[0-9a-f]{16}$/);
    // Points that resolve to one scenario are one job; the base is not changed.
    expect(expandSweep(parseSweep({ name: 's', base: 'b.json', axes: { seed: [1, 1, 2], durationS: [60] } }), base)).toHaveLength(2);
    expect(base).not.toHaveProperty('seed');
  });

  it('sets array elements and new objects by dotted path', () => {
    const jobs = expandSweep(parseSweep({ name: 's', base: {}, axes: { 'guests.0.count': [1, 3], 'dedup.pages_to_scan': [10] } }), { ...base, dedup: { strategy: 'ksm' } });
    expect(jobs.map((j) => [j.scenario.guests[0]!.count, (j.scenario.dedup as Record<string, unknown>)['pages_to_scan']])).toEqual([
      [1, 10],
      [3, 10],
    ]);
  });

  it('refuses a bad file, naming each field, and a grid point that is no valid scenario, naming the point', () => {
    expect(issues(() => parseSweep({ name: '', base: 3, axes: { 'no spaces': [1], 'seed': [] }, extra: 1 }))).toEqual([
      'name: must be a non-empty string',
      'base: must be a path to a scenario file, or a scenario object',
      'axes.no spaces: must be a dotted scenario path, e.g. dedup.strategy or guests.0.count',
      'axes.seed: must be a non-empty array of values',
      'extra: unknown field',
    ]);
    expect(issues(() => parseSweep({ name: 's', base: 'b.json', axes: {} }))).toEqual(['axes: must name at least one axis']);
    const sweep = parseSweep({ name: 's', base: 'b.json', axes: { 'machine.memoryMiB': [64, 0], 'guests.3.count': [1] } });
    expect(issues(() => expandSweep(sweep, base))).toEqual([
      'point {"machine.memoryMiB":64,"guests.3.count":1}: axes["guests.3.count"]: guests has no element 3 in the base scenario',
      'point {"machine.memoryMiB":0,"guests.3.count":1}: axes["guests.3.count"]: guests has no element 3 in the base scenario',
    ]);
    expect(issues(() => expandSweep(parseSweep({ name: 's', base: 'b.json', axes: { 'machine.memoryMiB': [64, 0] } }), base))).toEqual([
      'point {"machine.memoryMiB":0}: machine.memoryMiB: must be an integer from 1 to 4194304 (MiB; one frame goes to the hypervisor\'s zero frame)',
    ]);
  });
});
