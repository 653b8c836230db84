import type { Measurement } from './measurement.js';
import { runSuites, type IsolatedPass, type RunBenchOptions } from './run-bench.js';

/**
 * Entry of a process that the runner forks once per repeat for the suites that run in its own
 * process (limits, micro, swap): runs them with one repeat each and sends back their
 * measurements, notes and errors over IPC (see `runIsolated` in run-bench.ts).
 */
async function child(): Promise<void> {
  const opts = JSON.parse(process.argv[2]!) as Pick<RunBenchOptions, 'suites' | 'quick'> & { readonly index: number; readonly of: number };
  const log = (line: string): void => {
    if (opts.index === 0) process.stderr.write(`[bench] ${line} (process 1 of ${opts.of}, 1 sample each)\n`);
  };
  const { results, errors } = await runSuites(opts.suites, { quick: opts.quick, repeats: 1, log });
  const pass: IsolatedPass = {
    results: results.map((r) => ({ ...r, measurements: r.measurements as Measurement[] })),
    errors,
  };
  process.send!(pass, () => process.exit(0));
}

if (process.send !== undefined) {
  child().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
