import { describe, expect, it } from 'vitest';
import { measurement, withLimit, type Measurement, type SuiteName } from './measurement.js';
import { evaluateTargets, scaleCpuTarget, sideBySideProblems, SIDE_BY_SIDE_MS, TARGET_SOURCES, type AgainstRun } from './targets.js';

function m(id: string, value: number): Measurement {
  const [suite, group, key] = id.split('.') as [SuiteName, string, string];
  return measurement({ suite, group, key, name: id, unit: 'u', better: 'higher', samples: [value] });
}

const GIB = 1024 ** 3;

describe('evaluateTargets', () => {
  const limit = m('limits.native.copy-hash', 1000);
  const all = [
    withLimit(m(TARGET_SOURCES.inlineWrite, 650), limit, 'native copy+XXH64', 'native'),
    m(TARGET_SOURCES.ksmScan, 249_999),
    m(TARGET_SOURCES.metadataMacro, 16),
    m(TARGET_SOURCES.scaleWall, 179.9),
    m(TARGET_SOURCES.scaleRss, 8 * GIB),
  ];

  it('judges each target on its figure, thresholds included or not as stated', () => {
    const t = new Map(evaluateTargets(all, false).map((x) => [x.key, x]));
    expect(t.get('inline-write-new')).toMatchObject({ value: 0.65, met: true, source: TARGET_SOURCES.inlineWrite, unit: 'x native' });
    expect(t.get('ksm-scan')).toMatchObject({ value: 249_999, met: false });
    expect(t.get('metadata')).toMatchObject({ value: 16, met: true, source: TARGET_SOURCES.metadataMacro });
    expect(t.get('scale-wall')).toMatchObject({ value: 179.9, met: true });
    // Under 8 GiB: exactly 8 GiB misses.
    expect(t.get('scale-rss')).toMatchObject({ value: 8 * GIB, met: false });
  });

  it('judges each small hypercall through the dispatcher on its own rate, 1,000,000 ops/s included', () => {
    const ids = TARGET_SOURCES.abiDispatch;
    const t = new Map(evaluateTargets([m(ids.populate, 1_000_000), m(ids.currentReservation, 4_000_000), m(ids.readPage, 999_999)], false).map((x) => [x.key, x]));
    expect(t.get('abi-populate')).toMatchObject({ value: 1_000_000, met: true, unit: 'ops/s', source: ids.populate });
    expect(t.get('abi-current-reservation')).toMatchObject({ value: 4_000_000, met: true });
    expect(t.get('abi-read-page')).toMatchObject({ value: 999_999, met: false });
    expect(new Map(evaluateTargets([], false).map((x) => [x.key, x])).get('abi-read-page')).toMatchObject({ value: null, met: null });
  });

  it('judges the huge scenario under 10 minutes and 8 GiB, not in a quick run', () => {
    const run = [m(TARGET_SOURCES.hugeWall, 599.9), m(TARGET_SOURCES.hugeRss, 8 * GIB)];
    const t = new Map(evaluateTargets(run, false).map((x) => [x.key, x]));
    expect(t.get('huge-wall')).toMatchObject({ value: 599.9, met: true, unit: 's' });
    expect(t.get('huge-rss')).toMatchObject({ value: 8 * GIB, met: false });
    expect(new Map(evaluateTargets(run, true).map((x) => [x.key, x])).get('huge-wall')).toMatchObject({ met: null, note: 'quick run of a shrunk scenario: not judged' });
  });

  it('judges the swap-in target on the de-duplicated hit over the plain swap-in, 1 included', () => {
    const plain = m('swap.swap-in.plain', 1000);
    const judged = (ratio: number) => evaluateTargets([{ ...m(TARGET_SOURCES.swapInDeduped, ratio * 1000), limit: { id: plain.id, name: 'plain swap-in (paired)', ratio } }], false).find((x) => x.key === 'swap-in-dedup')!;
    expect(judged(1)).toMatchObject({ value: 1, met: true, op: '>=', unit: 'x plain', source: TARGET_SOURCES.swapInDeduped });
    expect(judged(0.99).met).toBe(false);
    // Without its pairing (no ratio) it is not judged.
    expect(evaluateTargets([m(TARGET_SOURCES.swapInDeduped, 1000)], false).find((x) => x.key === 'swap-in-dedup')).toMatchObject({ value: null, met: null });
  });

  it('judges sharing under swap: no duplicate frames, the saved % gaps within their points', () => {
    const { overcommit: over, reading } = TARGET_SOURCES.sharing;
    const t = new Map(
      evaluateTargets([m(over.inlineDuplicates, 0), m(over.inlineGap, 0.5), m(over.ksmVsInline, 2.01), m(over.esxVsInline, 1.2), m(reading.inlineGap, 0.51), m(reading.ksmVsInline, 0.1)], false).map((x) => [x.key, x]),
    );
    expect(t.get('sharing-duplicates')).toMatchObject({ value: 0, met: true, threshold: 0, source: over.inlineDuplicates });
    expect(t.get('sharing-saved')).toMatchObject({ value: 0.5, met: true, threshold: 0.5, unit: 'points' });
    // The scanners are not judged on overcommit's 4 s, where they have not converged.
    expect(t.has('sharing-ksm') || t.has('sharing-esx')).toBe(false);
    // On overcommit-reading.json, judged on its own figures, the scanners too.
    expect(t.get('sharing-reading-saved')).toMatchObject({ value: 0.51, met: false, source: reading.inlineGap, name: 'overcommit-reading tight, inline: saved % within 0.5 points of no swapping' });
    expect(t.get('sharing-reading-ksm')).toMatchObject({ value: 0.1, met: true, threshold: 2 });
    expect(evaluateTargets([m(reading.esxVsInline, 2.01)], false).find((x) => x.key === 'sharing-reading-esx')).toMatchObject({ value: 2.01, met: false });
    expect(t.get('sharing-reading-duplicates')).toMatchObject({ value: null, met: null });
    expect(evaluateTargets([m(over.inlineDuplicates, 3)], false).find((x) => x.key === 'sharing-duplicates')!.met).toBe(false);
  });

  it('judges each ksmd phase on pagevisor\'s ratio to ksmd\'s rate, 1 included; unmeasured, saying why, without ksmd', () => {
    const judged = (ratio: number) =>
      evaluateTargets([{ ...m(TARGET_SOURCES.ksmd.merge, ratio * 1000), limit: { id: 'ksmd.merge.kernel', name: 'ksmd (paired)', ratio } }], false).find((x) => x.key === 'ksmd-merge')!;
    expect(judged(1)).toMatchObject({ value: 1, met: true, op: '>=', threshold: 1, unit: 'x ksmd', source: TARGET_SOURCES.ksmd.merge, name: "merge scan: at least 1.0x ksmd's rate (same run)" });
    expect(judged(0.99).met).toBe(false);
    const alone = { ...m(TARGET_SOURCES.ksmd.checksum, 500_000), note: 'ksmd not measured: no permission: run as root' };
    const t = new Map(evaluateTargets([alone], false).map((x) => [x.key, x]));
    expect(t.get('ksmd-checksum')).toMatchObject({ value: null, met: null, source: null, note: 'ksmd not measured: no permission: run as root' });
    expect(t.get('ksmd-unstable')).toMatchObject({ value: null, met: null, note: 'not measured (ksmd suite not run or failed)' });
    expect([...t.keys()].filter((k) => k.startsWith('ksmd-'))).toEqual(['ksmd-checksum', 'ksmd-unstable', 'ksmd-merge', 'ksmd-merged', 'ksmd-esx-distinct', 'ksmd-esx-identical']);
    const esx = evaluateTargets([{ ...m(TARGET_SOURCES.esxKsmd.identical, 1000), limit: { id: 'ksmd.esx-identical.kernel', name: 'ksmd (paired)', ratio: 1.2 } }], false).find((x) => x.key === 'ksmd-esx-identical')!;
    expect(esx).toMatchObject({ value: 1.2, met: true, unit: 'x ksmd', name: "ESX scan of identical pages (hash, hint, merge): at least 1.0x ksmd's first two full scans of identical pages (checksum, merge) (same run)" });
  });

  it('leaves targets whose figure is missing unmeasured', () => {
    const t = evaluateTargets([m(TARGET_SOURCES.ksmScan, 300_000)], false);
    expect(t.find((x) => x.key === 'ksm-scan')!.met).toBe(true);
    for (const key of ['inline-write-new', 'inline-write-stored', 'timeline-sample', 'scale-cpu', 'metadata', 'scale-wall', 'scale-rss', 'swap-in-dedup', 'sharing-duplicates', 'sharing-saved', 'sharing-reading-saved', 'sharing-reading-ksm', 'sharing-reading-esx', 'ksmd-checksum', 'ksmd-unstable', 'ksmd-merge', 'ksmd-merged', 'ksmd-esx-distinct', 'ksmd-esx-identical', 'huge-wall', 'huge-rss']) {
      expect(t.find((x) => x.key === key)).toMatchObject({ value: null, met: null, source: null });
    }
  });

  it('judges the inline writes on their native ratios, 0.6 included, not on the JavaScript ones', () => {
    const stored = (native: number | undefined) => {
      const js = withLimit(m(TARGET_SOURCES.inlineWriteStored, 700), m('limits.machine.hash-compare', 700), 'hash+compare');
      const row = native === undefined ? js : withLimit(js, m('limits.native.hash-compare', 700 / native), 'native hash+compare', 'native');
      return evaluateTargets([row], false).find((x) => x.key === 'inline-write-stored')!;
    };
    expect(stored(0.6)).toMatchObject({ value: 0.6, met: true, op: '>=', threshold: 0.6, source: TARGET_SOURCES.inlineWriteStored, name: 'inline whole-page write of stored content >= 0.6 x native hash+compare' });
    expect(stored(0.59).met).toBe(false);
    // A JavaScript ratio of 1 alone does not count: without the C reference it is not measured.
    expect(stored(undefined)).toMatchObject({ value: null, met: null, source: null });
  });

  it('leaves the inline writes unmeasured without the C reference, saying why', () => {
    const write = withLimit(m(TARGET_SOURCES.inlineWrite, 650), m('limits.machine.copy-hash', 1000), 'copy+hash');
    const why = 'no C compiler: spawnSync cc ENOENT (install one, e.g. apt-get install gcc)';
    const t = evaluateTargets([write], false, { nativeUnavailable: why }).find((x) => x.key === 'inline-write-new')!;
    expect(t).toMatchObject({ value: null, met: null, note: `not measured: no native bound (${why})` });
    expect(evaluateTargets([write], false).find((x) => x.key === 'inline-write-new')!.note).toBe('not measured: no native bound (the C reference did not run in this run)');
  });

  it('judges the timeline sample on the 1 TiB host\'s cost over the 1 GiB host\'s, 2 included', () => {
    const judged = (ratio: number) => evaluateTargets([m(TARGET_SOURCES.timelineSample, ratio)], false).find((x) => x.key === 'timeline-sample')!;
    expect(judged(2)).toMatchObject({ value: 2, met: true, op: '<=', threshold: 2, source: TARGET_SOURCES.timelineSample });
    expect(judged(2.01).met).toBe(false);
    expect(judged(1).note).toBeUndefined();
  });

  it('takes the metadata from the scale report first, then the default scenario report, then the run in process', () => {
    const pick = (ms: Measurement[]): string | null => evaluateTargets(ms, false).find((x) => x.key === 'metadata')!.source;
    const inProcess = m(TARGET_SOURCES.metadataMacro, 20);
    const report = m(TARGET_SOURCES.metadataMacroReport, 18);
    const scale = m(TARGET_SOURCES.metadataScale, 12);
    expect(pick([inProcess])).toBe(TARGET_SOURCES.metadataMacro);
    expect(pick([inProcess, report])).toBe(TARGET_SOURCES.metadataMacroReport);
    expect(pick([inProcess, report, scale])).toBe(TARGET_SOURCES.metadataScale);
  });

  it('does not judge the scale figures of a quick run', () => {
    const t = new Map(evaluateTargets(all, true).map((x) => [x.key, x]));
    expect(t.get('scale-wall')).toMatchObject({ value: 179.9, met: null });
    expect(t.get('scale-rss')!.met).toBeNull();
    expect(t.get('inline-write-new')!.met).toBe(true);
    expect(t.get('inline-write-new')!.note).toMatch(/quick/);
  });
});

describe('sideBySideProblems', () => {
  const machine = { cpus: 2, cpuModel: 'AMD EPYC' };
  const now = { date: '2026-12-08T02:00:00.000Z', machine, options: { quick: false } };

  it('accepts one machine within the hour, either run first', () => {
    expect(sideBySideProblems({ ...now, date: '2026-12-08T01:00:00.000Z' }, now)).toEqual([]);
    expect(sideBySideProblems({ ...now, date: '2026-12-08T02:30:00.000Z' }, now)).toEqual([]);
    expect(SIDE_BY_SIDE_MS).toBe(3_600_000);
  });

  it('names every reason the runs were not side by side', () => {
    expect(sideBySideProblems({ ...now, date: '2026-12-08T00:59:59.000Z' }, now)).toEqual(['measured 1.0 hours apart (at most 1)']);
    expect(sideBySideProblems({ date: 'yesterday', machine: { ...machine, cpus: 4 }, options: { quick: true } }, now)).toEqual([
      'another machine (4 x AMD EPYC, now 2 x AMD EPYC)',
      'the --compare run has no valid date',
      'one run is --quick and the other is not',
    ]);
    expect(sideBySideProblems({ date: now.date, options: now.options }, now)).toEqual(['the --compare run names no machine']);
  });
});

describe('scaleCpuTarget', () => {
  const cpu = (s: number) => measurement({ suite: 'scale', group: 'scale-16x1g', key: 'process-cpu-s', name: 'CPU', unit: 's', better: 'lower', samples: [s] });
  const against = (old: Measurement[], problems: string[] = []): AgainstRun => ({ file: 'old.json', measurements: old, problems, measured: 'commit 565f6c8' });

  it('is the id the targets read', () => {
    expect(cpu(1).id).toBe(TARGET_SOURCES.scaleCpu);
  });

  it('judges this run\'s CPU over the --compare run\'s, 0.5 included', () => {
    expect(scaleCpuTarget(cpu(15), false, against([cpu(30)]))).toMatchObject({ value: 0.5, met: true, op: '<=', threshold: 0.5, unit: 'x old', source: TARGET_SOURCES.scaleCpu, against: 'old.json', note: '15.0 s now, 30.0 s in old.json, commit 565f6c8' });
    expect(scaleCpuTarget(cpu(16), false, against([cpu(30)])).met).toBe(false);
    // Through evaluateTargets, with the context's run.
    expect(evaluateTargets([cpu(10)], false, { against: against([cpu(30)]) }).find((t) => t.key === 'scale-cpu')).toMatchObject({ met: true, against: 'old.json' });
  });

  it('is not measured without --compare, without the old figure, or without this run\'s', () => {
    expect(scaleCpuTarget(cpu(15), false, undefined)).toMatchObject({ value: null, met: null, note: expect.stringMatching(/needs --compare/) });
    expect(scaleCpuTarget(cpu(15), false, against([m('scale.scale-16x1g.wall-s', 30)]))).toMatchObject({ value: null, met: null, against: 'old.json', note: 'not measured: old.json has no scale.scale-16x1g.process-cpu-s' });
    expect(scaleCpuTarget(undefined, false, against([cpu(30)]))).toMatchObject({ value: null, met: null });
  });

  it('shows the figure but does not judge it when the runs were not side by side, or in a quick run', () => {
    const apart = scaleCpuTarget(cpu(10), false, against([cpu(30)], ['measured 3.0 hours apart (at most 1)']));
    expect(apart).toMatchObject({ met: null, note: expect.stringMatching(/not judged: measured 3\.0 hours apart/) });
    expect(apart.value).toBeCloseTo(1 / 3);
    expect(scaleCpuTarget(cpu(10), true, against([cpu(30)]))).toMatchObject({ met: null, note: expect.stringMatching(/not judged: quick run/) });
  });
});
