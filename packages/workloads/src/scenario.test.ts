import { describe, expect, it } from 'vitest';
import { dedupOptionsOf, domainNames, formatPath, parseScenario, ScenarioError } from './scenario.js';

const minimal = {
  name: 'tiny',
  machine: { memoryMiB: 16 },
  guests: [{ name: 'g', memoryMiB: 4 }],
};

function issuesOf(input: unknown): readonly string[] {
  try {
    parseScenario(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).issues;
  }
  throw new Error('expected a ScenarioError');
}

function withGuest(extra: Record<string, unknown>): unknown {
  return { ...minimal, guests: [{ name: 'g', memoryMiB: 4, ...extra }] };
}

describe('parseScenario', () => {
  it('fills in every default', () => {
    const s = parseScenario(minimal);
    expect(s).toEqual({
      name: 'tiny',
      seed: 1,
      machine: { memoryMiB: 16, contents: 'bytes', allocator: 'buddy', numaNodes: 1, mitigations: { zeroPagesOnly: false, uniformWrites: false } },
      dedup: { strategy: 'inline' },
      durationS: 60,
      sampleIntervalS: 1,
      guests: [
        {
          name: 'g',
          count: 1,
          memoryMiB: 4,
          image: { id: 'none', fraction: 0 },
          zeroFraction: 0,
          writeRatePagesPerS: 0,
          writeBytes: 64,
          wholePageWriteFraction: 0,
          bootPagesPerS: 262_144,
          mergeable: true,
          trustGroup: 0,
        },
      ],
      steps: [],
    });
  });

  it('does not modify its input', () => {
    const input = structuredClone(minimal);
    parseScenario(input);
    expect(input).toEqual(minimal);
  });

  it('names a bad guest field by its path', () => {
    expect(issuesOf(withGuest({ memoryMiB: -4 }))).toEqual(['guests[0].memoryMiB: must be a positive integer']);
    expect(issuesOf(withGuest({ memoryMiB: 1.5 }))).toEqual(['guests[0].memoryMiB: must be a positive integer']);
    expect(issuesOf(withGuest({ memoryMiB: '4' }))).toEqual(['guests[0].memoryMiB: must be a positive integer']);
  });

  it('says when a required field is missing', () => {
    expect(issuesOf({ ...minimal, machine: {} })).toEqual([
      'machine.memoryMiB: missing; must be an integer from 1 to 4194304 (MiB; one frame goes to the hypervisor\'s zero frame)',
    ]);
    expect(issuesOf({ machine: { memoryMiB: 1 }, guests: [{ name: 'g', memoryMiB: 1 }] })).toEqual([
      'name: missing; must be a non-empty string',
    ]);
  });

  it('refuses unknown fields at every level', () => {
    expect(issuesOf({ ...minimal, colour: 'red' })).toEqual(['colour: unknown field']);
    expect(issuesOf({ ...minimal, machine: { memoryMiB: 16, hugepages: 1 } })).toEqual(['machine.hugepages: unknown field']);
    expect(issuesOf(withGuest({ image: { id: 'x', fraction: 0.5, size: 3 } }))).toEqual([
      'guests[0].image.size: unknown field',
    ]);
  });

  it('reports every bad field at once', () => {
    const issues = issuesOf({
      ...minimal,
      dedup: { strategy: '' },
      machine: { memoryMiB: 16, allocator: 7 },
      guests: [{ name: 'g', memoryMiB: 4, writeBytes: 5000, zeroFraction: 2 }],
    });
    expect(issues).toEqual(
      expect.arrayContaining([
        'machine.allocator: must be a name or module specifier (a non-empty string), or { "plugin": ..., ...options }',
        'dedup.strategy: must be a built-in strategy or a module specifier',
        'guests[0].zeroFraction: must be a number from 0 to 1',
        'guests[0].writeBytes: must be an integer from 1 to 4096',
      ]),
    );
    expect(issues).toHaveLength(4);
  });

  it('checks that image and zero fractions leave room for each other', () => {
    expect(issuesOf(withGuest({ image: { id: 'os', fraction: 0.8 }, zeroFraction: 0.3 }))).toEqual([
      'guests[0].zeroFraction: image.fraction + zeroFraction must be at most 1 (the rest is private data); got 0.8 + 0.3 = 1.1',
    ]);
    expect(() => parseScenario(withGuest({ image: { id: 'os', fraction: 0.75 }, zeroFraction: 0.25 }))).not.toThrow();
  });

  it('refuses an empty guest list, a non-object and a machine without memory', () => {
    expect(issuesOf({ ...minimal, guests: [] })).toEqual(['guests: must be a non-empty array of guests']);
    expect(issuesOf(42)).toEqual(['(scenario): must be an object']);
    expect(issuesOf({ ...minimal, machine: { memoryMiB: 0 } })).toEqual([
      'machine.memoryMiB: must be an integer from 1 to 4194304 (MiB; one frame goes to the hypervisor\'s zero frame)',
    ]);
  });

  it('skips cross-field checks on fields that are already wrong', () => {
    expect(issuesOf({ ...minimal, guests: [{ name: 'g', count: 'many', memoryMiB: 1, zeroFraction: 0.9, image: { id: 'x', fraction: 'most' } }] })).toEqual([
      'guests[0].count: must be a positive integer',
      'guests[0].image.fraction: must be a number from 0 to 1',
    ]);
    expect(issuesOf({ ...minimal, guests: 'all of them' })).toEqual(['guests: must be an array of guests']);
    expect(issuesOf({ ...minimal, durationS: -1, guests: [{ name: 'g', count: 0, memoryMiB: 1 }] })).toEqual([
      'durationS: must be a number >= 0',
      'guests[0].count: must be a positive integer',
    ]);
  });

  it('refuses duplicate domain names', () => {
    const issues = issuesOf({
      ...minimal,
      guests: [
        { name: 'web', count: 3, memoryMiB: 1 },
        { name: 'web-1', memoryMiB: 1 },
      ],
    });
    expect(issues).toEqual(['guests[1].name: domain name "web-1" is also used by guests[0]; names must be unique']);
  });

  it('refuses more guests than domain ids and too many samples', () => {
    expect(issuesOf({ ...minimal, guests: [{ name: 'g', count: 40_000, memoryMiB: 1 }] })).toEqual([
      'guests: at most 32751 guests in all (domain ids run out); got 40000',
    ]);
    expect(issuesOf({ ...minimal, durationS: 10, sampleIntervalS: 0.00001 })).toEqual([
      "sampleIntervalS: gives 1000391 timeline samples over the run (boot 0.00390625 s + the longer of durationS 10 s and the steps' waits 0 s); at most 100000",
    ]);
    // A slow boot counts too.
    expect(issuesOf({ ...minimal, durationS: 0, guests: [{ name: 'g', memoryMiB: 4, bootPagesPerS: 0.001 }] })[0]).toMatch(
      /^sampleIntervalS: gives 1024000 timeline samples/,
    );
  });

  it('passes dedup options through as they are, for the strategy plugin to check', () => {
    const s = parseScenario({ ...minimal, dedup: { strategy: 'ksm', pages_to_scan: 1000, use_zero_pages: true } });
    expect(s.dedup).toEqual({ strategy: 'ksm', pages_to_scan: 1000, use_zero_pages: true });
    expect(dedupOptionsOf(s.dedup)).toEqual({ pages_to_scan: 1000, use_zero_pages: true });
    expect(dedupOptionsOf(parseScenario(minimal).dedup)).toEqual({});
    const plugin = parseScenario({ ...minimal, dedup: { strategy: './hot.mjs', capacity: 64, names: ['a'] } });
    expect(dedupOptionsOf(plugin.dedup)).toEqual({ capacity: 64, names: ['a'] });
  });

  it('names a part by a built-in name, a module specifier, or { plugin, ...options }', () => {
    const s = parseScenario({ ...minimal, machine: { memoryMiB: 16, allocator: { plugin: './bitmap.mjs', firstFit: true } } });
    expect(s.machine.allocator).toEqual({ plugin: './bitmap.mjs', firstFit: true });
    expect(parseScenario(minimal).machine.allocator).toBe('buddy');
    expect(issuesOf({ ...minimal, machine: { memoryMiB: 16, allocator: { firstFit: true } } })).toEqual(['machine.allocator: must be a name or module specifier (a non-empty string), or { "plugin": ..., ...options }']);
  });

  it('takes NUMA nodes from 1 to 64 and a mergeable flag per guest', () => {
    const s = parseScenario({ ...minimal, machine: { memoryMiB: 16, numaNodes: 2 }, guests: [{ name: 'g', memoryMiB: 4, mergeable: false }] });
    expect(s.machine.numaNodes).toBe(2);
    expect(s.guests[0]!.mergeable).toBe(false);
    expect(issuesOf({ ...minimal, machine: { memoryMiB: 16, numaNodes: 0 } })).toEqual(['machine.numaNodes: must be an integer from 1 to 64']);
    expect(issuesOf(withGuest({ mergeable: 'yes' }))).toEqual(['guests[0].mergeable: must be true or false']);
  });

  it('takes machine.contents "bytes" (the default) or "fingerprints", and refuses swap compression with fingerprints, naming both fields', () => {
    expect(parseScenario({ ...minimal, machine: { memoryMiB: 16, contents: 'fingerprints' } }).machine.contents).toBe('fingerprints');
    expect(parseScenario({ ...minimal, machine: { memoryMiB: 16, contents: 'bytes', swap: { compression: 'lz4' } } }).machine.swap?.compression).toBe('lz4');
    expect(parseScenario({ ...minimal, machine: { memoryMiB: 16, contents: 'fingerprints', swap: { compression: 'none' } } }).machine.swap?.compression).toBe('none');
    expect(issuesOf({ ...minimal, machine: { memoryMiB: 16, contents: 'pages' } })).toEqual(['machine.contents: must be "bytes" or "fingerprints"']);
    for (const compression of ['lz4', 'deflate']) {
      const issues = issuesOf({ ...minimal, machine: { memoryMiB: 16, contents: 'fingerprints', swap: { compression } } });
      expect(issues).toHaveLength(1);
      expect(issues[0]).toMatch(new RegExp(`^machine\\.swap\\.compression: "${compression}" cannot be simulated with machine\\.contents "fingerprints"`));
      expect(issues[0]).toMatch(/do not compress/);
    }
  });

  it('keeps the seed a 32-bit unsigned integer', () => {
    expect(parseScenario({ ...minimal, seed: 4294967295 }).seed).toBe(4294967295);
    expect(issuesOf({ ...minimal, seed: -1 })).toEqual(['seed: must be an integer from 0 to 4294967295']);
  });
});

describe('formatPath and domainNames', () => {
  it('formats paths like JavaScript property access', () => {
    expect(formatPath(['guests', 2, 'image', 'fraction'])).toBe('guests[2].image.fraction');
    expect(formatPath([])).toBe('(scenario)');
  });

  it('numbers the domains of a guest kind with count > 1', () => {
    expect(domainNames({ name: 'db', count: 1 })).toEqual(['db']);
    expect(domainNames({ name: 'web', count: 3 })).toEqual(['web-0', 'web-1', 'web-2']);
  });
});
