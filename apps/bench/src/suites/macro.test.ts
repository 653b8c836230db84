import { describe, expect, it } from 'vitest';
import { parseScenario, type ScenarioInput } from '@pagevisor/workloads';
import { macroVariants, shrinkScenario } from './macro.js';

describe('macroVariants', () => {
  for (const quick of [false, true]) {
    it(`gives valid scenarios of every strategy and swap configuration${quick ? ' (quick)' : ''}`, () => {
      const variants = macroVariants(quick);
      expect(variants.map((v) => v.group)).toEqual([
        'dedup-none',
        'dedup-inline',
        'dedup-ksm',
        'dedup-esx',
        'default-inline',
        'swap-shared-clock',
        'swap-shared-lru',
        'swap-shared-random',
        'swap-per-domain-clock',
        'swap-per-domain-lru',
        'swap-per-domain-random',
      ]);
      for (const v of variants) {
        const s = parseScenario(v.scenario as unknown as ScenarioInput);
        if (v.group.startsWith('dedup-')) expect(s.dedup.strategy).toBe(v.group.slice('dedup-'.length));
        if (v.group.startsWith('swap-')) {
          expect(s.machine.swap).toMatchObject({ compareBaseline: false });
          expect(`swap-${s.machine.swap!.mode}-${s.machine.swap!.policy}`).toBe(v.group);
        }
      }
    });
  }
});

describe('shrinkScenario', () => {
  it('divides machine and guest memory and caps the duration', () => {
    const s = shrinkScenario({ durationS: 60, machine: { memoryMiB: 8192 }, guests: [{ memoryMiB: 1024 }] }, 64, 5);
    expect(s).toEqual({ durationS: 5, machine: { memoryMiB: 128 }, guests: [{ memoryMiB: 16 }] });
  });
});
