import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScenario, type ScenarioInput } from '@pagevisor/workloads';
import { testProject } from '../../tests/test-project.js';
import { formatMarkdown, formatResult } from '../format.js';
import type { BenchResult } from '../result.js';
import { runBench } from '../run-bench.js';
import { simulatorMissing } from '../simulator-cli.js';
import { loadStrategies, pluginsOf, type GivenStrategy } from '../strategies.js';
import { measurement, type Measurement } from '../measurement.js';
import { macroVariants, roomyMemoryMiB, SHARING_SCENARIOS, SHARING_STRATEGIES, sharingGroup, sharingIds, sharingMeasurements, shrinkScenario } from './macro.js';

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
        'sharing-overcommit-tight-inline',
        'sharing-overcommit-roomy-inline',
        'sharing-overcommit-tight-ksm',
        'sharing-overcommit-roomy-ksm',
        'sharing-overcommit-tight-esx',
        'sharing-overcommit-roomy-esx',
        'sharing-reading-tight-inline',
        'sharing-reading-roomy-inline',
        'sharing-reading-tight-ksm',
        'sharing-reading-roomy-ksm',
        'sharing-reading-tight-esx',
        'sharing-reading-roomy-esx',
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

    it(`runs overcommit and overcommit-reading as they are and on a machine holding every guest, under inline, ksm and esx${quick ? ' (quick)' : ''}`, () => {
      const variants = macroVariants(quick);
      const byGroup = new Map(variants.map((v) => [v.group, v]));
      const over = parseScenario(byGroup.get('swap-shared-clock')!.scenario as unknown as ScenarioInput);
      for (const { key: sc } of SHARING_SCENARIOS) {
        const inlineTight = parseScenario(byGroup.get(sharingGroup(sc, 'tight', 'inline'))!.scenario as unknown as ScenarioInput);
        expect(inlineTight.name).toBe(sc === 'overcommit' ? 'overcommit' : 'overcommit-reading');
        for (const strategy of SHARING_STRATEGIES) {
          const tight = byGroup.get(sharingGroup(sc, 'tight', strategy))!;
          const roomy = byGroup.get(sharingGroup(sc, 'roomy', strategy))!;
          const t = parseScenario(tight.scenario as unknown as ScenarioInput);
          const r = parseScenario(roomy.scenario as unknown as ScenarioInput);
          expect([tight.strategy, roomy.strategy, t.dedup.strategy, r.dedup.strategy]).toEqual([strategy, strategy, strategy, strategy]);
          // Tight: the scenario as it is (overcommit's as the matrix runs it), only the strategy changed.
          expect({ ...t, dedup: inlineTight.dedup }).toEqual(inlineTight);
          expect(t.machine.swap).toMatchObject({ mode: 'shared', policy: 'clock', compareBaseline: false });
          expect({ ...t.machine, memoryMiB: 0 }).toEqual({ ...over.machine, memoryMiB: 0 });
          expect(t.machine.memoryMiB).toBe(over.machine.memoryMiB);
          // Roomy: the same with RAM for every guest and a quarter more; it must swap nothing.
          const guestMiB = t.guests.reduce((n, g) => n + g.count * g.memoryMiB, 0);
          expect(guestMiB).toBeGreaterThan(2 * t.machine.memoryMiB);
          expect(r.machine.memoryMiB).toBe(Math.ceil(guestMiB * 1.25));
          expect({ ...r, machine: { ...r.machine, memoryMiB: t.machine.memoryMiB } }).toEqual(t);
          expect([tight.expectNoSwap, roomy.expectNoSwap]).toEqual([undefined, true]);
          expect(roomy.label).toBe(`${t.name} on ${r.machine.memoryMiB} MiB (roomy: nothing swapped), dedup ${strategy}`);
        }
      }
      // overcommit-reading: the guests read for longer (quick: 5 s at most).
      const reading = parseScenario(byGroup.get(sharingGroup('reading', 'tight', 'inline'))!.scenario as unknown as ScenarioInput);
      expect(reading.durationS).toBe(quick ? 5 : 60);
      // The tight inline overcommit run is the matrix's swap-shared-clock scenario: the suite runs it once.
      expect(JSON.stringify(byGroup.get(sharingGroup('overcommit', 'tight', 'inline'))!.scenario)).toBe(JSON.stringify(byGroup.get('swap-shared-clock')!.scenario));
    });
  }
});

describe('sharingMeasurements', () => {
  const saved = (group: string, value: number): Measurement => measurement({ suite: 'macro', group, key: 'saved-pct', name: group, unit: '%', better: 'higher', samples: [value], exact: true });

  it('gives the gaps in points per scenario: tight against roomy per strategy, and ksm and esx against inline on the tight machine', () => {
    const g = (size: 'tight' | 'roomy', strategy: string) => sharingGroup('overcommit', size, strategy);
    const ms = [saved(g('tight', 'inline'), 28.39), saved(g('roomy', 'inline'), 34.55), saved(g('tight', 'ksm'), 13.55), saved(g('roomy', 'ksm'), 0), saved(g('tight', 'esx'), 29.1), saved(g('roomy', 'esx'), 31.49)];
    const ids = sharingIds('overcommit');
    const got = new Map(sharingMeasurements(ms).map((m) => [m.id, m]));
    expect([...got.keys()]).toEqual([ids.inlineGap, 'macro.sharing-overcommit.ksm-tight-vs-roomy', ids.ksmVsInline, 'macro.sharing-overcommit.esx-tight-vs-roomy', ids.esxVsInline]);
    // Absolute differences, rounded to the two decimals of saved %.
    expect([...got.values()].map((m) => m.median)).toEqual([6.16, 13.55, 14.84, 2.39, 0.71]);
    for (const m of got.values()) expect(m).toMatchObject({ unit: 'points', better: 'lower', exact: true, group: 'sharing-overcommit' });
    expect(got.get(ids.ksmVsInline)!.name).toBe('overcommit, tight: |saved % ksm - saved % inline|');
  });

  it('leaves out a gap whose runs are missing (a run failed), and keeps the scenarios apart', () => {
    const got = sharingMeasurements([saved(sharingGroup('overcommit', 'tight', 'inline'), 28.39), saved(sharingGroup('reading', 'tight', 'ksm'), 20), saved(sharingGroup('reading', 'tight', 'inline'), 19.5)]);
    expect(got.map((m) => [m.id, m.median])).toEqual([[sharingIds('reading').ksmVsInline, 0.5]]);
    expect(sharingMeasurements([])).toEqual([]);
  });
});

describe('roomyMemoryMiB', () => {
  it('is the guests memory together and a quarter more, rounded up', () => {
    expect(roomyMemoryMiB({ guests: [{ count: 6, memoryMiB: 16 }] })).toBe(120);
    expect(roomyMemoryMiB({ guests: [{ count: 3, memoryMiB: 3 }, { memoryMiB: 1 }] })).toBe(13);
  });
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
      'sharing-overcommit-tight-inline',
      'sharing-overcommit-roomy-inline',
      'sharing-overcommit-tight-ksm',
      'sharing-overcommit-roomy-ksm',
      'sharing-overcommit-tight-esx',
      'sharing-overcommit-roomy-esx',
      'sharing-reading-tight-inline',
      'sharing-reading-roomy-inline',
      'sharing-reading-tight-ksm',
      'sharing-reading-roomy-ksm',
      'sharing-reading-tight-esx',
      'sharing-reading-roomy-esx',
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

  it('measures sharing under swap: each sharing scenario tight and roomy per strategy, the gaps, and judges their targets', () => {
    for (const { key: sc } of SHARING_SCENARIOS) {
      for (const strategy of SHARING_STRATEGIES) {
        for (const size of ['tight', 'roomy'] as const) {
          for (const key of ['saved-pct', 'duplicate-frames', 'swap-outs', 'swap-ins-cached', 'swap-ins-deduped', 'paged-pages']) {
            const id = `macro.${sharingGroup(sc, size, strategy)}.${key}`;
            expect(result.measurements.find((x) => x.id === id), id).toMatchObject({ exact: true });
          }
        }
        // Roomy: nothing swapped (the suite refuses a roomy run that swapped); tight: guest memory beyond RAM.
        expect(median(`macro.${sharingGroup(sc, 'roomy', strategy)}.swap-outs`)).toBe(0);
        expect(median(`macro.${sharingGroup(sc, 'roomy', strategy)}.paged-pages`)).toBe(0);
        expect(median(`macro.${sharingGroup(sc, 'tight', strategy)}.swap-outs`)).toBeGreaterThan(0);
      }
      const ids = sharingIds(sc);
      // Inline keeps RAM free of duplicates while swapping.
      expect(median(ids.inlineDuplicates)).toBe(0);
      const saved = (size: 'tight' | 'roomy', strategy: string): number => median(`macro.${sharingGroup(sc, size, strategy)}.saved-pct`);
      expect(median(ids.inlineGap)).toBe(Math.round(Math.abs(saved('tight', 'inline') - saved('roomy', 'inline')) * 100) / 100);
      expect(median(ids.ksmVsInline)).toBe(Math.round(Math.abs(saved('tight', 'ksm') - saved('tight', 'inline')) * 100) / 100);
      const prefix = sc === 'overcommit' ? 'sharing' : `sharing-${sc}`;
      const t = new Map(result.targets.map((x) => [x.key, x]));
      expect(t.get(`${prefix}-duplicates`)).toMatchObject({ value: 0, met: true, source: ids.inlineDuplicates });
      // The scanners are judged where they converge (overcommit-reading), measured everywhere.
      const judged = sc === 'overcommit' ? ([['saved', ids.inlineGap, 0.5]] as const) : ([['saved', ids.inlineGap, 0.5], ['ksm', ids.ksmVsInline, 2], ['esx', ids.esxVsInline, 2]] as const);
      for (const [key, source, threshold] of judged) {
        expect(t.get(`${prefix}-${key}`)).toMatchObject({ value: median(source), met: median(source) <= threshold, source, note: expect.stringMatching(/quick/) });
      }
      if (sc === 'overcommit') expect(t.has('sharing-ksm') || t.has('sharing-esx')).toBe(false);
    }
    // The tight inline overcommit run is the matrix's swap-shared-clock one: its runs, not new ones.
    const tight = sharingGroup('overcommit', 'tight', 'inline');
    expect(median(`macro.${tight}.saved-pct`)).toBe(median('macro.swap-shared-clock.saved-pct'));
    expect(result.measurements.find((x) => x.id === `macro.${tight}.wall-ms`)!.samples).toEqual(result.measurements.find((x) => x.id === 'macro.swap-shared-clock.wall-ms')!.samples);
    expect(result.suites.find((x) => x.suite === 'macro')!.notes).toContain(`${tight}: the same scenario as swap-shared-clock, whose runs its figures are.`);
  });

  it("lists the plugin's failed runs in the errors, like the built-ins'", () => {
    expect(result.errors).toEqual([
      expect.stringMatching(/^macro: default scenario, dedup nothing-shared: 8 guests failed; first: .*ENOMEM/),
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
