import { describe, expect, it } from 'vitest';
import { NS_PER_S } from '@pagevisor/types';
import { runScenario } from './run-scenario.js';
import type { Report } from './report.js';
import { tinyScenario as scenario } from '../tests/tiny-scenario.js';


function withoutWall(r: Report): string {
  const { wall: _wall, ...rest } = r;
  return JSON.stringify(rest);
}

describe('runScenario', () => {
  it('runs every guest to the end and reports the host', async () => {
    const r = await runScenario(scenario());
    expect(r.scenario).toBe('tiny');
    expect(r.seed).toBe(7);
    expect(r.failures).toEqual([]);
    expect(r.guests.map((g) => [g.name, g.state, g.pagesBooted, g.writes])).toEqual([
      ['g-0', 'done', 1024, 400],
      ['g-1', 'done', 1024, 400],
    ]);
    expect(r.totals.guestPages).toBe(2048);
    expect(r.totals.failedGuests).toBe(0);
    // Boot of 1024 pages at 4096 pages/s, then 2 s of writes.
    expect(r.simulatedNs).toBe(2.25 * NS_PER_S);
    expect(r.config.machine).toEqual({ memoryMiB: 16, frames: 4096, contents: 'bytes', allocator: 'buddy', numaNodes: 1 });
    const guestDomains = r.domains.filter((d) => d.name.startsWith('g-'));
    expect(guestDomains.map((d) => d.totPages)).toEqual([1024, 1024]);
    expect(r.totals.cowFaults).toBeGreaterThan(0);
  });

  it('reports metadata by part and per guest page, and the peak RSS among the wall figures', async () => {
    const r = await runScenario(scenario());
    const m = r.memory;
    expect(m.frameTableBytes + m.p2mTableBytes + m.reverseMapBytes + m.dedupBytes + m.hypervisorBytes).toBe(m.metadataBytes);
    expect(m.metadataBytesPerGuestPage).toBe(Math.round((m.metadataBytes / 2048) * 100) / 100);
    // Two guests that share: 5 bytes a gfn of p2m (a frame word and a type byte). The reverse map keeps its anchors in the frame
    // table's m2p words: its own are the pool's first 16 list nodes and one id-directory reference a table.
    expect([m.p2mTableBytes, m.reverseMapBytes]).toEqual([2 * 1024 * 5, 16 * 32 + 2 * 8]);
    // No sharing handle was ever asked for: the hypervisor holds no per-frame array.
    expect(m.hypervisorBytes).toBe(0);
    expect(r.wall.peakRssBytes).toBeGreaterThan(1 << 20);
  });

  it('samples the timeline every sampleIntervalS from 0 to the end', async () => {
    const r = await runScenario(scenario());
    expect(r.timeline.map((s) => s.tNs / NS_PER_S)).toEqual([0, 0.5, 1, 1.5, 2, 2.25]);
    expect(r.timeline[0]!.guestPages).toBe(0);
    expect(r.timeline.at(-1)!.machineFramesUsed).toBe(r.totals.machineFramesUsed);
    for (let i = 1; i < r.timeline.length; i++) {
      expect(r.timeline[i]!.cowFaults).toBeGreaterThanOrEqual(r.timeline[i - 1]!.cowFaults);
    }
  });

  it('gives a byte-identical report (outside wall) for the same seed', async () => {
    const a = await runScenario(scenario());
    const b = await runScenario(scenario());
    expect(withoutWall(b)).toBe(withoutWall(a));
    const c = await runScenario(scenario({ seed: 8 }));
    expect(withoutWall(c)).not.toBe(withoutWall(a));
    expect(Object.keys(c.totals)).toEqual(Object.keys(a.totals));
    expect(c.totals.guestPages).toBe(a.totals.guestPages);
  });

  it('saves about half with two identical guests, nothing with guests that share nothing', async () => {
    const same = await runScenario(
      scenario({ durationS: 0 }, { image: { id: 'os', fraction: 1 }, zeroFraction: 0, writeRatePagesPerS: 0 }),
    );
    expect(same.totals.savedPct).toBeGreaterThan(49.9);
    expect(same.totals.savedPct).toBeLessThanOrEqual(50);
    expect(same.totals.pagesShared).toBe(1024);
    expect(same.totals.pagesSharing).toBe(1024);
    const apart = await runScenario(
      scenario({ durationS: 0 }, { image: { id: 'os', fraction: 0 }, zeroFraction: 0, writeRatePagesPerS: 0 }),
    );
    expect(apart.totals.pagesShared).toBe(0);
    expect(apart.totals.savedPct).toBeLessThanOrEqual(0);
    expect(apart.totals.machineFramesUsed).toBe(2048 + 1); // and the zero frame
  });

  it('reports ENOMEM failures when the guests do not fit without dedup', async () => {
    const r = await runScenario(scenario({ machine: { memoryMiB: 6 }, dedup: { strategy: 'none' } }));
    expect(r.failures.length).toBeGreaterThan(0);
    expect(r.failures[0]).toMatchObject({ errno: 'ENOMEM', op: 'populate_physmap' });
    expect(r.totals.failedGuests).toBe(r.failures.length);
    expect(r.guests.filter((g) => g.state === 'failed').map((g) => g.name)).toEqual(r.failures.map((f) => f.guest));
    // The same machine holds both guests with inline dedup.
    const inline = await runScenario(scenario({ machine: { memoryMiB: 6 } }));
    expect(inline.failures).toEqual([]);
  });

  it('reports progress up to the end', async () => {
    const seen: number[] = [];
    const r = await runScenario(scenario(), { onProgress: (p) => seen.push(p.simNs), progressEverySteps: 10 });
    expect(seen.length).toBeGreaterThan(5);
    expect(seen.at(-1)).toBe(r.simulatedNs);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]!);
  });

  it('validates the scenario it is given', async () => {
    const bad = { ...scenario(), machine: { memoryMiB: -1, allocator: 'buddy' } } as never;
    await expect(runScenario(bad)).rejects.toThrow(/machine.memoryMiB/);
  });
});
