import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { compareMeasurements, type Comparison } from './compare.js';
import { parseCliArgs, USAGE, UsageError } from './cli-args.js';
import { formatComparison, formatMarkdown, formatResult } from './format.js';
import { resultProblems, type BenchResult } from './result.js';
import { runBench } from './run-bench.js';
import { simulatorRootMissing } from './simulator-cli.js';
import { FLAG_OF, loadStrategies, type GivenStrategy } from './strategies.js';

/** Exit codes of {@link main}. */
export const ExitCode = {
  /** Done; regressions against --compare do not change it. */
  ok: 0,
  /** Bad usage (unknown suite or option, bad --repeats, unreadable --compare file, a --strategy that cannot be loaded): nothing ran. */
  usage: 1,
  /** Some benchmark failed (listed under ERRORS and in the JSON's `errors`). */
  failed: 2,
} as const;

/** Where the runner writes: the process's streams by default, buffers in tests. */
export interface BenchIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/** Reads and checks an earlier result for --compare; throws UsageError saying what is wrong. */
export function readResult(file: string): BenchResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`--compare: cannot read ${file}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--compare: ${file} is not JSON: ${(e as Error).message}`);
  }
  const problems = resultProblems(value);
  if (problems.length > 0) throw new UsageError(`--compare: ${file} is not a bench result (--json output): ${problems.join('; ')}`);
  return value as BenchResult;
}

/** Why `oldRun` and `newRun` may not be comparable. */
export function comparabilityWarnings(oldRun: Partial<BenchResult>, newRun: BenchResult): string[] {
  const w: string[] = [];
  if (oldRun.options?.quick !== newRun.options.quick) w.push(`one run is --quick and the other is not: sizes differ`);
  const om = oldRun.machine;
  if (om !== undefined && (om.cpuModel !== newRun.machine.cpuModel || om.cpus !== newRun.machine.cpus)) {
    w.push(`other machine: ${om.cpus} x ${om.cpuModel} then, ${newRun.machine.cpus} x ${newRun.machine.cpuModel} now`);
  }
  if (om !== undefined && om.node !== newRun.machine.node) w.push(`other Node: ${om.node} then, ${newRun.machine.node} now`);
  return w;
}

/**
 * The bench runner's command line (`argv` without node and script): runs the suites, prints
 * the tables (or the JSON), writes --out and --markdown, compares with --compare. Returns the exit code
 * (see {@link ExitCode}); progress goes to stderr.
 */
export async function main(argv: readonly string[], io: BenchIo = process, cwd: string = process.cwd()): Promise<number> {
  let opts;
  let old: BenchResult | undefined;
  let strategies: GivenStrategy[] = [];
  try {
    opts = parseCliArgs(argv);
    if (opts.help) {
      io.stdout.write(USAGE);
      return ExitCode.ok;
    }
    if (opts.compare !== undefined) old = readResult(opts.compare);
    const notBuilt = opts.simulatorRoot === undefined ? undefined : simulatorRootMissing(resolve(cwd, opts.simulatorRoot));
    if (notBuilt !== undefined) throw new UsageError(`--simulator-root: ${notBuilt}`);
    // Every plugin is loaded before anything runs: one that cannot be is a usage error.
    strategies = [
      ...(await loadStrategies(opts.strategies, cwd, 'dedup')),
      ...(await loadStrategies(opts.policies, cwd, 'eviction-policy')),
      ...(await loadStrategies(opts.allocators, cwd, 'allocator')),
    ];
    for (const r of strategies.filter((x) => x.builtIn)) io.stderr.write(`[bench] ${FLAG_OF[r.kind]} ${r.specifier}: a built-in, already in the matrix: nothing added\n`);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.stderr.write(`bench: ${e.message}\n\n${USAGE}`);
    return ExitCode.usage;
  }
  let result = await runBench({
    suites: opts.suites,
    quick: opts.quick,
    ...(opts.repeats === undefined ? {} : { repeats: opts.repeats }),
    argv,
    strategies,
    ...(opts.simulatorRoot === undefined ? {} : { simulatorRoot: resolve(cwd, opts.simulatorRoot) }),
    ...(old === undefined ? {} : { against: { file: opts.compare!, result: old } }),
    log: (line) => io.stderr.write(`[bench] ${line}\n`),
  });
  let comparison: Comparison | undefined;
  if (old !== undefined) {
    comparison = compareMeasurements(old, result, opts.compare, old.date, comparabilityWarnings(old, result));
    const judged = result.targets.filter((t) => t.against !== undefined);
    if (judged.length > 0) comparison = { ...comparison, targets: judged };
    result = { ...result, comparison };
  }
  const json = `${JSON.stringify(result, null, 2)}\n`;
  if (opts.out !== undefined) writeFileSync(opts.out, json);
  if (opts.markdown !== undefined) writeFileSync(opts.markdown, formatMarkdown(result));
  if (opts.json) {
    io.stdout.write(json);
    // The regressions stay visible when stdout goes to a file.
    if (comparison !== undefined) io.stderr.write(`${formatComparison(comparison).at(-1)!}\n`);
  } else {
    const lines = formatResult(result);
    if (comparison !== undefined) lines.push('', ...formatComparison(comparison));
    io.stdout.write(`${lines.join('\n')}\n`);
  }
  return result.errors.length > 0 ? ExitCode.failed : ExitCode.ok;
}
