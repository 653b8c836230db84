import { describe, expect, it } from 'vitest';
import { mibToPages } from '@pagevisor/types';
import { DEFAULT_SCENARIO } from './default-scenario.js';
import { parseScenario } from './scenario.js';

describe('DEFAULT_SCENARIO', () => {
  it('is a valid scenario, unchanged by parsing again, and frozen', () => {
    expect(parseScenario(JSON.parse(JSON.stringify(DEFAULT_SCENARIO)))).toEqual(DEFAULT_SCENARIO);
    expect(Object.isFrozen(DEFAULT_SCENARIO.guests[0]!.image)).toBe(true);
  });

  it('runs 8 guests of 128 MiB on 512 MiB with inline dedup', () => {
    const [g] = DEFAULT_SCENARIO.guests;
    expect(DEFAULT_SCENARIO.guests).toHaveLength(1);
    expect([g!.count, g!.memoryMiB, DEFAULT_SCENARIO.machine.memoryMiB]).toEqual([8, 128, 512]);
    expect(DEFAULT_SCENARIO.dedup.strategy).toBe('inline');
  });

  it('does not fit without dedup but fits with it, with margin, even if every write breaks a page', () => {
    const frames = mibToPages(DEFAULT_SCENARIO.machine.memoryMiB);
    const g = DEFAULT_SCENARIO.guests[0]!;
    const pages = mibToPages(g.memoryMiB);
    const image = Math.floor(pages * g.image.fraction);
    const zero = Math.floor(pages * g.zeroFraction);
    const privatePerGuest = pages - image - zero;
    const writesPerGuest = g.writeRatePagesPerS * DEFAULT_SCENARIO.durationS;
    expect(g.count * pages).toBeGreaterThan(frames);
    // One image copy, the zero frame, private data, and a new frame per write at worst.
    const worstCase = image + 1 + g.count * (privatePerGuest + writesPerGuest);
    expect(worstCase).toBeLessThan(frames * 0.85);
  });
});
