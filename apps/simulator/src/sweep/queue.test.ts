import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureApt, INSTALL_TIMEOUT_MS } from '../../tests/ensure-apt.js';
import { startRedis } from './redis-server.js';
import type { Report } from '../report.js';
import { QUEUE_NAME, QueueError } from './queue.js';
import { runSweep } from './sweep.js';
import { TINY_BASE, withoutWall } from '../../tests/tiny-sweep.js';

// Sweeps through a real Redis (Debian's redis-server, started here on a free loopback port) and
// real `pagevisor worker` processes.

const BIN = fileURLToPath(new URL('../../bin/pagevisor.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'pagevisor-queue-'));
let redis: { url: string; stop: () => Promise<void> };
const workers: ChildProcess[] = [];

beforeAll(async () => {
  ensureApt('/usr/bin/redis-server', 'redis-server');
  redis = await startRedis();
}, INSTALL_TIMEOUT_MS);

afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A `pagevisor worker` on the test's Redis, its lock short so that a killed one is noticed in a second; its log lines go to `lines`. */
function startWorker(lines: string[]): ChildProcess {
  const w = spawn(process.execPath, [BIN, 'worker', '--queue', redis.url, '--lock-ms', '1000'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let rest = '';
  w.stderr!.on('data', (d: Buffer) => {
    const text = rest + d.toString();
    const parts = text.split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  workers.push(w);
  return w;
}

const connection = (): Redis => new Redis(redis.url, { maxRetriesPerRequest: null });

const until = async (what: string, ok: () => boolean, ms = 20_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('pagevisor sweep --queue with pagevisor worker processes', () => {
  it('survives a worker SIGKILLed mid-job: every result lands once, equal to the local run\'s', async () => {
    const file = join(dir, 'grid.json');
    writeFileSync(file, JSON.stringify({ name: 'grid', base: TINY_BASE, axes: { 'dedup.strategy': ['inline', 'ksm'], seed: [1, 2, 3] } }));
    const local = await runSweep(file, { out: join(dir, 'local'), jobs: 2 });
    const [a, b] = [[] as string[], [] as string[]];
    const victim = startWorker(a);
    startWorker(b);
    await until('both workers to listen', () => [a, b].every((l) => l.some((x) => x.includes('taking jobs'))));
    const sweep = runSweep(file, { out: join(dir, 'queued'), queue: redis.url });
    await until('the first worker to take a job', () => a.some((x) => x.includes(': running')));
    victim.kill('SIGKILL');
    const queued = await sweep;
    const killedJob = /job (\w+): running/.exec(a.find((x) => x.includes(': running'))!)![1]!;
    expect(a.some((x) => x.includes(`job ${killedJob}: done`))).toBe(false);
    // BullMQ's stalled-job check gave the killed worker's job to the other one.
    expect(b.filter((x) => x.includes(`job ${killedJob}: done`))).toHaveLength(1);
    expect(queued.rows.map((r) => r.status)).toEqual(Array(6).fill('ok'));
    expect(queued.rows.map((r) => r.job)).toEqual(local.rows.map((r) => r.job));
    const runs = readdirSync(join(dir, 'queued', 'runs')).sort();
    expect(runs).toEqual(local.jobs.map((j) => `${j.id}.json`).sort());
    for (const name of runs) {
      const theirs = JSON.parse(readFileSync(join(dir, 'queued', 'runs', name), 'utf8')) as Report;
      const ours = JSON.parse(readFileSync(join(dir, 'local', 'runs', name), 'utf8')) as Report;
      expect(withoutWall(theirs), name).toBe(withoutWall(ours));
    }
    // Each job left the queue once its result was in.
    const queue = new Queue(QUEUE_NAME, { connection: connection() });
    expect(await queue.getJobCountByTypes('completed', 'failed', 'active', 'wait', 'delayed')).toBe(0);
    await queue.close();
  }, 120_000);

  it('fails a job that fails on every attempt, and one made by another pagevisor version, naming why', async () => {
    const lines: string[] = [];
    startWorker(lines);
    await until('the worker to listen', () => lines.some((x) => x.includes('taking jobs')));
    writeFileSync(join(dir, 'refuses.mjs'), `export default { kind: 'dedup', name: 'refuses', create() { throw new Error('out of ideas'); } };`);
    const file = join(dir, 'refuses.json');
    writeFileSync(file, JSON.stringify({ name: 'refuses', base: TINY_BASE, axes: { 'dedup.strategy': ['./refuses.mjs'] } }));
    const r = await runSweep(file, { out: join(dir, 'refused'), queue: redis.url });
    expect(r.rows[0]).toMatchObject({ status: 'failed' });
    expect(r.rows[0]!.error).toMatch(/^on the queue: PluginError: plugin \.\/refuses\.mjs: create threw: out of ideas/);
    // A job as an older pagevisor would have put it.
    const queue = new Queue(QUEUE_NAME, { connection: connection() });
    const events = new QueueEvents(QUEUE_NAME, { connection: connection() });
    await events.waitUntilReady();
    const job = await queue.add('job', { scenario: {}, version: '0.0.1' }, { jobId: 'old-version' });
    await expect(job.waitUntilFinished(events, 20_000)).rejects.toThrow(/the job was made by pagevisor 0\.0\.1; this worker is pagevisor \d+\.\d+\.\d+/);
    await job.remove();
    await events.close();
    await queue.close();
  }, 120_000);

  it('says plainly when Redis cannot be reached, before running anything', async () => {
    const file = join(dir, 'one.json');
    writeFileSync(file, JSON.stringify({ name: 'one', base: TINY_BASE, axes: { seed: [9] } }));
    await expect(runSweep(file, { out: join(dir, 'unreached'), queue: 'redis://127.0.0.1:1' })).rejects.toThrow(QueueError);
    await expect(runSweep(file, { out: join(dir, 'unreached'), queue: 'redis://127.0.0.1:1' })).rejects.toThrow(/cannot reach Redis: connect ECONNREFUSED/);
    expect(readdirSync(join(dir, 'unreached', 'runs'))).toEqual([]);
  });
});
