import { describe, expect, it } from 'vitest';
import { ALLOCATOR_PLUGINS } from '@pagevisor/frame-allocator';
import { checkAllocator, configurationsFor, COVERAGE_MIN_RUNS } from './index.js';
import { kitOptions, pagedAtForks, RUNS, runsThatShared, summarize, timeoutFor } from '../tests/built-ins.js';

// Every built-in allocator alone against the kit's model of an allocator, then in place of the
// allocator in every host configuration, where each configuration's own strategy must still share
// pages (or, with swap, page out and back in) in more than a fifth of the sequences, and forks
// meet paged-out pages of their parent (over the configurations with swap). Where the
// allocator is the configuration's own, that host with these sequences is the one the dedup
// built-ins' run of the configuration's own strategy checks (built-ins-dedup.test.ts): not run twice.

const ALL = configurationsFor('allocator');

describe.each(ALLOCATOR_PLUGINS.map((plugin) => ({ name: plugin.name, plugin })))('built-in allocator $name', ({ name, plugin }) => {
  const CONFIGURATIONS = ALL.filter((c) => c.mode === 'alone' || c.allocator !== name);
  it(`passes the kit in ${CONFIGURATIONS.length} configurations (alone, and every host whose ${'allocator'} is another)`, async () => {
    const report = await checkAllocator(plugin, kitOptions({ configurations: CONFIGURATIONS.map((c) => c.name) }));
    summarize(report);
    expect(report.configurations.map((c) => c.name)).toEqual(CONFIGURATIONS.map((c) => c.name));
    for (const c of report.configurations) {
      if (RUNS >= COVERAGE_MIN_RUNS) expect(c.coverage.missing, `${c.name}: never met`).toEqual([]);
      const config = CONFIGURATIONS.find((k) => k.name === c.name)!;
      if (config.mode === 'alone') {
        if (config.frames === 1) continue;
        // The buddy hands out every order; the free list order 0 only, refusing the rest (EINVAL).
        if (name === 'buddy') expect(c.orders, c.name).toEqual([0, 1, 2, 3, 4, 5, 6].filter((o) => 2 ** o <= config.frames));
        else expect([c.orders, (c.refused['EINVAL'] ?? 0) > 0], c.name).toEqual([[0], true]);
        continue;
      }
      if (config.swap === undefined) expect(runsThatShared(config.dedup.plugin, c), `${c.name}: sequences in which ${config.dedup.plugin} shared`).toBeGreaterThan(c.sequences / 5);
      else {
        expect(c.runsSwappedIn, `${c.name}: sequences with swap-ins`).toBeGreaterThan(c.sequences / 5);
      }
    }
    const swapHosts = CONFIGURATIONS.filter((c) => c.mode === 'host' && c.swap !== undefined).map((c) => c.name);
    if (swapHosts.length > 0) expect(pagedAtForks(report, swapHosts), `paged-out pages at forks in ${swapHosts.join(', ')}`).toBeGreaterThan(0);
  }, timeoutFor(CONFIGURATIONS.length));
});
