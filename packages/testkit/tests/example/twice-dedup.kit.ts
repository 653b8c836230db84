import { expect, it } from 'vitest';
import { checkDedupStrategy } from '@pagevisor/testkit';
import plugin from './twice-dedup.js';

// A kit call runs for several seconds: give vitest a timeout (its default is 5 s).
it('passes the kit', () => checkDedupStrategy(plugin), 120_000);

it('passes the kit with a small index, and merges pages somewhere', async () => {
  const report = await checkDedupStrategy(plugin, { options: { capacity: 3 } });
  for (const c of report.configurations) console.log(c.name, c.sequences, 'sequences, merged in', c.runsMerged);
  expect(report.configurations.some((c) => c.useful)).toBe(true);
}, 120_000);
