import type { SweepJob } from '@pagevisor/workloads';
import type { Report } from '../report.js';

/** The headline figures of one job, one row of results.csv and results.json. */
export interface ResultRow {
  /** The job's id (its report is runs/<job>.json). */
  readonly job: string;
  /** Its value of each axis. */
  readonly axes: Readonly<Record<string, unknown>>;
  /** `ok`, or `failed` with `error` (no figures then). */
  readonly status: 'ok' | 'failed';
  readonly error?: string;
  readonly strategy?: string;
  readonly framesUsed?: number;
  readonly savedPct?: number;
  readonly duplicateFrames?: number;
  readonly cowFaults?: number;
  readonly swapOuts?: number;
  readonly swapIns?: number;
  /** When machineFramesUsed settled (the report's dedup.convergedAtNs), in simulated seconds. */
  readonly convergedS?: number;
  /** Simulated CPU of the hypervisor and the strategy, and of the strategy alone, in seconds. */
  readonly cpuS?: number;
  readonly dedupCpuS?: number;
  readonly failedGuests?: number;
  /** Wall time of the run, in seconds, and its process's peak RSS, in MiB (the only figures that vary between runs). */
  readonly wallS?: number;
  readonly peakRssMiB?: number;
}

/** The row of `job`, from its report or its error. */
export function rowOf(job: SweepJob, result: { report: Report } | { error: string }): ResultRow {
  if ('error' in result) return { job: job.id, axes: job.axes, status: 'failed', error: result.error };
  const r = result.report;
  return {
    job: job.id,
    axes: job.axes,
    status: 'ok',
    strategy: r.dedup.strategy,
    framesUsed: r.totals.machineFramesUsed,
    savedPct: r.totals.savedPct,
    duplicateFrames: r.totals.duplicateFrames,
    cowFaults: r.totals.cowFaults,
    swapOuts: r.swap?.swapOuts ?? 0,
    swapIns: r.swap?.swapIns ?? 0,
    convergedS: r.dedup.convergedAtNs / 1e9,
    cpuS: r.cpu.totalNs / 1e9,
    dedupCpuS: r.cpu.dedupNs / 1e9,
    failedGuests: r.totals.failedGuests,
    wallS: r.wall.totalMs / 1000,
    peakRssMiB: Math.round((r.wall.peakRssBytes / 2 ** 20) * 10) / 10,
  };
}

/** Columns of results.csv after the axes. */
const FIGURES = ['status', 'strategy', 'framesUsed', 'savedPct', 'duplicateFrames', 'cowFaults', 'swapOuts', 'swapIns', 'convergedS', 'cpuS', 'dedupCpuS', 'failedGuests', 'wallS', 'peakRssMiB', 'error'] as const;

/** results.csv: a header, then one row per job (job id, each axis, the figures). */
export function resultsCsv(axes: readonly string[], rows: readonly ResultRow[]): string {
  const cell = (v: unknown): string => {
    if (v === undefined) return '';
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [['job', ...axes, ...FIGURES].map(cell).join(',')];
  for (const r of rows) lines.push([r.job, ...axes.map((a) => r.axes[a]), ...FIGURES.map((f) => r[f])].map(cell).join(','));
  return `${lines.join('\n')}\n`;
}
