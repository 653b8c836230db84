import { describe, expect, it } from 'vitest';
import { checkEvictionPolicy } from '@pagevisor/testkit';
import plugin from './index.mjs';

/** One line per kit call: configurations, sequences, operations, swap traffic, time. */
function summary(label, report) {
  const c = report.configurations;
  const sum = (f) => c.reduce((n, x) => n + f(x), 0);
  console.log(
    `[kit] ${report.plugin} ${label}: ${c.length} configurations (${c.filter((x) => x.mode === 'alone').length} alone), ${sum((x) => x.sequences)} sequences, ` +
      `${sum((x) => x.operations)} operations, ${sum((x) => x.swapOuts)} swap-outs, ${sum((x) => x.swapIns)} swap-ins (swapped in in ${sum((x) => x.runsSwappedIn)} sequences), ` +
      `useful in ${c.filter((x) => x.useful).length}, seed ${report.seed}, ${report.seconds.toFixed(1)} s`,
  );
}

describe('the conformance kit', () => {
  it('passes with the default options', async () => {
    const report = await checkEvictionPolicy(plugin);
    summary('defaults', report);
    // Alone and on hosts with swap the policy named victims that went out and came back.
    expect(report.configurations.every((c) => c.useful)).toBe(true);
  });

  it('passes with the paper\'s ghost queue (ghostFraction 0.5), ghosts coming back to Am', async () => {
    const report = await checkEvictionPolicy(plugin, { options: { ghostFraction: 0.5 } });
    summary('ghostFraction 0.5', report);
    expect(report.configurations.every((c) => c.useful)).toBe(true);
  });

  it('passes with extreme shares: a tiny A1in, and an A1in of 90% with every frame remembered', async () => {
    summary('a1inFraction 0.05', await checkEvictionPolicy(plugin, { options: { a1inFraction: 0.05 } }));
    summary('a1inFraction 0.9, ghostFraction 1', await checkEvictionPolicy(plugin, { options: { a1inFraction: 0.9, ghostFraction: 1 }, seed: 7 }));
  });
});
