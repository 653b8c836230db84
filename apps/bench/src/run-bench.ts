import { fileURLToPath } from 'node:url';
import { forkForResult } from './child-run.js';
import { repeatsOf } from './cli-args.js';
import { LIMIT_KINDS, measurement, median, SUITE_NAMES, type Measurement, type SuiteName } from './measurement.js';
import { codeInfo, codeVersion, machineInfo, RESULT_FORMAT, type BenchResult } from './result.js';
import { pluginsOf, type BenchStrategy, type GivenStrategy } from './strategies.js';
import type { SuiteContext, SuiteResult } from './suite-context.js';
import { runKsmd } from './suites/ksmd.js';
import { NATIVE_UNAVAILABLE, runLimits } from './suites/limits.js';
import { runMacro } from './suites/macro.js';
import { runMicro } from './suites/micro.js';
import { runHuge } from './suites/huge.js';
import { runScale } from './suites/scale.js';
import { runSwap } from './suites/swap.js';
import { runSweepSuite } from './suites/sweep.js';
import { runTrace } from './suites/trace.js';
import { evaluateTargets, sideBySideProblems } from './targets.js';

/** Options of {@link runBench}. */
export interface RunBenchOptions {
  /** Suites to run (limits is added when micro or swap runs). */
  readonly suites: readonly SuiteName[];
  /** Small sizes. */
  readonly quick: boolean;
  /** Repeats of every suite (default: each suite's own, see DEFAULT_REPEATS). */
  readonly repeats?: number;
  /** Progress lines. Default: none. */
  readonly log?: (line: string) => void;
  /** The command line, recorded in the result. */
  readonly argv?: readonly string[];
  /**
   * The `--strategy` plugins, loaded (see `loadStrategies`): the macro suite runs its matrix under
   * each loaded plugin too; built-ins' names are only recorded. All are listed in the result.
   */
  readonly strategies?: readonly GivenStrategy[];
  /**
   * Run limits, micro and swap in a fresh process per repeat (default: true when running from
   * dist/, where the child's module exists as JavaScript; always false from source).
   */
  readonly isolate?: boolean;
  /**
   * Another checkout whose built simulator the scale suite runs (`--simulator-root`), instead of
   * the one the bench imports; the scenario file stays this checkout's.
   */
  readonly simulatorRoot?: string;
  /** The `--compare` run (its file and result): targets judged against it read it (see evaluateTargets). */
  readonly against?: { readonly file: string; readonly result: BenchResult };
}

/** What one isolated process sends back: its suites' results (one sample each) and errors. */
export interface IsolatedPass {
  readonly results: readonly SuiteResult[];
  readonly errors: readonly string[];
}

/** Suites measured inside the runner's own process (the others start processes of their own). */
export const IN_PROCESS_SUITES: readonly SuiteName[] = ['limits', 'micro', 'swap'];

const RUNNERS: Readonly<Record<SuiteName, (ctx: SuiteContext) => Promise<SuiteResult>>> = {
  limits: runLimits,
  micro: runMicro,
  swap: runSwap,
  ksmd: runKsmd,
  macro: runMacro,
  sweep: runSweepSuite,
  trace: runTrace,
  scale: runScale,
  huge: runHuge,
};

const CHILD_MODULE = fileURLToPath(new URL('./isolated-child.js', import.meta.url));
/** True when running from dist/: the isolated child's module is JavaScript there. */
const CAN_ISOLATE = fileURLToPath(import.meta.url).endsWith('.js');

/** The suites that run for `asked`: in run order, with limits whenever micro or swap needs its ratios. */
export function suitesToRun(asked: readonly SuiteName[]): SuiteName[] {
  const needLimits = asked.includes('micro') || asked.includes('swap');
  return SUITE_NAMES.filter((s) => asked.includes(s) || (s === 'limits' && needLimits));
}

/**
 * Runs `suites` one after the other in this process, each with the repeats `repeatsOf` gives
 * (or `opts.repeats`); the limits measured first are handed to the later suites for their
 * ratios. A suite that throws is recorded in `errors` and the others still run.
 */
export async function runSuites(
  suites: readonly SuiteName[],
  opts: {
    readonly quick: boolean;
    readonly repeats?: number;
    readonly log: (line: string) => void;
    readonly strategies?: readonly BenchStrategy[];
    readonly simulatorRoot?: string;
  },
): Promise<{ results: SuiteResult[]; errors: string[] }> {
  const limits = new Map<string, Measurement>();
  let nativeUnavailable: string | undefined;
  const results: SuiteResult[] = [];
  const errors: string[] = [];
  for (const suite of suites) {
    const ctx: SuiteContext = {
      quick: opts.quick,
      repeats: repeatsOf(opts, suite),
      log: opts.log,
      limits,
      ...(nativeUnavailable === undefined ? {} : { nativeUnavailable }),
      ...(opts.strategies === undefined ? {} : { strategies: opts.strategies }),
      ...(opts.simulatorRoot === undefined ? {} : { simulatorRoot: opts.simulatorRoot }),
    };
    try {
      const r = await RUNNERS[suite](ctx);
      results.push(r);
      for (const e of r.errors ?? []) errors.push(`${suite}: ${e}`);
      if (suite === 'limits') {
        for (const m of r.measurements) limits.set(m.id, m);
        nativeUnavailable = nativeUnavailableOf(r);
      }
    } catch (e) {
      errors.push(`${suite}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }
  return { results, errors };
}

/** Why the limits suite's result has no C reference's figures (its `details`), or undefined when it has them. */
function nativeUnavailableOf(r: SuiteResult | undefined): string | undefined {
  const why = r?.details?.[NATIVE_UNAVAILABLE];
  return typeof why === 'string' ? why : undefined;
}

/**
 * One measurement from the same measurement of several processes (one sample each): their
 * samples side by side; an exact figure once (flagged when the processes disagree); a ratio to
 * a bound (JavaScript or native) as the median of the processes' ratios, each taken within its
 * own process, when every process has it.
 */
export function mergeSamples(ms: readonly Measurement[]): Measurement {
  const first = ms[0]!;
  const [suite, group, ...rest] = first.id.split('.');
  const exact = first.exact === true;
  const samples = exact ? [first.median] : ms.flatMap((m) => m.samples);
  const disagree = exact && ms.some((m) => m.median !== first.median);
  const note = disagree ? 'NOT deterministic: processes disagree' : first.note;
  const merged = measurement({
    suite: suite as SuiteName,
    group: group!,
    key: rest.join('.'),
    name: first.name,
    unit: first.unit,
    better: first.better,
    samples,
    exact,
    ...(note === undefined ? {} : { note }),
  });
  let out: Measurement = merged;
  for (const kind of LIMIT_KINDS) {
    const ref = first[kind];
    const ratios = ms.flatMap((m) => (m[kind] === undefined ? [] : [m[kind].ratio]));
    if (ref !== undefined && ratios.length === ms.length) out = { ...out, [kind]: { ...ref, ratio: median(ratios) } };
  }
  return out;
}

/**
 * Runs `suites` in `n` fresh processes, one sample each, and merges the samples by id: the
 * spread then shows how much the figures move from one process to the next (JIT decisions,
 * memory placement), which repeats inside one process do not. A measurement missing from some
 * process is dropped, with an error.
 */
async function runIsolated(suites: readonly SuiteName[], quick: boolean, n: number, log: (line: string) => void): Promise<{ results: SuiteResult[]; errors: string[] }> {
  log(`${suites.join(', ')}: ${n} processes, one sample each`);
  const passes: IsolatedPass[] = [];
  const errors: string[] = [];
  for (let k = 0; k < n; k++) {
    try {
      passes.push(await forkForResult<IsolatedPass>(CHILD_MODULE, [JSON.stringify({ suites, quick, index: k, of: n })]));
    } catch (e) {
      errors.push(`process ${k + 1} of ${n}: ${(e as Error).message}`);
    }
  }
  for (const [k, p] of passes.entries()) for (const e of p.errors) errors.push(`process ${k + 1} of ${n}: ${e}`);
  const results: SuiteResult[] = [];
  for (const suite of suites) {
    const per = passes.map((p) => p.results.find((r) => r.suite === suite)).filter((r): r is SuiteResult => r !== undefined);
    if (per.length === 0) continue;
    const measurements: Measurement[] = [];
    for (const m of per[0]!.measurements) {
      const all = per.map((r) => r.measurements.find((x) => x.id === m.id)).filter((x): x is Measurement => x !== undefined);
      if (all.length !== per.length) errors.push(`${suite}: ${m.id} missing from some processes: dropped`);
      else measurements.push(mergeSamples(all));
    }
    const notes = [`${per.length} samples, each from a fresh process (after its own untimed warm-up).`, ...per[0]!.notes];
    const details = per[0]!.details;
    results.push({ suite, measurements, notes, ...(details === undefined ? {} : { details }) });
  }
  return { results, errors };
}

/**
 * Runs the suites and returns every measurement, the targets and the errors. Limits, micro and
 * swap run in a fresh process per repeat when `opts.isolate` allows it (see {@link runIsolated}),
 * else in this process; ksmd runs here too (the kernel's side in replayer processes), macro,
 * trace and scale start child processes of their own.
 */
export async function runBench(opts: RunBenchOptions): Promise<BenchResult> {
  const log = opts.log ?? (() => {});
  const t0 = performance.now();
  const date = new Date().toISOString();
  const suites = suitesToRun(opts.suites);
  const repeats: Partial<Record<SuiteName, number>> = {};
  for (const s of suites) repeats[s] = repeatsOf(opts, s);
  const inProcess = suites.filter((s) => IN_PROCESS_SUITES.includes(s));
  const others = suites.filter((s) => !IN_PROCESS_SUITES.includes(s));
  const results: SuiteResult[] = [];
  const errors: string[] = [];
  if (inProcess.length > 0 && (opts.isolate ?? CAN_ISOLATE)) {
    const n = Math.max(...inProcess.map((s) => repeats[s]!));
    for (const s of inProcess) repeats[s] = n;
    const r = await runIsolated(inProcess, opts.quick, n, log);
    results.push(...r.results);
    errors.push(...r.errors);
  } else if (inProcess.length > 0) {
    const r = await runSuites(inProcess, { quick: opts.quick, ...(opts.repeats === undefined ? {} : { repeats: opts.repeats }), log });
    results.push(...r.results);
    errors.push(...r.errors);
  }
  const given = opts.strategies ?? [];
  const plugins = pluginsOf(given);
  const r = await runSuites(others, {
    quick: opts.quick,
    ...(opts.repeats === undefined ? {} : { repeats: opts.repeats }),
    log,
    strategies: plugins,
    ...(opts.simulatorRoot === undefined ? {} : { simulatorRoot: opts.simulatorRoot }),
  });
  results.push(...r.results);
  errors.push(...r.errors);
  const measurements = results.flatMap((x) => x.measurements);
  const machine = machineInfo();
  const nativeUnavailable = nativeUnavailableOf(results.find((x) => x.suite === 'limits'));
  const against = opts.against;
  const targets = evaluateTargets(measurements, opts.quick, {
    ...(nativeUnavailable === undefined ? {} : { nativeUnavailable }),
    ...(against === undefined
      ? {}
      : { against: { file: against.file, measurements: against.result.measurements, problems: sideBySideProblems(against.result, { date, machine, options: { quick: opts.quick } }), measured: againstDescription(against.result) } }),
  });
  return {
    format: RESULT_FORMAT,
    date,
    argv: [...(opts.argv ?? [])],
    commit: codeVersion(),
    code: codeInfo(opts.simulatorRoot),
    options: { suites, quick: opts.quick, repeats, ...(opts.simulatorRoot === undefined ? {} : { simulatorRoot: opts.simulatorRoot }) },
    strategies: given.map(({ kind, name, specifier, builtIn }) => ({ kind, name, specifier, builtIn })),
    machine,
    suites: results.map(({ measurements: _measurements, ...summary }) => summary),
    measurements,
    targets,
    errors,
    wallS: (performance.now() - t0) / 1000,
  };
}

/** What an earlier run measured, in words: its commit, and the simulator it ran when it was another checkout's. */
export function againstDescription(old: Pick<BenchResult, 'commit' | 'code' | 'options'>): string {
  const sim = old.code?.simulator;
  const commit = old.commit === null || old.commit === undefined ? 'no commit recorded' : `commit ${old.commit}`;
  if (sim === undefined) return commit;
  return `the simulator of ${sim.root} (${sim.commit === null ? 'no commit recorded' : `commit ${sim.commit}`}), bench at ${commit}`;
}
