import { parseArgs } from 'node:util';
import { SUITE_NAMES, type SuiteName } from './measurement.js';

/** Suites run when no `--suite` is given: all but `scale` and `huge`, which take minutes. */
export const DEFAULT_SUITES: readonly SuiteName[] = SUITE_NAMES.filter((s) => s !== 'scale' && s !== 'huge');

/** Timed repeats of each suite when `--repeats` is not given. */
export const DEFAULT_REPEATS: Readonly<Record<SuiteName, number>> = {
  limits: 5,
  micro: 5,
  swap: 5,
  ksmd: 5,
  macro: 3,
  sweep: 3,
  trace: 3,
  scale: 1,
  huge: 1,
};

/** Largest `--repeats`. */
export const MAX_REPEATS = 1000;

/** Usage text. */
export const USAGE = `Usage: pagevisor-bench [--suite NAME ...] [--strategy SPEC ...] [--policy SPEC ...] [--allocator SPEC ...] [--json] [--out FILE]
                       [--markdown FILE] [--compare OLD.json] [--simulator-root DIR] [--repeats N] [--quick]
       (in the repository: node apps/bench/dist/main.js ...)

Suites (default: all but scale and huge):
  limits  this machine's limits, measured in this process: 4 KiB copy, XXH64 of 4 KiB in place,
          4 KiB compare, 4 KiB slot write and read of a temporary file (page cache, no fsync);
          and the C reference's memcpy, memcmp and XXH64 loops (built with cc when there is one)
  micro   every package: frame allocation and free, p2m get/set, dedup lookup/insert and the
          KSM and ESX scanners, copy-on-write faults, the hypervisor's write paths, a timeline
          sample on a 1 GiB and a 1 TiB host, and the hypercall ABI's encode + validate +
          decode of every op; hot paths show their ratios to the JavaScript and native bounds
  swap    swap out and in per device (memory, file) and compression (none, lz4, deflate)
  ksmd    pagevisor's KSM scanner against this host's ksmd on the same pages and knobs
          (checksum, unstable-tree, merge and all-merged full scans): pages/s of both and
          the ratios; ksmd's side needs Linux KSM, root and cc, else it is noted as skipped
  macro   the simulator's scenarios (child processes): dedup none/inline/ksm/esx, swap eviction
          clock/lru/random x shared/per-domain, and the metadata bytes per guest page; each
          --strategy plugin beside them
  sweep   a 32-job sweep on 1 and 2 local workers and through Redis (redis-server, 2 pagevisor
          workers), and 200 tiny jobs: the speed-up, Redis against local, overhead per job
  trace   trace replay at 10^4, 10^5 and 10^6 events (a child process each): rate and peak RSS
  scale   the simulator's scenarios/scale-16x1g.json (16 guests x 1 GiB on 8 GiB): wall time,
          CPU time, simulated time, peak RSS (takes minutes)
  huge    fingerprint mode at size: scenarios/huge-256x4g.json (256 guests x 4 GiB on 512 GiB,
          page contents as fingerprints): wall time, CPU, peak RSS and RSS per guest page; and the
          scale scenario in both content modes, RSS per guest page of each (takes many minutes)
limits also runs, and is reported, whenever micro or swap runs: their ratios need it.

Options:
  --suite NAME     Run this suite (repeatable, or comma-separated).
  --strategy SPEC  Also run the macro suite's scenarios under this dedup strategy plugin
                   (repeatable): a module path (./my-dedup.mjs, relative to the working
                   directory, or absolute) or a package name, whose default export is
                   { kind: 'dedup', name, create }. It is loaded before anything runs; one that
                   cannot be is a usage error. A built-in's name adds nothing (all run already).
                   Needs the macro suite in the run (the default suites include it).
  --policy SPEC    The same for an eviction-policy plugin: overcommit with one shared area and
                   with an area per domain under it, beside clock, lru and random.
  --allocator SPEC The same for an allocator plugin: static-compare and the default scenario
                   (inline) and overcommit (shared, clock) on it, beside the buddy allocator.
  --json           Print the whole result as JSON on stdout instead of the tables.
  --out FILE       Also write the JSON result to FILE.
  --markdown FILE  Also write the result as a markdown document to FILE (BENCHMARKS.md is one).
  --compare FILE   Compare with an earlier --json result: the ratio new/old of every measurement
                   in both, and a verdict (regression, improvement, unchanged) against the noise.
                   Regressions are listed at the end; the exit code stays 0. Targets that
                   compare two runs (scale CPU <= 0.5 x the old run's) are judged against it.
  --simulator-root DIR
                   The scale suite runs the built simulator of the checkout DIR
                   (DIR/apps/simulator/bin/pagevisor.js) on this checkout's scenario: old code
                   measured by this runner, to --compare with later. Only with --suite scale
                   (limits may come along).
  --repeats N      Timed repeats of every measurement (default: limits/micro/swap/ksmd 5, macro,
                   sweep and trace 3, scale 1).
  --quick          Small sizes, for tests and smoke runs (not comparable with full runs).
  --help           This text.

Exit codes: 0 done (regressions included), 1 bad usage (nothing ran; also a --strategy that
cannot be loaded), 2 some benchmark failed (listed).
`;

/** A command line the runner refuses; the CLI prints it with the usage and exits 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Options of a run, from the command line. */
export interface CliOptions {
  /** Suites asked for, in run order, without duplicates (the limits are added later when needed). */
  readonly suites: readonly SuiteName[];
  /** `--strategy` specifiers, in the order given, without duplicates (loaded by the CLI before the run). */
  readonly strategies: readonly string[];
  /** `--policy` specifiers, likewise. */
  readonly policies: readonly string[];
  /** `--allocator` specifiers, likewise. */
  readonly allocators: readonly string[];
  /** Print JSON instead of tables. */
  readonly json: boolean;
  /** File to write the JSON result to. */
  readonly out?: string;
  /** File to write the markdown document to. */
  readonly markdown?: string;
  /** Earlier result to compare with. */
  readonly compare?: string;
  /** Checkout whose built simulator the scale suite runs (`--simulator-root`). */
  readonly simulatorRoot?: string;
  /** Repeats for every suite, when given. */
  readonly repeats?: number;
  /** Small sizes. */
  readonly quick: boolean;
  /** Only print the usage. */
  readonly help: boolean;
}

/** Parses the runner's arguments (without node and script); throws {@link UsageError}. */
export function parseCliArgs(argv: readonly string[]): CliOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        suite: { type: 'string', multiple: true },
        strategy: { type: 'string', multiple: true },
        policy: { type: 'string', multiple: true },
        allocator: { type: 'string', multiple: true },
        json: { type: 'boolean' },
        out: { type: 'string' },
        markdown: { type: 'string' },
        compare: { type: 'string' },
        'simulator-root': { type: 'string' },
        repeats: { type: 'string' },
        quick: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  // --help wins: nothing else is checked, read or loaded.
  if (values.help === true) return { suites: DEFAULT_SUITES, strategies: [], policies: [], allocators: [], json: false, quick: false, help: true };
  const asked = (values.suite ?? []).flatMap((s) => s.split(',')).map((s) => s.trim());
  for (const s of asked) {
    if (!(SUITE_NAMES as readonly string[]).includes(s)) {
      throw new UsageError(`unknown suite "${s}" (suites: ${SUITE_NAMES.join(', ')})`);
    }
  }
  const suites = asked.length === 0 ? DEFAULT_SUITES : SUITE_NAMES.filter((s) => asked.includes(s));
  let repeats: number | undefined;
  if (values.repeats !== undefined) {
    const n = /^\d+$/.test(values.repeats) ? Number(values.repeats) : NaN;
    if (!(n >= 1 && n <= MAX_REPEATS)) throw new UsageError(`--repeats: must be an integer from 1 to ${MAX_REPEATS}, got "${values.repeats}"`);
    repeats = n;
  }
  for (const flag of ['out', 'markdown', 'compare'] as const) {
    if (values[flag] === '') throw new UsageError(`--${flag}: needs a file name`);
  }
  const simulatorRoot = values['simulator-root'];
  if (simulatorRoot !== undefined) {
    if (simulatorRoot === '') throw new UsageError('--simulator-root: needs the directory of a checkout');
    if (!suites.includes('scale')) throw new UsageError(`--simulator-root: only the scale suite runs another checkout's simulator, and this run (${suites.join(', ')}) does not include it: add --suite scale`);
    const others = suites.filter((s) => s !== 'scale' && s !== 'limits');
    // Their figures would be this checkout's in a result that says it measured the other one.
    if (others.length > 0) throw new UsageError(`--simulator-root: only the scale suite runs another checkout's simulator; ${others.join(', ')} would measure this one: run them without it`);
  }
  const plugins = (flag: 'strategy' | 'policy' | 'allocator'): string[] => {
    const specs = [...new Set(values[flag] ?? [])];
    if (specs.includes('')) throw new UsageError(`--${flag}: needs a module specifier (./my-plugin.mjs, a package name) or a built-in name`);
    if (specs.length > 0 && !suites.includes('macro')) {
      throw new UsageError(`--${flag}: plugins run in the macro suite, which this run (${suites.join(', ')}) does not include: add --suite macro`);
    }
    return specs;
  };
  return {
    suites,
    strategies: plugins('strategy'),
    policies: plugins('policy'),
    allocators: plugins('allocator'),
    json: values.json === true,
    ...(values.out === undefined ? {} : { out: values.out }),
    ...(values.markdown === undefined ? {} : { markdown: values.markdown }),
    ...(values.compare === undefined ? {} : { compare: values.compare }),
    ...(simulatorRoot === undefined ? {} : { simulatorRoot }),
    ...(repeats === undefined ? {} : { repeats }),
    quick: values.quick === true,
    help: false,
  };
}

/** Repeats of `suite` under `opts`. */
export function repeatsOf(opts: Pick<CliOptions, 'repeats' | 'quick'>, suite: SuiteName): number {
  if (opts.repeats !== undefined) return opts.repeats;
  // Quick runs check that everything works: three samples still show a spread.
  return opts.quick ? Math.min(DEFAULT_REPEATS[suite], 3) : DEFAULT_REPEATS[suite];
}
