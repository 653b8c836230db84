import { describe, expect, it } from 'vitest';
import { parseScenario, ScenarioError } from './scenario.js';

const minimal = { name: 'tiny', machine: { memoryMiB: 16 }, guests: [{ name: 'g', memoryMiB: 4 }] };
const withSwap = (swap: unknown) => ({ ...minimal, machine: { memoryMiB: 16, swap } });
const withGuest = (extra: Record<string, unknown>) => ({ ...minimal, guests: [{ name: 'g', memoryMiB: 4, ...extra }] });

function issuesOf(input: unknown): readonly string[] {
  try {
    parseScenario(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).issues;
  }
  throw new Error('expected a ScenarioError');
}

describe('machine.swap', () => {
  it('is absent by default, and filled with defaults when given', () => {
    expect(parseScenario(minimal).machine.swap).toBeUndefined();
    expect(parseScenario(withSwap({})).machine.swap).toEqual({
      mode: 'shared',
      device: 'memory',
      backend: 'shared-swap',
      policy: 'clock',
      compareBaseline: false,
    });
  });

  it('takes every field', () => {
    const swap = {
      mode: 'per-domain',
      device: 'file',
      backend: 'shared-swap',
      slots: 100,
      path: '/tmp/x.swap',
      compression: 'lz4',
      fsync: 'always',
      policy: 'random',
      lowWatermark: 8,
      highWatermark: 16,
      faults: { seed: 3, writeErrorProbability: 0.1, readErrorProbability: 0.2, shortWriteProbability: 0.01, failWriteAt: [1, 5], failReadAt: [2], shortWriteAt: [3], fullAfterWrites: 50 },
      compareBaseline: true,
    };
    expect(parseScenario(withSwap(swap)).machine.swap).toEqual(swap);
  });

  it('names every bad field', () => {
    // Policies and devices are plugins: an unknown name is the plugin loader's to refuse.
    expect(issuesOf(withSwap({ mode: 'global', device: '', compression: 'zstd', policy: 3, fsync: 'sometimes' }))).toEqual([
      'machine.swap.mode: must be "shared" or "per-domain"',
      'machine.swap.device: must be a name or module specifier (a non-empty string), or { "plugin": ..., ...options }',
      'machine.swap.compression: must be "none", "deflate" or "lz4"',
      'machine.swap.fsync: must be "never" or "always"',
      'machine.swap.policy: must be a name or module specifier (a non-empty string), or { "plugin": ..., ...options }',
    ]);
    expect(issuesOf(withSwap({ slots: 0, faults: { readErrorProbability: 2, failWriteAt: [0], colour: 1 } }))).toEqual([
      'machine.swap.slots: must be a positive integer',
      'machine.swap.faults.readErrorProbability: must be a number from 0 to 1',
      'machine.swap.faults.failWriteAt[0]: must be a positive integer',
      'machine.swap.faults.colour: unknown field',
    ]);
  });

  it('refuses a high watermark below the low one, and a path without the file device', () => {
    expect(issuesOf(withSwap({ lowWatermark: 10, highWatermark: 5 }))).toEqual(['machine.swap.highWatermark: must be at least lowWatermark (10); got 5']);
    expect(issuesOf(withSwap({ path: '/tmp/x', fsync: 'always' }))).toEqual([
      'machine.swap.path: applies to device "file" only (a device plugin takes its options in { "plugin": ..., ...options })',
      'machine.swap.fsync: applies to device "file" only (a device plugin takes its options in { "plugin": ..., ...options })',
    ]);
  });
});

describe('guest working set and reads', () => {
  it('are optional and left out when absent', () => {
    const g = parseScenario(minimal).guests[0]!;
    expect('workingSet' in g).toBe(false);
    expect('readRatePagesPerS' in g).toBe(false);
    const h = parseScenario(withGuest({ readRatePagesPerS: 10, workingSet: { fraction: 0.25, moveEveryS: 2 } })).guests[0]!;
    expect(h.readRatePagesPerS).toBe(10);
    expect(h.workingSet).toEqual({ fraction: 0.25, moveEveryS: 2 });
  });

  it('refuses an empty or oversized window, a non-positive move period and a negative read rate', () => {
    expect(issuesOf(withGuest({ readRatePagesPerS: -1, workingSet: { fraction: 0, moveEveryS: 0 } }))).toEqual([
      'guests[0].readRatePagesPerS: must be a number >= 0',
      'guests[0].workingSet.fraction: must be a number greater than 0 and at most 1',
      'guests[0].workingSet.moveEveryS: must be a number > 0',
    ]);
    expect(issuesOf(withGuest({ workingSet: { fraction: 1.5, moveEveryS: 1 } }))).toEqual(['guests[0].workingSet.fraction: must be a number from 0 to 1']);
  });
});
