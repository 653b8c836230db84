import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { SweepError } from '@pagevisor/workloads';
import type { Report } from '../report.js';
import { runScenario } from '../run-scenario.js';
import { ensureApt, INSTALL_TIMEOUT_MS } from '../../tests/ensure-apt.js';
import { TINY_BASE, withoutWall } from '../../tests/tiny-sweep.js';
import { workerFlags } from './local-pool.js';
import { loadSweep, runSweep } from './sweep.js';

const dir = mkdtempSync(join(tmpdir(), 'pagevisor-sweep-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
}

describe('pagevisor sweep on local workers', () => {
  it('runs every job of the grid once, writes each report, the results and the report page, and resumes', async () => {
    write('base.json', TINY_BASE);
    const file = write('grid.json', { name: 'grid', base: './base.json', axes: { 'dedup.strategy': ['inline', 'ksm'], seed: [1, 2] } });
    const out = join(dir, 'out');
    const seen: number[] = [];
    const first = await runSweep(file, { out, jobs: 2, onProgress: (p) => seen.push(p.done) });
    expect(first.rows.map((r) => [r.axes['dedup.strategy'], r.axes['seed'], r.status, r.strategy])).toEqual([
      ['inline', 1, 'ok', 'inline'],
      ['inline', 2, 'ok', 'inline'],
      ['ksm', 1, 'ok', 'ksm'],
      ['ksm', 2, 'ok', 'ksm'],
    ]);
    expect([first.resumed, first.failed, seen]).toEqual([0, 0, [0, 1, 2, 3, 4]]);
    expect(readdirSync(join(out, 'runs')).sort()).toEqual(first.jobs.map((j) => `${j.id}.json`).sort());
    // Each report is the run's own: the same as running the job's scenario here (wall time aside).
    const job = first.jobs[2]!;
    const report = JSON.parse(readFileSync(join(out, 'runs', `${job.id}.json`), 'utf8')) as Report;
    expect(withoutWall(report)).toBe(withoutWall(await runScenario(job.scenario)));
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { axes: string[]; rows: { job: string; savedPct: number }[] };
    expect(results.axes).toEqual(['dedup.strategy', 'seed']);
    expect(results.rows[2]).toMatchObject({ job: job.id, savedPct: report.totals.savedPct, framesUsed: report.totals.machineFramesUsed, cowFaults: report.totals.cowFaults });
    const csv = readFileSync(join(out, 'results.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toMatch(/^job,dedup\.strategy,seed,status,strategy,framesUsed,savedPct,duplicateFrames,cowFaults,swapOuts,swapIns,convergedS,cpuS,dedupCpuS,failedGuests,wallS,peakRssMiB,error$/);
    expect(csv.slice(1).map((l) => l.split(',').slice(0, 4).join(','))).toEqual(first.rows.map((r) => `${r.job},${String(r.axes['dedup.strategy'])},${String(r.axes['seed'])},ok`));
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('<h1>Sweep grid</h1>');
    // Again: every job is done, none runs, the results are the same.
    const again = await runSweep(file, { out, jobs: 2 });
    expect([again.resumed, again.rows.map((r) => r.savedPct)]).toEqual([4, first.rows.map((r) => r.savedPct)]);
  });

  it('fails a job that kills its worker process alone, naming why; the others run', async () => {
    write('kills.mjs', `export default { kind: 'dedup', name: 'kills', create() { process.kill(process.pid, 'SIGKILL'); } };`);
    write('refuses.mjs', `export default { kind: 'dedup', name: 'refuses', create() { throw new Error('out of ideas'); } };`);
    const file = write('crash.json', { name: 'crash', base: TINY_BASE, axes: { 'dedup.strategy': ['./kills.mjs', 'inline', './refuses.mjs', 'none'] } });
    const r = await runSweep(file, { out: join(dir, 'crash-out'), jobs: 1 });
    expect(r.rows.map((row) => row.status)).toEqual(['failed', 'ok', 'failed', 'ok']);
    expect(r.rows[0]!.error).toBe('the worker process died running it (signal SIGKILL)');
    expect(r.rows[2]!.error).toMatch(/PluginError: plugin \.\/refuses\.mjs: create threw: out of ideas/);
    expect(r.failed).toBe(2);
    // A failed job is not finished: the next run tries it again.
    expect((await runSweep(file, { out: join(dir, 'crash-out'), jobs: 1 })).resumed).toBe(2);
  });

  it('runs V8 single-threaded in each worker only when the workers take every core', () => {
    const cores = availableParallelism();
    expect(workerFlags(1)).toEqual([]);
    expect(workerFlags(cores + 1)).toEqual(['--single-threaded']);
    if (cores > 1) expect([workerFlags(cores - 1), workerFlags(cores)]).toEqual([[], ['--single-threaded']]);
  });

  it('refuses a bad sweep before running anything, naming the problem', async () => {
    await expect(loadSweep(join(dir, 'missing.json'))).rejects.toThrow(/the sweep file .*missing\.json: no such file/);
    await expect(loadSweep(write('notjson.json', '{'))).rejects.toThrow(/not JSON/);
    await expect(loadSweep(write('nobase.json', { name: 'n', base: './nope.json', axes: { seed: [1] } }))).rejects.toThrow(/its base scenario .*nope\.json: no such file/);
    const bad = write('bad.json', { name: 'b', base: TINY_BASE, axes: { 'machine.memoryMiB': [0] } });
    await expect(runSweep(bad, { out: join(dir, 'bad-out') })).rejects.toThrow(SweepError);
    expect(existsSync(join(dir, 'bad-out'))).toBe(false);
    write('file-not-dir', 'x');
    await expect(runSweep(write('ok.json', { name: 'o', base: TINY_BASE, axes: { seed: [1] } }), { out: join(dir, 'file-not-dir', 'out') })).rejects.toThrow(/--out .*cannot make the results directory/);
  });
});

/** Appended for the test only (the page has no script): counts the chart elements laid out with a size. */
const PROBE = `<script>
document.body.dataset.drawn = JSON.stringify([...document.querySelectorAll('svg.chart')].map((svg) =>
  [...svg.querySelectorAll('circle, rect.bar')].filter((el) => { const b = el.getBBox(); return b.width > 0 && b.height > 0; }).length));
</script>`;

describe('the sweep report in headless Chromium', () => {
  it('draws every chart with data, and logs no console error', async () => {
    const chromium = ensureApt('/usr/bin/chromium', 'chromium');
    const file = write('charts.json', { name: 'charts', base: TINY_BASE, axes: { 'dedup.strategy': ['inline', 'ksm'], 'machine.memoryMiB': [48, 64], seed: [1, 2] } });
    const out = join(dir, 'charts-out');
    await runSweep(file, { out, jobs: 2 });
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    // Savings against CPU (8 points), convergence (2 bars), and savings and CPU against machine.memoryMiB.
    expect(html.match(/<svg class="chart"/g)).toHaveLength(4);
    expect(html.match(/<circle class="point"/g)).toHaveLength(8);
    expect(html).toContain('class="frontier"');
    writeFileSync(join(out, 'probed.html'), html.replace('</body>', `${PROBE}</body>`));
    const args = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', `--user-data-dir=${join(dir, 'profile')}`, '--enable-logging=stderr', '--v=0', '--virtual-time-budget=2000', '--dump-dom'];
    const run = spawnSync(chromium, [...args, pathToFileURL(join(out, 'probed.html')).href], { encoding: 'utf8', timeout: 120_000 });
    expect(run.status, run.stderr).toBe(0);
    const drawn = JSON.parse(/data-drawn="([^"]*)"/.exec(run.stdout)![1]!.replace(/&quot;/g, '"')) as number[];
    // Points, bars, and on each axis chart a dot per strategy and axis value (on a line per strategy).
    expect(drawn).toEqual([8, 2, 4, 4]);
    expect(html.match(/<path class="line"/g)).toHaveLength(4);
    expect(run.stderr.split('\n').filter((l) => /CONSOLE|Uncaught/.test(l))).toEqual([]);
  }, INSTALL_TIMEOUT_MS + 180_000);
});
