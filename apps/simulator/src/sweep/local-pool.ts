import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { JobMessage, JobResult } from './run-job.js';

// The built script, also when this module runs from src/ (tests): both are two levels under the package.
const JOB_PROCESS = fileURLToPath(new URL('../../dist/sweep/job-process.js', import.meta.url));

/**
 * One worker process (job-process.ts) that runs jobs one at a time: started on the first job,
 * started again after it dies. A process that dies mid-job (a crash, the OOM killer, a signal)
 * fails that job alone.
 */
export class JobProcess {
  private child: ChildProcess | undefined;
  /** Node's flags for the process (not this process's own: a test runner's loaders would come along). */
  private readonly execArgv: readonly string[];
  private stderr = '';
  private pending: { id: string; resolve: (r: JobResult) => void } | undefined;

  constructor(execArgv: readonly string[] = []) {
    this.execArgv = execArgv;
  }

  /** Runs `job` in the process; its result, or why the process died running it. */
  run(job: JobMessage): Promise<JobResult> {
    return new Promise((resolve) => {
      this.pending = { id: job.id, resolve };
      (this.child ?? this.start()).send(job);
    });
  }

  /** Lets the process end (it exits once disconnected). */
  close(): void {
    this.child?.disconnect();
    this.child = undefined;
  }

  private start(): ChildProcess {
    const c = fork(JOB_PROCESS, [], { execArgv: [...this.execArgv], serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.stderr = '';
    c.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-2000);
    });
    c.on('message', (result: JobResult) => this.settle(result));
    c.on('exit', (code, signal) => {
      if (this.child !== c) return;
      this.child = undefined;
      if (this.pending === undefined) return;
      const why = signal !== null ? `signal ${signal}` : `exit code ${code}`;
      const tail = this.stderr.trim().split('\n').slice(-3).join(' / ');
      this.settle({ id: this.pending.id, error: `the worker process died running it (${why})${tail === '' ? '' : `: ${tail}`}` });
    });
    this.child = c;
    return c;
  }

  private settle(result: JobResult): void {
    const p = this.pending;
    this.pending = undefined;
    p?.resolve(result);
  }
}

/**
 * Node's flags for `workers` processes on this machine: when they take every core, V8 runs
 * single-threaded in each (`--single-threaded`), for its helper threads (concurrent marking and
 * compiling) would only take time from the other workers. Measured on a 2-core machine, 32
 * jobs on 2 workers: 5.47 s so, 5.90 s with the helpers; each worker alone runs about a fifth
 * slower without them, so with cores to spare they stay.
 */
export function workerFlags(workers: number): string[] {
  return workers > 1 && workers >= availableParallelism() ? ['--single-threaded'] : [];
}

/**
 * Runs `jobs` on `workers` {@link JobProcess}es, calling `done` with each result as it comes;
 * with `fresh`, each job in a process of its own (so that its report's peak RSS is its own).
 */
export async function runOnLocalWorkers(jobs: readonly JobMessage[], workers: number, done: (result: JobResult) => void, fresh = false): Promise<void> {
  let next = 0;
  const flags = workerFlags(workers);
  const worker = async (): Promise<void> => {
    const p = new JobProcess(flags);
    try {
      for (let job = jobs[next++]; job !== undefined; job = jobs[next++]) {
        done(await p.run(job));
        if (fresh) p.close();
      }
    } finally {
      p.close();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(workers, jobs.length)) }, worker));
}
