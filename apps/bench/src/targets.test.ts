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

  it('leaves targets whose figure is missing unmeasured', () => {
    const t = evaluateTargets([m(TARGET_SOURCES.ksmScan, 300_000)], false);
    expect(t.find((x) => x.key === 'ksm-scan')!.met).toBe(true);
    for (const key of ['inline-write', 'metadata', 'scale-wall', 'scale-rss']) {
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
