import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScenario, type ScenarioInput } from '@pagevisor/workloads';
import { testProject } from '../../tests/test-project.js';
import { formatMarkdown, formatResult } from '../format.js';
import type { BenchResult } from '../result.js';
import { runBench } from '../run-bench.js';
import { simulatorMissing } from '../simulator-cli.js';
import { loadStrategies, pluginsOf, type GivenStrategy } from '../strategies.js';
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

describe('macroVariants with --strategy plugins', () => {
  const project = testProject();
  afterAll(() => project.remove());

  it('runs static-compare, the default scenario and overcommit under each, after the built-ins, naming it in scenario files from anywhere', async () => {
    const plugins = pluginsOf(await loadStrategies(['./hash-map.mjs', '@me/nothing-shared'], project.dir));
    const variants = macroVariants(true, plugins);
    expect(variants.map((v) => v.group)).toEqual([
      'dedup-none',
      'dedup-inline',
      'dedup-ksm',
      'dedup-esx',
      'dedup-my-hash-map',
      'dedup-nothing-shared',
      'default-inline',
      'default-my-hash-map',
      'default-nothing-shared',
      'swap-shared-clock',
      'swap-shared-lru',
      'swap-shared-random',
      'swap-per-domain-clock',
      'swap-per-domain-lru',
      'swap-per-domain-random',
      'swap-shared-clock-my-hash-map',
      'swap-shared-clock-nothing-shared',
    ]);
    const byGroup = new Map(variants.map((v) => [v.group, v]));
    expect(byGroup.get('dedup-my-hash-map')!.label).toBe('static-compare, dedup my-hash-map');
    expect(byGroup.get('default-nothing-shared')!.label).toBe('default scenario, dedup nothing-shared');
    expect(byGroup.get('swap-shared-clock-my-hash-map')!.label).toBe('overcommit, swap shared, clock, dedup my-hash-map');
    for (const v of variants.filter((x) => x.group.endsWith('-my-hash-map'))) {
      expect(parseScenario(v.scenario as unknown as ScenarioInput).dedup.strategy).toBe(join(project.dir, 'hash-map.mjs'));
      expect([v.strategy, v.links]).toEqual(['my-hash-map', undefined]);
    }
    for (const v of variants.filter((x) => x.group.endsWith('-nothing-shared'))) {
      expect(parseScenario(v.scenario as unknown as ScenarioInput).dedup.strategy).toBe('@me/nothing-shared');
      expect(v.links).toEqual([{ name: '@me/nothing-shared', dir: expect.stringContaining('nothing-shared') }]);
    }
    const over = parseScenario(byGroup.get('swap-shared-clock-my-hash-map')!.scenario as unknown as ScenarioInput);
    expect(over.machine.swap).toMatchObject({ mode: 'shared', policy: 'clock', compareBaseline: false });
    // The built-ins' scenarios are those of a run without plugins.
    expect(variants.filter((v) => !v.group.includes('my-hash-map') && !v.group.includes('nothing-shared'))).toEqual(macroVariants(true));
  });
});

describe('macroVariants with --policy and --allocator plugins', () => {
  const project = testProject();
  afterAll(() => project.remove());

  it('runs overcommit under each policy in both modes, and static-compare, the default scenario and overcommit on each allocator', async () => {
    // A policy and an allocator of the project's own (their parts are not built here: only loaded and named).
    const fs = await import('node:fs');
    fs.writeFileSync(join(project.dir, 'fifo.mjs'), `export default { kind: 'eviction-policy', name: 'fifo', create: () => ({}) };\n`);
    fs.writeFileSync(join(project.dir, 'bump.mjs'), `export default { kind: 'allocator', name: 'bump', create: () => ({}) };\n`);
    const plugins = pluginsOf([...(await loadStrategies(['./fifo.mjs'], project.dir, 'eviction-policy')), ...(await loadStrategies(['./bump.mjs'], project.dir, 'allocator'))]);
    expect(plugins.map((p) => [p.kind, p.name])).toEqual([['eviction-policy', 'fifo'], ['allocator', 'bump']]);
    const variants = macroVariants(true, plugins);
    const added = variants.filter((v) => v.group.includes('fifo') || v.group.includes('bump'));
    expect(added.map((v) => [v.group, v.label])).toEqual([
      ['dedup-inline-alloc-bump', 'static-compare, dedup inline, allocator bump'],
      ['default-inline-alloc-bump', 'default scenario, dedup inline, allocator bump'],
      ['swap-shared-fifo', 'overcommit, swap shared, fifo'],
      ['swap-per-domain-fifo', 'overcommit, swap per-domain, fifo'],
      ['swap-shared-clock-alloc-bump', 'overcommit, swap shared, clock, allocator bump'],
    ]);
    for (const v of added) {
      const s = parseScenario(v.scenario as unknown as ScenarioInput);
      if (v.group.includes('fifo')) expect(s.machine.swap!.policy).toBe(join(project.dir, 'fifo.mjs'));
      else expect(s.machine.allocator).toBe(join(project.dir, 'bump.mjs'));
    }
    expect(variants.filter((v) => !added.includes(v))).toEqual(macroVariants(true));
    // A plugin of another kind is refused, naming the flag.
    await expect(loadStrategies(['./fifo.mjs'], project.dir, 'allocator')).rejects.toThrow('--allocator: plugin ./fifo.mjs: it is a eviction-policy plugin, where a allocator plugin is wanted');
  });
});

// A quick run (one repeat) of the whole macro suite with a plugin by path and one by package
// name: the built simulator in child processes. Skipped, saying why, when it is not built.
describe.skipIf(simulatorMissing() !== undefined)(`a quick macro run with --strategy plugins${simulatorMissing() === undefined ? '' : ` (skipped: ${simulatorMissing()})`}`, () => {
  const project = testProject();
  let given: GivenStrategy[];
  let result: BenchResult;
  beforeAll(async () => {
    given = await loadStrategies(['./hash-map.mjs', '@me/nothing-shared', 'inline'], project.dir);
    result = await runBench({ suites: ['macro'], quick: true, repeats: 1, strategies: given });
  }, 240_000);
  afterAll(() => project.remove());

  const median = (id: string): number => {
    const m = result.measurements.find((x) => x.id === id);
    if (m === undefined) throw new Error(`no measurement ${id}`);
    return m.median;
  };

  it('measures each plugin beside the built-ins, in the same table', () => {
    const table = formatResult(result).join('\n');
    expect(table).toContain('Strategies given (--strategy): my-hash-map (./hash-map.mjs), nothing-shared (@me/nothing-shared), inline (inline, built in: already in the matrix)');
    for (const group of ['dedup-my-hash-map', 'default-my-hash-map', 'swap-shared-clock-my-hash-map', 'metadata-default-my-hash-map', 'dedup-nothing-shared', 'swap-shared-clock-nothing-shared']) {
      expect(table).toContain(`\n  ${group}\n`);
    }
    expect(table).toMatch(/static-compare, dedup my-hash-map: saved +[\d.]+%/);
    expect(table).toMatch(/overcommit, swap shared, clock, dedup nothing-shared: swap outs/);
    expect(formatMarkdown(result)).toContain('| dedup-my-hash-map | static-compare, dedup my-hash-map: machine frames used |');
  });

  it('runs the plugins themselves: one that shares saves memory, one that shares nothing saves what none does', () => {
    expect(median('macro.dedup-my-hash-map.saved-pct')).toBeGreaterThan(50);
    expect(median('macro.dedup-nothing-shared.frames-used')).toBe(median('macro.dedup-none.frames-used'));
    expect(median('macro.dedup-nothing-shared.saved-pct')).toBe(median('macro.dedup-none.saved-pct'));
    expect(median('macro.metadata-default-my-hash-map.bytes-per-guest-page')).toBeGreaterThan(0);
  });

  it("lists the plugin's failed runs in the errors, like the built-ins'", () => {
    expect(result.errors).toEqual([
      expect.stringMatching(/^macro: default scenario, dedup nothing-shared: pagevisor run .*default-nothing-shared\.json: exit code 2 \(8 guests failed; first: .*ENOMEM/),
      'macro: metadata of the default scenario, dedup nothing-shared: 8 guests of the default scenario failed',
    ]);
    expect(result.measurements.some((m) => m.group === 'default-nothing-shared')).toBe(false);
  });

  it('records the strategies given in the JSON', () => {
    const back = JSON.parse(JSON.stringify(result)) as BenchResult;
    expect(back.strategies).toEqual([
      { kind: 'dedup', name: 'my-hash-map', specifier: './hash-map.mjs', builtIn: false },
      { kind: 'dedup', name: 'nothing-shared', specifier: '@me/nothing-shared', builtIn: false },
      { kind: 'dedup', name: 'inline', specifier: 'inline', builtIn: true },
    ]);
  });
});

describe('shrinkScenario', () => {
  it('divides machine and guest memory and caps the duration', () => {
    const s = shrinkScenario({ durationS: 60, machine: { memoryMiB: 8192 }, guests: [{ memoryMiB: 1024 }] }, 64, 5);
    expect(s).toEqual({ durationS: 5, machine: { memoryMiB: 128 }, guests: [{ memoryMiB: 16 }] });
  });
});
