import { describe, expect, it } from 'vitest';
import { checkDedupStrategy } from '@pagevisor/testkit';
import plugin from './index.mjs';

/** One line per kit call: configurations, sequences, operations, where it merged, time. */
function summary(label, report) {
  const c = report.configurations;
  const sum = (f) => c.reduce((n, x) => n + f(x), 0);
  const useful = c.filter((x) => x.useful).length;
  console.log(
    `[kit] ${report.plugin} ${label}: ${c.length} configurations, ${sum((x) => x.sequences)} sequences, ${sum((x) => x.operations)} operations, ` +
      `merged in ${sum((x) => x.runsMerged)}, evicted in ${sum((x) => x.counters['evictions'] ?? 0)}, declined in ${sum((x) => x.counters['declined'] ?? 0)} ` +
      `(useful in ${useful} configurations), seed ${report.seed}, ${report.seconds.toFixed(1)} s`,
  );
}

describe('the conformance kit', () => {
  it('passes with a capacity far below the frames of the kit\'s hosts (evicting all the time)', async () => {
    const report = await checkDedupStrategy(plugin, { options: { capacity: 4 } });
    summary('capacity 4', report);
    // A bounded index still shares: whole-page writes of contents it holds merge.
    expect(report.configurations.filter((c) => c.useful).length).toBeGreaterThan(0);
    expect(report.configurations.some((c) => (c.counters['evictions'] ?? 0) > 0)).toBe(true);
  });

  it('passes with capacity 1 (only the zero frame: every other offer declined)', async () => {
    const report = await checkDedupStrategy(plugin, { options: { capacity: 1 } });
    summary('capacity 1', report);
  });

  it('passes with the default capacity (larger than the kit\'s machines: nothing evicted)', async () => {
    const report = await checkDedupStrategy(plugin);
    summary('default capacity', report);
    expect(report.configurations.filter((c) => c.useful).length).toBeGreaterThan(0);
  });
});
