import { afterAll, describe, expect, it } from 'vitest';
import { PluginError } from '@pagevisor/types';
import type { Scenario } from '@pagevisor/workloads';
import { testProject } from '../../tests/test-project.js';
import { driveScenario } from './drive-scenario.js';

const project = testProject();
afterAll(() => project.remove());

/** Two idle-ish guests of 2 MiB sharing half an image, on 8 MiB. */
function tiny(dedup: Record<string, unknown>): Scenario {
  return {
    name: 'tiny',
    seed: 3,
    machine: { memoryMiB: 8, allocator: 'freelist' },
    dedup,
    durationS: 1,
    guests: [{ name: 'g', count: 2, memoryMiB: 2, image: { id: 'img', fraction: 0.5 }, writeRatePagesPerS: 10 }],
  } as unknown as Scenario;
}

describe('driveScenario', () => {
  it("builds the strategy and the allocator with the simulator's makeDedup and makeAllocator", async () => {
    const inline = await driveScenario(tiny({ strategy: 'inline' }));
    expect([inline.strategy, inline.failedGuests, inline.hv.dedup.name]).toEqual(['inline', 0, 'inline']);
    expect(inline.hv.totals().savedPct).toBeGreaterThan(20);
  });

  it('builds a plugin named by a path relative to its base directory, and refuses a missing one', async () => {
    const mine = await driveScenario(tiny({ strategy: './hash-map.mjs' }), { baseDir: project.dir });
    expect([mine.strategy, mine.failedGuests, mine.hv.dedup.name]).toEqual(['my-hash-map', 0, 'hash-map']);
    const inline = await driveScenario(tiny({ strategy: 'inline' }));
    expect(mine.hv.totals().machineFramesUsed).toBe(inline.hv.totals().machineFramesUsed);
    await expect(driveScenario(tiny({ strategy: './gone.mjs' }), { baseDir: project.dir })).rejects.toBeInstanceOf(PluginError);
  });
});
