import { describe, expect, it } from 'vitest';
import { NS_PER_S } from '@pagevisor/types';
import { formatProgress, ProgressBar } from './progress-bar.js';
import type { Report } from './report.js';
import { runScenario, type RunProgress } from './run-scenario.js';
import { tinyScenario } from '../tests/tiny-scenario.js';

const at = (simS: number, totalS: number, boot: [number, number], accesses: [number, number]): RunProgress => ({
  simNs: simS * NS_PER_S,
  totalNs: totalS * NS_PER_S,
  bootPagesDone: boot[0],
  bootPagesTotal: boot[1],
  accessesDone: accesses[0],
  accessesTotal: accesses[1],
});

describe('formatProgress', () => {
  it('takes the ETA from the pages booted and accesses done, not from simulated time', () => {
    // A quarter of boot after 2 s: 1/8 of the work, though under 1% of the simulated time.
    expect(formatProgress(at(0.5, 60, [1000, 4000], [0, 4000]), 2000, 8)).toBe(
      '[#-------] 0.5/60.0 s simulated  pages 1,000 / 4,000  ETA 14 s',
    );
    expect(formatProgress(at(30, 60, [4000, 4000], [2000, 4000]), 6000, 4)).toBe(
      '[###-] 30.0/60.0 s simulated  pages 4,000 / 4,000  ETA 2 s',
    );
    expect(formatProgress(at(0, 60, [0, 4_194_304], [0, 100]), 10, 4)).toBe('[----] 0.0/60.0 s simulated  pages 0 / 4,194,304  ETA ?');
  });

  it('weighs boot and simulated time half each when the guests plan no accesses', () => {
    expect(formatProgress(at(30, 60, [12_345, 12_345], [0, 0]), 3000, 4)).toBe(
      '[###-] 30.0/60.0 s simulated  pages 12,345 / 12,345  ETA 1 s',
    );
  });

  it('does not run past the end: a run longer than planned moves the end shown', () => {
    expect(formatProgress(at(65, 60, [8, 8], [4, 4]), 1000, 4)).toBe('[####] 65.0/65.0 s simulated  pages 8 / 8  ETA 0 s');
    expect(formatProgress(at(0, 0, [9, 9], [0, 0]), 10, 4)).toMatch(/^\[####\] .* ETA 0 s$/);
  });
});

describe('runScenario progress', () => {
  it('counts boot pages and accesses against their totals, without changing the report', async () => {
    const seen: RunProgress[] = [];
    const withBar = await runScenario(tinyScenario(), { onProgress: (p) => seen.push(p), progressEverySteps: 10 });
    const plain = await runScenario(tinyScenario());
    const figures = (r: Report): string => JSON.stringify({ ...r, wall: null });
    expect(figures(withBar)).toBe(figures(plain));
    for (const p of seen) {
      expect(p.bootPagesDone).toBeLessThanOrEqual(p.bootPagesTotal);
      expect(p.accessesDone).toBeLessThanOrEqual(p.accessesTotal);
    }
    expect(seen[0]!.bootPagesTotal).toBe(2048);
    expect(seen[0]!.accessesTotal).toBe(800);
    expect(seen.at(-1)).toMatchObject({ bootPagesDone: 2048, bootPagesTotal: 2048, accessesDone: 800, accessesTotal: 800 });
  });

  it('leaves out the work a failed guest will not do', async () => {
    const seen: RunProgress[] = [];
    const r = await runScenario(tinyScenario({ dedup: { strategy: 'none' }, machine: { memoryMiB: 6 } }), { onProgress: (p) => seen.push(p) });
    expect(r.failures.length).toBeGreaterThan(0);
    const end = seen.at(-1)!;
    expect(end.bootPagesDone).toBe(end.bootPagesTotal);
    expect(end.accessesDone).toBe(end.accessesTotal);
    expect(end.bootPagesTotal).toBeLessThan(2048);
  });
});

describe('ProgressBar', () => {
  it('draws in place, at most once per interval, and erases itself', () => {
    let out = '';
    const bar = new ProgressBar({ write: (t: string) => (out += t) }, 4, 60_000);
    bar.clear();
    expect(out).toBe('');
    bar.update(at(1, 2, [3, 10], [0, 5]));
    bar.update(at(2, 2, [10, 10], [5, 5]));
    expect(out.match(/\r\x1b\[K\[/g)).toHaveLength(1);
    expect(out).toContain('pages 3 / 10');
    bar.clear();
    expect(out.endsWith('\r\x1b[K')).toBe(true);
  });
});
