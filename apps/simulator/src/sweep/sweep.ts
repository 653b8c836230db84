import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { expandSweep, parseSweep, resolveImagePaths, SweepError, type Sweep, type SweepJob } from '@pagevisor/workloads';
import { barText, etaText } from '../progress-bar.js';
import type { Report } from '../report.js';
import { count } from '../summary.js';
import { runOnLocalWorkers } from './local-pool.js';
import { runOnQueue } from './queue.js';
import { resultsCsv, rowOf, type ResultRow } from './results.js';
import type { JobMessage, JobResult } from './run-job.js';
import { sweepHtml } from './sweep-html.js';

/** Options of {@link runSweep}. */
export interface SweepOptions {
  /** Directory of the results (made if missing): runs/<job>.json, results.csv, results.json, report.html. */
  readonly out: string;
  /** Local worker processes (default the number of cores). */
  readonly jobs?: number;
  /** Each job in a worker process of its own, not one after another in each (its report's peak RSS is then its own). */
  readonly freshProcesses?: boolean;
  /** `redis://HOST:PORT`: put the jobs on the BullMQ queue there for `pagevisor worker`s to take. */
  readonly queue?: string;
  /** Called as each job ends (and once at the start, with the jobs resumed from `out`). */
  readonly onProgress?: (progress: SweepProgress) => void;
}

/** How far a sweep is. */
export interface SweepProgress {
  readonly total: number;
  readonly done: number;
  readonly failed: number;
}

/** What a sweep did. */
export interface SweepOutcome {
  readonly sweep: Sweep;
  readonly jobs: readonly SweepJob[];
  /** One row per job, in grid order. */
  readonly rows: readonly ResultRow[];
  /** Jobs whose report was in `out` already, not run again. */
  readonly resumed: number;
  readonly failed: number;
}

/** A sweep file and its grid, read and checked: what {@link runSweep} runs. */
export async function loadSweep(file: string): Promise<{ sweep: Sweep; jobs: SweepJob[]; baseDir: string }> {
  const baseDir = dirname(resolve(file));
  const sweep = parseSweep(await readJson(file, 'the sweep file'));
  let base: unknown = sweep.base;
  let imagesFrom = baseDir;
  if (typeof sweep.base === 'string') {
    const path = resolve(baseDir, sweep.base);
    base = await readJson(path, 'its base scenario');
    imagesFrom = dirname(path);
  }
  const jobs = expandSweep(sweep, base).map((j) => ({ ...j, scenario: resolveImagePaths(j.scenario, imagesFrom) }));
  return { sweep, jobs, baseDir };
}

/**
 * Runs the sweep in `file`: every job of its grid whose report is not in `out` already, on local
 * worker processes or through a BullMQ queue, each report written to `out/runs/<job>.json` as it
 * comes; then `results.csv`, `results.json` and `report.html` over every job. Relative plugin
 * paths of the jobs resolve from the sweep file's directory (on a queue's workers: from theirs).
 * @throws SweepError for a bad sweep file, a grid point that is not a valid scenario, or an
 *   output directory that cannot be written: before any job runs.
 */
export async function runSweep(file: string, opts: SweepOptions): Promise<SweepOutcome> {
  const { sweep, jobs, baseDir } = await loadSweep(file);
  return runJobs(sweep, jobs, baseDir, opts);
}

/**
 * What {@link runSweep} does once the file is read: runs `jobs` (of `sweep`; relative plugin
 * paths resolve from `baseDir`) and writes `opts.out`. The benchmark runner's macro suite runs
 * its scenario x strategy matrix through it.
 */
export async function runJobs(sweep: Sweep, jobs: readonly SweepJob[], baseDir: string, opts: SweepOptions): Promise<SweepOutcome> {
  const runs = join(opts.out, 'runs');
  try {
    await mkdir(runs, { recursive: true });
  } catch (e) {
    throw new SweepError([`--out ${opts.out}: cannot make the results directory: ${(e as Error).message}`]);
  }
  const results = new Map<string, ResultRow>();
  let resumed = 0;
  for (const job of jobs) {
    const path = join(runs, `${job.id}.json`);
    if (!existsSync(path)) continue;
    results.set(job.id, rowOf(job, { report: JSON.parse(await readFile(path, 'utf8')) as Report }));
    resumed++;
  }
  let failed = 0;
  const progress = (): void => opts.onProgress?.({ total: jobs.length, done: results.size, failed });
  progress();
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const todo: JobMessage[] = jobs.filter((j) => !results.has(j.id)).map((j) => ({ id: j.id, scenario: j.scenario, baseDir }));
  const writes: Promise<void>[] = [];
  const done = (result: JobResult): void => {
    const job = byId.get(result.id);
    if (job === undefined || results.has(result.id)) return; // a job's result lands once
    if ('report' in result) writes.push(writeAtomically(join(runs, `${job.id}.json`), `${JSON.stringify(result.report, null, 2)}\n`));
    else failed++;
    results.set(job.id, rowOf(job, result));
    progress();
  };
  if (opts.queue !== undefined) await runOnQueue(opts.queue, todo, done);
  else await runOnLocalWorkers(todo, opts.jobs ?? availableParallelism(), done, opts.freshProcesses);
  await Promise.all(writes);
  const rows = jobs.map((j) => results.get(j.id)!);
  const axes = Object.keys(sweep.axes);
  await writeFile(join(opts.out, 'results.json'), `${JSON.stringify({ sweep: sweep.name, axes, rows }, null, 2)}\n`);
  await writeFile(join(opts.out, 'results.csv'), resultsCsv(axes, rows));
  await writeFile(join(opts.out, 'report.html'), sweepHtml(sweep, rows));
  return { sweep, jobs, rows, resumed, failed };
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new SweepError([`${what} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`]);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new SweepError([`${what} ${path}: not JSON: ${(e as Error).message}`]);
  }
}

/** Writes `text` to `path` through a temporary file, so that a reader never sees half a report. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/** The progress bar's text of a sweep: `[####------] 12 / 32 jobs, 1 failed  ETA 20 s`. */
export function formatSweepProgress(p: SweepProgress, elapsedMs: number, width = 30): string {
  const f = p.total === 0 ? 1 : p.done / p.total;
  return `${barText(f, width)} ${count(p.done)} / ${count(p.total)} jobs${p.failed > 0 ? `, ${count(p.failed)} failed` : ''}  ${etaText(f, elapsedMs)}`;
}

/** What `pagevisor sweep` prints at the end: the jobs, where the results are, each failure. */
export function formatSweep(o: SweepOutcome, out: string): string {
  const ran = o.jobs.length - o.resumed;
  const lines = [
    `sweep ${o.sweep.name}: ${count(o.jobs.length)} jobs over ${Object.entries(o.sweep.axes).map(([a, v]) => `${a} (${v.length})`).join(' x ')}; ${count(ran)} run${o.resumed > 0 ? `, ${count(o.resumed)} done already` : ''}, ${count(o.failed)} failed`,
    `results: ${join(out, 'results.csv')}, ${join(out, 'results.json')}, ${join(out, 'report.html')}; reports in ${join(out, 'runs')}/`,
    ...o.rows.filter((r) => r.status === 'failed').map((r) => `failed ${r.job} ${JSON.stringify(r.axes)}: ${r.error ?? ''}`),
  ];
  return `${lines.join('\n')}\n`;
}
