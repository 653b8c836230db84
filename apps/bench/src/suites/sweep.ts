import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasRedisServer, runSweep, startRedis } from '@pagevisor/simulator';
import { measurement, type Measurement } from '../measurement.js';
import { SIMULATOR_BIN } from '../simulator-cli.js';
import type { SuiteContext, SuiteResult } from '../suite-context.js';

/** Ids of the sweep suite's figures the targets read. */
export const SWEEP_ID = {
  /** Wall time of the 32-job sweep on 1 local worker over its wall time on 2. */
  speedup: 'sweep.grid.speedup-2-workers',
  /** Wall time of the same sweep through Redis with 2 `pagevisor worker`s over 2 local workers'. */
  redisVsLocal: 'sweep.grid.redis-vs-local',
  /** Scheduling overhead per job of 200 tiny jobs on 2 local workers, in ms. */
  overhead: 'sweep.tiny.overhead-per-job',
} as const;

/**
 * The 32 jobs: 2 scanners (ksm, esx) x 16 seeds of 2 guests of 1 MiB scanned for 80 simulated
 * seconds (quick: 10), a third of a second each here: work that stays in the CPU's caches. (Jobs that stream through hundreds of MiB
 * contend for memory: two simulator runs of 2 x 32 MiB side by side took 1.27 s each here, one
 * alone 0.77 s, so no scheduler could double their rate on this machine.)
 */
function gridSweep(quick: boolean): unknown {
  return {
    name: 'bench-grid',
    base: {
      name: 'bench-grid',
      machine: { memoryMiB: 4 },
      dedup: { strategy: 'ksm' },
      durationS: quick ? 10 : 80,
      sampleIntervalS: 1,
      guests: [{ name: 'vm', count: 2, memoryMiB: 1, image: { id: 'os', fraction: 0.5 }, zeroFraction: 0.2, writeRatePagesPerS: 500 }],
    },
    axes: { 'dedup.strategy': ['ksm', 'esx'], seed: Array.from({ length: 16 }, (_, i) => i + 1) },
  };
}

/** Jobs of the tiny sweep. */
function tinyJobs(quick: boolean): number {
  return quick ? 50 : 200;
}

/** Jobs that do almost nothing: one guest of 1 MiB, no steady state. */
function tinySweep(quick: boolean): unknown {
  return {
    name: 'bench-tiny',
    base: { name: 'bench-tiny', machine: { memoryMiB: 4 }, durationS: 0, sampleIntervalS: 1, guests: [{ name: 'vm', memoryMiB: 1 }] },
    axes: { seed: Array.from({ length: tinyJobs(quick) }, (_, i) => i + 1) },
  };
}

/** `pagevisor worker`s on `url`, resolved once each says it takes jobs. */
async function startWorkers(url: string, n: number): Promise<ChildProcess[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ChildProcess>((resolve, reject) => {
          const w = spawn(process.execPath, [SIMULATOR_BIN, 'worker', '--queue', url], { stdio: ['ignore', 'ignore', 'pipe'] });
          let err = '';
          w.stderr!.on('data', (d: Buffer) => {
            err += d.toString();
            if (err.includes('taking jobs')) resolve(w);
          });
          w.once('exit', (code) => reject(new Error(`pagevisor worker exited ${code}: ${err.trim()}`)));
        }),
    ),
  );
}

/**
 * Sweeps as a researcher runs them: a 32-job grid on 1 and on 2 local workers (the speed-up),
 * the same grid through a real Redis (this machine's redis-server on a free port) with 2
 * `pagevisor worker` processes (its wall time over 2 local workers'), and 200 tiny jobs on 2
 * local workers (the scheduling overhead per job: the sweep's wall time times the workers, less
 * the jobs' own run times, per job). Every sweep starts from an empty results directory; every
 * job must succeed.
 */
export async function runSweepSuite(ctx: SuiteContext): Promise<SuiteResult> {
  const dir = mkdtempSync(join(tmpdir(), 'pagevisor-bench-sweep-'));
  const file = (name: string, sweep: unknown): string => {
    const path = join(dir, `${name}.json`);
    writeFileSync(path, JSON.stringify(sweep));
    return path;
  };
  const grid = file('grid', gridSweep(ctx.quick));
  const tiny = file('tiny', tinySweep(ctx.quick));
  let runs = 0;
  const timed = async (path: string, opts: { jobs?: number; queue?: string }): Promise<{ wallMs: number; jobMs: number; jobs: number }> => {
    const out = join(dir, `out-${runs++}`);
    const t0 = performance.now();
    const r = await runSweep(path, { out, ...opts });
    const wallMs = performance.now() - t0;
    const failed = r.rows.filter((row) => row.status !== 'ok');
    if (failed.length > 0) throw new Error(`sweep ${r.sweep.name}: ${failed.length} jobs failed, first: ${failed[0]!.error}`);
    const jobMs = r.rows.reduce((ms, row) => ms + row.wallS! * 1000, 0);
    rmSync(out, { recursive: true, force: true });
    return { wallMs, jobMs, jobs: r.rows.length };
  };
  const redis = hasRedisServer() ? await startRedis() : undefined;
  const workers = redis === undefined ? [] : await startWorkers(redis.url, 2);
  const speedups: number[] = [];
  const vsLocal: number[] = [];
  const overheads: number[] = [];
  const walls: Record<string, number[]> = { one: [], two: [], redis: [] };
  try {
    ctx.log(`sweep: ${ctx.repeats} repeats of the 32-job grid on 1 and 2 local workers${redis === undefined ? '' : ' and through Redis'}, and of the tiny jobs`);
    await timed(tiny, { jobs: 2 }); // warm-up: the first worker processes load every module
    for (let i = 0; i < ctx.repeats; i++) {
      const one = await timed(grid, { jobs: 1 });
      const two = await timed(grid, { jobs: 2 });
      walls['one']!.push(one.wallMs / 1000);
      walls['two']!.push(two.wallMs / 1000);
      speedups.push(one.wallMs / two.wallMs);
      if (redis !== undefined) {
        const queued = await timed(grid, { queue: redis.url });
        walls['redis']!.push(queued.wallMs / 1000);
        vsLocal.push(queued.wallMs / two.wallMs);
      }
      const t = await timed(tiny, { jobs: 2 });
      overheads.push((t.wallMs * 2 - t.jobMs) / t.jobs);
    }
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const spec = { suite: 'sweep', better: 'lower' } as const;
  const out: Measurement[] = [
    measurement({ ...spec, group: 'grid', key: 'wall-1-worker', name: '32-job sweep, 1 local worker: wall time', unit: 's', samples: walls['one']! }),
    measurement({ ...spec, group: 'grid', key: 'wall-2-workers', name: '32-job sweep, 2 local workers: wall time', unit: 's', samples: walls['two']! }),
    measurement({ ...spec, group: 'grid', key: 'speedup-2-workers', name: '32-job sweep: wall time on 1 worker / on 2 (per repeat)', unit: 'x', better: 'higher', samples: speedups }),
  ];
  if (redis !== undefined) {
    out.push(
      measurement({ ...spec, group: 'grid', key: 'wall-redis', name: '32-job sweep through Redis, 2 pagevisor workers: wall time', unit: 's', samples: walls['redis']! }),
      measurement({ ...spec, group: 'grid', key: 'redis-vs-local', name: '32-job sweep: wall time through Redis (2 workers) / 2 local workers (per repeat)', unit: 'x local', samples: vsLocal }),
    );
  }
  out.push(measurement({ ...spec, group: 'tiny', key: 'overhead-per-job', name: `${tinyJobs(ctx.quick)} tiny jobs on 2 local workers: scheduling overhead per job`, unit: 'ms', samples: overheads }));
  return {
    suite: 'sweep',
    measurements: out,
    notes: [
      `The grid: 2 scanners (ksm, esx) x 16 seeds of 2 guests of 1 MiB, ${ctx.quick ? 10 : 80} simulated s of scanning and writes each (cache-resident work: jobs that stream through much memory contend for it, and two of them side by side ran 1.6x slower each on this machine kind), every job in a fresh results directory (nothing resumed). Local workers are child processes of the runner; through Redis, the jobs go on the BullMQ queue of a redis-server started for the suite on a free loopback port, and 2 pagevisor worker processes, started (and ready) before the timing, run them.`,
      `Overhead per job = (the tiny sweep's wall time x 2 workers - the sum of its jobs' own run times) / jobs: what scheduling, the worker processes' messages and writing the reports and results add to each job.`,
      ...(redis === undefined ? ['Through Redis: not measured: this machine has no redis-server (apt-get install redis-server).'] : []),
    ],
  };
}
