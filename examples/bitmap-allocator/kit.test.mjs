import { describe, expect, it } from 'vitest';
import { checkAllocator } from '@pagevisor/testkit';
import plugin from './index.mjs';

describe('the conformance kit', () => {
  it('passes alone and on every host configuration', async () => {
    const report = await checkAllocator(plugin);
    const c = report.configurations;
    const sum = (f) => c.reduce((n, x) => n + f(x), 0);
    const orders = [...new Set(c.flatMap((x) => x.orders))].sort((a, b) => a - b);
    console.log(
      `[kit] ${report.plugin}: ${c.length} configurations (${c.filter((x) => x.mode === 'alone').length} alone), ${sum((x) => x.sequences)} sequences, ` +
        `${sum((x) => x.operations)} operations, orders handed out alone: ${orders.join(', ')}, seed ${report.seed}, ${report.seconds.toFixed(1)} s`,
    );
    // Alone, the kit asks for blocks of several orders: the aligned-run search was exercised.
    expect(orders.some((o) => o > 0)).toBe(true);
  });
});
