import { describe, expect, it } from 'vitest';
import { measurement, withLimit, type Measurement, type SuiteName } from './measurement.js';
import { evaluateTargets, TARGET_SOURCES } from './targets.js';

function m(id: string, value: number): Measurement {
  const [suite, group, key] = id.split('.') as [SuiteName, string, string];
  return measurement({ suite, group, key, name: id, unit: 'u', better: 'higher', samples: [value] });
}

const GIB = 1024 ** 3;

describe('evaluateTargets', () => {
  const limit = m('limits.machine.copy-hash', 1000);
  const all = [
    withLimit(m(TARGET_SOURCES.inlineWrite, 650), limit, 'copy+hash'),
    m(TARGET_SOURCES.ksmScan, 249_999),
    m(TARGET_SOURCES.metadataMacro, 16),
    m(TARGET_SOURCES.scaleWall, 179.9),
    m(TARGET_SOURCES.scaleRss, 8 * GIB),
  ];

  it('judges each target on its figure, thresholds included or not as stated', () => {
    const t = new Map(evaluateTargets(all, false).map((x) => [x.key, x]));
    expect(t.get('inline-write')).toMatchObject({ value: 0.65, met: true, source: TARGET_SOURCES.inlineWrite });
    expect(t.get('ksm-scan')).toMatchObject({ value: 249_999, met: false });
    expect(t.get('metadata')).toMatchObject({ value: 16, met: true, source: TARGET_SOURCES.metadataMacro });
    expect(t.get('scale-wall')).toMatchObject({ value: 179.9, met: true });
    // Under 8 GiB: exactly 8 GiB misses.
    expect(t.get('scale-rss')).toMatchObject({ value: 8 * GIB, met: false });
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
    expect([...t.keys()].filter((k) => k.startsWith('ksmd-'))).toEqual(['ksmd-checksum', 'ksmd-unstable', 'ksmd-merge', 'ksmd-merged']);
  });

  it('leaves targets whose figure is missing unmeasured', () => {
    const t = evaluateTargets([m(TARGET_SOURCES.ksmScan, 300_000)], false);
    expect(t.find((x) => x.key === 'ksm-scan')!.met).toBe(true);
    for (const key of ['inline-write', 'metadata', 'scale-wall', 'scale-rss', 'swap-in-dedup', 'sharing-duplicates', 'sharing-saved', 'sharing-reading-saved', 'sharing-reading-ksm', 'sharing-reading-esx', 'ksmd-checksum', 'ksmd-unstable', 'ksmd-merge', 'ksmd-merged']) {
      expect(t.find((x) => x.key === key)).toMatchObject({ value: null, met: null, source: null });
    }
  });

  it('does not judge the inline write without its limit', () => {
    const t = evaluateTargets([m(TARGET_SOURCES.inlineWrite, 650)], false);
    expect(t.find((x) => x.key === 'inline-write')).toMatchObject({ value: null, met: null, note: 'its limit was not measured' });
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
    expect(t.get('inline-write')!.met).toBe(true);
    expect(t.get('inline-write')!.note).toMatch(/quick/);
  });
});
