import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseScenario } from '@pagevisor/workloads';
import { HUGE_SCENARIO_PATH, withContents } from './huge.js';

describe('the huge suite', () => {
  it('runs a valid scenario of 1 TiB of guest memory on 512 GiB, its contents fingerprints', () => {
    expect(existsSync(HUGE_SCENARIO_PATH)).toBe(true);
    const s = parseScenario(JSON.parse(readFileSync(HUGE_SCENARIO_PATH, 'utf8')));
    expect(s.machine.memoryMiB).toBe(512 * 1024);
    expect(s.machine.contents).toBe('fingerprints');
    expect(s.guests.reduce((sum, g) => sum + (g.count ?? 1) * g.memoryMiB, 0)).toBe(1024 * 1024);
  });

  it('sets a scenario machine\'s contents, leaving the rest', () => {
    const s = { name: 'x', machine: { memoryMiB: 8, allocator: 'buddy' }, guests: [] };
    expect(withContents(s, 'fingerprints')).toEqual({ name: 'x', machine: { memoryMiB: 8, allocator: 'buddy', contents: 'fingerprints' }, guests: [] });
    expect(s.machine).toEqual({ memoryMiB: 8, allocator: 'buddy' });
  });
});
