import { describe, expect, it } from 'vitest';
import { DEDUP_PLUGINS } from '@pagevisor/dedup';
import { checkDedupStrategy, configurationsFor, COVERAGE_MIN_RUNS, type ConfigurationReport } from './index.js';
import { builtInDedupOptions, kitOptions, pagedAtForks, RUNS, runsThatShared, summarize, timeoutFor } from '../tests/built-ins.js';

// The reference-model check (packages/hypervisor's checkAgainstModel) on every built-in dedup
// strategy in every host configuration of the kit, with the coverage the check needs to mean
// something: the strategy shared pages in more than a fifth of the sequences, every op kind was
// carried out and every refusal the generator aims at was met; with swap, where the strategy is
// the configuration's own, pages went out and came back, and forks met paged-out pages of their
// parent (over those configurations).

const CONFIGURATIONS = configurationsFor('dedup');
/** Configurations with domains in two trust groups and one index: run again with the index partitioned by the strategy's own `trustGroups` option. */
const GROUPS_ONE_INDEX = CONFIGURATIONS.filter((c) => c.mode === 'host' && c.trustGroups === 'one index').map((c) => c.name);

function expectCoverage(strategy: string, c: ConfigurationReport): void {
  const config = CONFIGURATIONS.find((k) => k.name === c.name)!;
  if (config.mode !== 'host') throw new Error(`${c.name} is not a host configuration`);
  if (RUNS >= COVERAGE_MIN_RUNS) expect(c.coverage.missing, `${c.name}: never met`).toEqual([]);
  if (config.swap === undefined) {
    // The property is only as good as the sharing it exercises.
    expect(runsThatShared(strategy, c), `${c.name}: sequences in which ${strategy} shared`).toBeGreaterThan(c.sequences / 5);
  } else if (config.dedup.plugin === strategy) {
    // With swap, what matters is that pages went out and came back; with one shared area, that
    // some came back onto a frame resident already (the swap cache by slot, the inline index).
    expect(c.runsSwappedIn, `${c.name}: sequences with swap-ins`).toBeGreaterThan(c.sequences / 5);
    if (config.swap.mode === 'shared') expect(c.swapInsShared, `${c.name}: swap-ins through de-duplication`).toBeGreaterThan(0);
  }
}

/** The configurations with swap whose own strategy is `strategy`. */
const ownSwap = (strategy: string): string[] => CONFIGURATIONS.filter((c) => c.mode === 'host' && c.swap !== undefined && c.dedup.plugin === strategy).map((c) => c.name);

describe.each(DEDUP_PLUGINS.map((plugin) => ({ name: plugin.name, plugin })))('built-in dedup strategy $name', ({ name, plugin }) => {
  it(`passes the kit in all ${CONFIGURATIONS.length} configurations`, async () => {
    const report = await checkDedupStrategy(plugin, kitOptions({ options: builtInDedupOptions(name) }));
    summarize(report);
    expect(report.configurations.map((c) => c.name)).toEqual(CONFIGURATIONS.map((c) => c.name));
    for (const c of report.configurations) {
      expect(c.sequences).toBeGreaterThanOrEqual(RUNS);
      expectCoverage(name, c);
      // The kit's own measure agrees: a strategy that merges is reported useful, none is not.
      expect(c.useful, c.name).toBe(name === 'none' ? false : c.runsMerged > 0);
    }
    // And forks met paged-out pages of their parent.
    if (ownSwap(name).length > 0) expect(pagedAtForks(report, ownSwap(name)), `paged-out pages at forks in ${ownSwap(name).join(', ')}`).toBeGreaterThan(0);
  }, timeoutFor(CONFIGURATIONS.length));

  if (name === 'none') return;
  it(`passes the kit with trustGroups: true (one index per trust group) in ${GROUPS_ONE_INDEX.join(', ')}`, async () => {
    const options = builtInDedupOptions(name);
    const report = await checkDedupStrategy(plugin, kitOptions({ options: (c) => ({ ...options(c), trustGroups: true }), configurations: GROUPS_ONE_INDEX }));
    summarize(report, ' trustGroups');
    for (const c of report.configurations) {
      if (RUNS >= COVERAGE_MIN_RUNS) expect(c.coverage.missing, `${c.name}: never met`).toEqual([]);
      expect(runsThatShared(name, c), `${c.name}: sequences in which ${name} shared`).toBeGreaterThan(c.sequences / 5);
    }
  }, timeoutFor(GROUPS_ONE_INDEX.length));
});
