import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NS_PER_S } from '@pagevisor/types';
import { parseScenario } from '@pagevisor/workloads';
import { csvField, deriveTimeline, DOMAIN_COLUMNS, domainsCsv, TIMELINE_COLUMNS, timelineCsv, writeCsvReport } from './csv-report.js';
import type { Report, TimelineSample } from './report.js';
import { runScenario } from './run-scenario.js';
import { tinySwapScenario } from '../tests/tiny-swap.js';

const TINY_SWAP = parseScenario(tinySwapScenario('tiny, "swap"'));

/** A minimal RFC 4180 reader: records of fields, quotes undone. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') record.push(field), (field = '');
    else if (ch === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      (field = ''), (record = []), i++;
    } else field += ch;
  }
  expect(field).toBe('');
  expect(record).toEqual([]);
  return records;
}

function sample(tS: number, over: Partial<TimelineSample> = {}): TimelineSample {
  return {
    tNs: Math.round(tS * NS_PER_S),
    guestPages: 0,
    machineFramesUsed: 1,
    pagesShared: 0,
    pagesSharing: 0,
    zeroPages: 0,
    cowFaults: 0,
    zeroFaults: 0,
    pagedPages: 0,
    swapOuts: 0,
    swapIns: 0,
    swapSlotsUsed: 0,
    swapDiskBytes: 0,
    ...over,
  };
}

let report: Report;
let dir: string;
beforeAll(async () => {
  report = await runScenario(TINY_SWAP);
  dir = await mkdtemp(join(tmpdir(), 'pagevisor-csv-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('csvField', () => {
  it('quotes a field holding a comma, quote, CR or LF (doubling inner quotes) and leaves others bare', () => {
    expect(csvField('vm-0')).toBe('vm-0');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\r')).toBe('"cr\r"');
    expect(csvField('')).toBe('');
  });

  it('writes null as an empty field, integers as they are and fractions to 9 decimals', () => {
    expect(csvField(null)).toBe('');
    expect(csvField(131072)).toBe('131072');
    expect(csvField(0.25)).toBe('0.25');
    expect(csvField(1 / 3)).toBe('0.333333333');
    expect(csvField(1.5078125)).toBe('1.5078125');
    expect(csvField(0.1 + 0.2)).toBe('0.3');
  });
});

describe('deriveTimeline', () => {
  it('derives free and private frames, and rates as counter rises over the interval', () => {
    const rows = deriveTimeline(
      [
        sample(0),
        sample(0.5, { machineFramesUsed: 101, pagesShared: 30, cowFaults: 10, zeroFaults: 4, swapOuts: 100, swapIns: 1 }),
        sample(1.5, { machineFramesUsed: 120, pagesShared: 40, cowFaults: 40, zeroFaults: 4, swapOuts: 150, swapIns: 11 }),
      ],
      1000,
    );
    expect(rows.map((r) => r.tS)).toEqual([0, 0.5, 1.5]);
    expect(rows.map((r) => r.machineFramesFree)).toEqual([999, 899, 880]);
    // Used minus the shared frames minus the zero frame.
    expect(rows.map((r) => r.privateFrames)).toEqual([0, 70, 79]);
    expect(rows[0]).toMatchObject({ cowFaultsPerS: null, zeroFaultsPerS: null, swapOutsPerS: null, swapInsPerS: null });
    expect(rows[1]).toMatchObject({ cowFaultsPerS: 20, zeroFaultsPerS: 8, swapOutsPerS: 200, swapInsPerS: 2 });
    expect(rows[2]).toMatchObject({ cowFaultsPerS: 30, zeroFaultsPerS: 0, swapOutsPerS: 50, swapInsPerS: 10 });
  });

  it('gives no rate for two samples at one instant', () => {
    const rows = deriveTimeline([sample(1), sample(1, { cowFaults: 5 })], 10);
    expect(rows[1]!.cowFaultsPerS).toBeNull();
  });
});

describe('timelineCsv', () => {
  it('has a header and one CRLF-ended row per sample, the first without rates', () => {
    const text = timelineCsv(report);
    expect(text.endsWith('\r\n')).toBe(true);
    expect(text.replaceAll('\r\n', '')).not.toMatch(/[\r\n]/);
    const [header, ...rows] = parseCsv(text);
    expect(header).toEqual([...TIMELINE_COLUMNS]);
    expect(rows.length).toBe(report.timeline.length);
    const col = (name: (typeof TIMELINE_COLUMNS)[number]): number => TIMELINE_COLUMNS.indexOf(name);
    expect(rows[0]![col('cowFaultsPerS')]).toBe('');
    expect(rows[0]![col('swapInsPerS')]).toBe('');
    rows.forEach((r, i) => {
      const s = report.timeline[i]!;
      expect(Number(r[col('tNs')])).toBe(s.tNs);
      expect(Number(r[col('tS')])).toBe(s.tNs / NS_PER_S);
      expect(Number(r[col('machineFramesUsed')])).toBe(s.machineFramesUsed);
      expect(Number(r[col('swapOuts')])).toBe(s.swapOuts);
      expect(Number(r[col('machineFramesFree')]) + s.machineFramesUsed).toBe(report.config.machine.frames);
      if (i > 0) {
        const prev = report.timeline[i - 1]!;
        const dtS = (s.tNs - prev.tNs) / NS_PER_S;
        expect(Number(r[col('swapOutsPerS')])).toBeCloseTo((s.swapOuts - prev.swapOuts) / dtS, 5);
        expect(Number(r[col('cowFaultsPerS')])).toBeCloseTo((s.cowFaults - prev.cowFaults) / dtS, 5);
      }
    });
  });

  it('carries the swap counters the run sampled: they rise, and end at the report figures', () => {
    const last = report.timeline.at(-1)!;
    expect(last.swapOuts).toBe(report.swap!.swapOuts);
    expect(last.swapIns).toBe(report.swap!.swapIns);
    expect(last.swapSlotsUsed).toBe(report.swap!.swapSlotsUsed);
    expect(last.swapOuts).toBeGreaterThan(0);
    expect(last.swapIns).toBeGreaterThan(0);
    expect(last.swapDiskBytes).toBeGreaterThan(0);
    for (let i = 1; i < report.timeline.length; i++) {
      expect(report.timeline[i]!.swapOuts).toBeGreaterThanOrEqual(report.timeline[i - 1]!.swapOuts);
      expect(report.timeline[i]!.swapIns).toBeGreaterThanOrEqual(report.timeline[i - 1]!.swapIns);
    }
  });
});

describe('domainsCsv', () => {
  it('has a row per domain with its state, and quotes names that need it', () => {
    const odd = { ...report, domains: report.domains.map((d, i) => (i === 0 ? { ...d, name: 'web, "eu"\nprimary' } : d)) };
    const [header, ...rows] = parseCsv(domainsCsv(odd));
    expect(header).toEqual([...DOMAIN_COLUMNS]);
    expect(rows.length).toBe(report.domains.length);
    expect(rows[0]![1]).toBe('web, "eu"\nprimary');
    rows.forEach((r, i) => {
      const d = report.domains[i]!;
      expect(Number(r[0])).toBe(d.domId);
      expect(r[2]).toBe('done');
      expect(Number(r[DOMAIN_COLUMNS.indexOf('pagedPages')])).toBe(d.pagedPages);
      expect(Number(r[DOMAIN_COLUMNS.indexOf('privatePages')])).toBe(d.privatePages);
    });
  });

  it('leaves the state empty for a domain without a guest record', () => {
    const rows = parseCsv(domainsCsv({ ...report, guests: [] })).slice(1);
    expect(rows.every((r) => r[2] === '')).toBe(true);
  });
});

describe('writeCsvReport', () => {
  it('creates the directory with its parents and writes timeline.csv and domains.csv', async () => {
    const out = join(dir, 'a', 'b');
    await writeCsvReport(report, out);
    expect(await readFile(join(out, 'timeline.csv'), 'utf8')).toBe(timelineCsv(report));
    expect(await readFile(join(out, 'domains.csv'), 'utf8')).toBe(domainsCsv(report));
  });

  it('throws an Error naming the directory when it cannot be created', async () => {
    const file = join(dir, 'not-a-dir');
    await writeFile(file, 'x');
    await expect(writeCsvReport(report, join(file, 'csv'))).rejects.toThrow(`cannot write CSV report to ${join(file, 'csv')}:`);
  });
});
