import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NS_PER_S } from '@pagevisor/types';
import type { Report, TimelineSample } from './report.js';

/**
 * A timeline sample with the figures the CSV and HTML reports derive from it: machine frames by
 * state and the cumulative counters' rates per simulated second.
 */
export interface DerivedSample extends TimelineSample {
  /** Simulated time of the sample, in s. */
  readonly tS: number;
  /** Machine frames free: RAM frames - machineFramesUsed. */
  readonly machineFramesFree: number;
  /**
   * Frames used that are neither a shared frame (pagesShared) nor the zero frame:
   * machineFramesUsed - pagesShared - 1. Counts frames of one page each (a shared frame left
   * with one mapping among them).
   */
  readonly privateFrames: number;
  /** Copy-on-write faults per simulated second since the previous sample (null for the first). */
  readonly cowFaultsPerS: number | null;
  /** Zero-frame write faults per simulated second since the previous sample (null for the first). */
  readonly zeroFaultsPerS: number | null;
  /** Pages stored to swap per simulated second since the previous sample (null for the first). */
  readonly swapOutsPerS: number | null;
  /** Pages read back from swap per simulated second since the previous sample (null for the first). */
  readonly swapInsPerS: number | null;
}

/**
 * Derives {@link DerivedSample}s from consecutive `samples` of a machine of `frames` frames.
 * Each rate is the rise of its cumulative counter between a sample and the one before it,
 * divided by the simulated seconds between them: the mean rate over that interval.
 */
export function deriveTimeline(samples: readonly TimelineSample[], frames: number): DerivedSample[] {
  return samples.map((s, i) => {
    const prev = i === 0 ? undefined : samples[i - 1]!;
    const dtS = prev === undefined ? 0 : (s.tNs - prev.tNs) / NS_PER_S;
    // Two samples at one instant (or out of order) give no rate rather than an infinite one.
    const rate = (now: number, before: number | undefined): number | null =>
      before === undefined || !(dtS > 0) ? null : (now - before) / dtS;
    return {
      ...s,
      tS: s.tNs / NS_PER_S,
      machineFramesFree: frames - s.machineFramesUsed,
      privateFrames: s.machineFramesUsed - s.pagesShared - 1,
      cowFaultsPerS: rate(s.cowFaults, prev?.cowFaults),
      zeroFaultsPerS: rate(s.zeroFaults, prev?.zeroFaults),
      swapOutsPerS: rate(s.swapOuts, prev?.swapOuts),
      swapInsPerS: rate(s.swapIns, prev?.swapIns),
    };
  });
}

/** One CSV field per RFC 4180: quoted (inner quotes doubled) when it holds a quote, comma, CR or LF. */
export function csvField(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return formatNumber(value);
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** Integers as they are; other numbers to at most 9 decimals (times keep their ns; rates lose float noise). */
function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 1e9) / 1e9);
}

/** An RFC 4180 document: a header row, then the rows; CRLF after every record. */
function csv(header: readonly string[], rows: readonly (readonly (string | number | null)[])[]): string {
  return [header, ...rows].map((r) => `${r.map(csvField).join(',')}\r\n`).join('');
}

/** Columns of `timeline.csv`, in order: the sample's own fields, then the derived ones. */
export const TIMELINE_COLUMNS = [
  'tNs',
  'tS',
  'guestPages',
  'machineFramesUsed',
  'machineFramesFree',
  'privateFrames',
  'pagesShared',
  'pagesSharing',
  'zeroPages',
  'cowFaults',
  'zeroFaults',
  'pagedPages',
  'swapOuts',
  'swapIns',
  'swapSlotsUsed',
  'swapDiskBytes',
  'cowFaultsPerS',
  'zeroFaultsPerS',
  'swapOutsPerS',
  'swapInsPerS',
] as const satisfies readonly (keyof DerivedSample)[];

/** Columns of `domains.csv`, in order: the guest's state, then the domain's figures at the end. */
export const DOMAIN_COLUMNS = [
  'domId',
  'name',
  'state',
  'totPages',
  'maxPages',
  'privatePages',
  'sharedPages',
  'zeroPages',
  'podPages',
  'pagedPages',
  'cowFaults',
  'zeroFaults',
  'cpuNs',
] as const;

/**
 * `timeline.csv`: a header row ({@link TIMELINE_COLUMNS}) and one row per timeline sample; the
 * first sample's rates are empty (no interval before it).
 */
export function timelineCsv(report: Report): string {
  const rows = deriveTimeline(report.timeline, report.config.machine.frames);
  return csv(
    TIMELINE_COLUMNS,
    rows.map((r) => TIMELINE_COLUMNS.map((c) => r[c])),
  );
}

/** `domains.csv`: a header row ({@link DOMAIN_COLUMNS}) and one row per domain at the end of the run. */
export function domainsCsv(report: Report): string {
  const stateOf = new Map(report.guests.map((g) => [g.domId, g.state]));
  return csv(
    DOMAIN_COLUMNS,
    report.domains.map((d) => DOMAIN_COLUMNS.map((c) => (c === 'state' ? (stateOf.get(d.domId) ?? null) : d[c]))),
  );
}

/**
 * Writes `timeline.csv` ({@link timelineCsv}) and `domains.csv` ({@link domainsCsv}) of `report`
 * into directory `dir`, creating it (and its parents) when missing; existing files are replaced.
 * @throws Error naming `dir` when it cannot be created or a file cannot be written.
 */
export async function writeCsvReport(report: Report, dir: string): Promise<void> {
  const files: [string, string][] = [
    ['timeline.csv', timelineCsv(report)],
    ['domains.csv', domainsCsv(report)],
  ];
  try {
    await mkdir(dir, { recursive: true });
    for (const [name, text] of files) await writeFile(join(dir, name), text);
  } catch (e) {
    throw new Error(`cannot write CSV report to ${dir}: ${(e as Error).message}`, { cause: e });
  }
}
