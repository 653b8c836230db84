import { Job, Queue, QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { VERSION } from '../version.js';
import { JobProcess } from './local-pool.js';
import type { JobMessage, JobResult } from './run-job.js';

/** The BullMQ queue sweeps put their jobs on and workers take them from. */
export const QUEUE_NAME = 'pagevisor-sweep';

/** Tries a failed attempt this many times in all (a worker killed mid-job: BullMQ's stalled-job check puts it back). */
const ATTEMPTS = 3;

/** A job on the queue: what a worker runs, and which pagevisor made it. */
interface QueuedJob {
  readonly scenario: JobMessage['scenario'];
  readonly version: string;
}

/** The queue cannot be used: a bad URL, Redis unreachable. Nothing was put on it or taken from it. */
export class QueueError extends Error {
  override readonly name = 'QueueError';
}

/** A connection to the Redis at `url` (redis://HOST:PORT), checked now: unreachable, a clear error. */
async function connect(url: string): Promise<Redis> {
  if (!/^rediss?:\/\//.test(url)) throw new QueueError(`--queue ${url}: must be a redis:// URL, e.g. redis://127.0.0.1:6379`);
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: null, retryStrategy: () => null, connectTimeout: 5000 });
  let cause: Error | undefined;
  // Reported by connect() below, or by BullMQ's calls later.
  redis.on('error', (e: Error) => (cause ??= e));
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw new QueueError(`--queue ${url}: cannot reach Redis: ${(cause ?? (e as Error)).message}`);
  }
  return redis;
}

/**
 * Puts `jobs` on the queue at `url` (job id = the job's id, so a job already there, done or not,
 * is not added twice) and waits for workers to run them, calling `done` with each result once.
 * A job that failed on an earlier sweep is retried. Each job leaves the queue once its result is in.
 */
export async function runOnQueue(url: string, jobs: readonly JobMessage[], done: (result: JobResult) => void): Promise<void> {
  if (jobs.length === 0) return;
  const connection = await connect(url);
  const queue = new Queue<QueuedJob>(QUEUE_NAME, { connection });
  const events = new QueueEvents(QUEUE_NAME, { connection: connection.duplicate() });
  try {
    await events.waitUntilReady();
    await Promise.all(
      jobs.map(async (m) => {
        let job = await queue.add('job', { scenario: m.scenario, version: VERSION }, { jobId: m.id, attempts: ATTEMPTS, backoff: { type: 'fixed', delay: 500 } });
        if ((await job.getState()) === 'failed') {
          await job.retry();
          job = (await Job.fromId(queue, m.id))!;
        }
        try {
          done({ id: m.id, report: await job.waitUntilFinished(events) });
        } catch (e) {
          done({ id: m.id, error: `on the queue: ${(e as Error).message}` });
        }
        await job.remove().catch(() => {});
      }),
    );
  } finally {
    await events.close();
    await queue.close();
    connection.disconnect();
  }
}

/** Options of {@link runWorker}. */
export interface WorkerOptions {
  /** Where the jobs' relative plugin paths resolve from (default the current directory). */
  readonly baseDir?: string;
  /** How long a job's lock lasts without renewal, in ms (BullMQ's lockDuration; default 30,000): a worker that dies is noticed within about this. */
  readonly lockMs?: number;
  /** Told of each job taken and ended. */
  readonly log?: (line: string) => void;
  /** Stop taking jobs (after the current one) when aborted. */
  readonly signal?: AbortSignal;
}

/**
 * Takes jobs from the queue at `url` until `signal` aborts, running each in a worker process of
 * its own (so that the lock keeps being renewed while it runs, and a job that crashes it fails
 * alone). A job made by another pagevisor version fails at once, naming both versions.
 */
export async function runWorker(url: string, opts: WorkerOptions = {}): Promise<void> {
  const connection = await connect(url);
  const runner = new JobProcess();
  const log = opts.log ?? (() => {});
  const lockDuration = opts.lockMs ?? 30_000;
  const worker = new Worker<QueuedJob>(
    QUEUE_NAME,
    async (job) => {
      if (job.data.version !== VERSION) {
        throw new UnrecoverableError(`the job was made by pagevisor ${job.data.version}; this worker is pagevisor ${VERSION}: run workers of the sweep's version`);
      }
      log(`job ${job.id}: running (attempt ${job.attemptsMade + 1})`);
      const result = await runner.run({ id: job.id!, scenario: job.data.scenario, baseDir: opts.baseDir ?? process.cwd() });
      if ('error' in result) throw new UnrecoverableError(result.error);
      log(`job ${job.id}: done`);
      return result.report;
    },
    { connection, concurrency: 1, lockDuration, stalledInterval: Math.max(500, lockDuration / 2), maxStalledCount: ATTEMPTS - 1 },
  );
  worker.on('error', (e) => log(`worker: ${e.message}`));
  await worker.waitUntilReady();
  log(`worker: taking jobs from ${QUEUE_NAME} at ${url}`);
  await new Promise<void>((resolve) => {
    if (opts.signal?.aborted === true) resolve();
    opts.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  await worker.close();
  runner.close();
  connection.disconnect();
}
