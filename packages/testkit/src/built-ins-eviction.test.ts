import { describe, expect, it } from 'vitest';
import { EVICTION_POLICY_PLUGINS } from '@pagevisor/swap';
import { checkEvictionPolicy, configurationsFor, COVERAGE_MIN_RUNS } from './index.js';
import { kitOptions, pagedAtForks, RUNS, summarize, timeoutFor } from '../tests/built-ins.js';

// Every built-in eviction policy alone against the kit's model of a policy, then in every host
// configuration with swap (shared and per-domain areas, with and without device faults, under
// inline, none and ksm): pages must go out and come back in more than a fifth of the sequences,
// and forks must meet paged-out pages of their parent (over those configurations). Where the
// policy is the configuration's own, that host with these sequences is the one the dedup
// built-ins' run of the configuration's own strategy checks (built-ins-dedup.test.ts): not run
// twice.

const ALL = configurationsFor('eviction-policy');

describe.each(EVICTION_POLICY_PLUGINS.map((plugin) => ({ name: plugin.name, plugin })))('built-in eviction policy $name', ({ name, plugin }) => {
  const CONFIGURATIONS = ALL.filter((c) => c.mode === 'alone' || c.swap?.policy !== name);
  it(`passes the kit in ${CONFIGURATIONS.length} configurations (alone, and every host whose ${'policy'} is another)`, async () => {
    const report = await checkEvictionPolicy(plugin, kitOptions({ configurations: CONFIGURATIONS.map((c) => c.name) }));
    summarize(report);
    expect(report.configurations.map((c) => c.name)).toEqual(CONFIGURATIONS.map((c) => c.name));
    for (const c of report.configurations) {
      if (RUNS >= COVERAGE_MIN_RUNS) expect(c.coverage.missing, `${c.name}: never met`).toEqual([]);
      expect(c.useful, c.name).toBe(true);
      if (c.mode === 'alone') continue;
      expect(c.runsSwappedIn, `${c.name}: sequences with swap-ins`).toBeGreaterThan(c.sequences / 5);
    }
    const hosts = CONFIGURATIONS.filter((c) => c.mode === 'host').map((c) => c.name);
    expect(pagedAtForks(report, hosts), `paged-out pages at forks in ${hosts.join(', ')}`).toBeGreaterThan(0);
  }, timeoutFor(CONFIGURATIONS.length));
});
