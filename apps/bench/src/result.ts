import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Comparison } from './compare.js';
import type { Measurement, SuiteName } from './measurement.js';
import { SIMULATOR_DIR } from './simulator-cli.js';
import type { StrategyRecord } from './strategies.js';
import type { SuiteResult } from './suite-context.js';
import type { Target } from './targets.js';

/** Format tag of a result file; `--compare` refuses files without it. */
export const RESULT_FORMAT = 'pagevisor-bench/1';

/** The machine a run measured. */
export interface MachineInfo {
  /** Logical CPUs (`os.cpus().length`). */
  readonly cpus: number;
  /** CPUs Node may use (`os.availableParallelism()`). */
  readonly availableParallelism: number;
  /** Model of the first CPU. */
  readonly cpuModel: string;
  /** RAM in bytes. */
  readonly totalMemBytes: number;
  /** `process.version`. */
  readonly node: string;
  /** `process.platform` and `os.release()`. */
  readonly os: string;
  /** `process.arch`. */
  readonly arch: string;
}

/** The whole result of a run, as `--json` prints it and `--compare` reads it. */
export interface BenchResult {
  /** Always {@link RESULT_FORMAT}. */
  readonly format: typeof RESULT_FORMAT;
  /** When the run started (ISO 8601). */
  readonly date: string;
  /** The command line's arguments. */
  readonly argv: readonly string[];
  /**
   * The code measured: `git describe --always --dirty` of the bench's own checkout, or null when
   * it is not one (installed from a package: see `code`).
   */
  readonly commit: string | null;
  /** Where the code measured came from: a checkout of the repository or installed packages, and their versions. */
  readonly code?: CodeInfo;
  /** Options of the run. */
  readonly options: {
    readonly suites: readonly SuiteName[];
    readonly quick: boolean;
    readonly repeats: Readonly<Partial<Record<SuiteName, number>>>;
    /** `--simulator-root`: the checkout whose simulator the scale suite ran, when not the bench's own. */
    readonly simulatorRoot?: string;
  };
  /** The `--strategy` plugins given (name and specifier; a built-in's name adds nothing to the matrix). */
  readonly strategies?: readonly StrategyRecord[];
  /** The machine. */
  readonly machine: MachineInfo;
  /** Each suite that ran, in order, with its notes (its measurements are in `measurements`). */
  readonly suites: readonly SuiteSummary[];
  /** Every measurement of every suite, in the order they ran (each names its suite). */
  readonly measurements: readonly Measurement[];
  /** The targets, met, missed or not measured. */
  readonly targets: readonly Target[];
  /** Suites or parts that failed (each an error message); empty when all ran. */
  readonly errors: readonly string[];
  /** Wall seconds of the whole run. */
  readonly wallS: number;
  /** The comparison with `--compare`'s file, when given. */
  readonly comparison?: Comparison;
}

/** A suite of a run: its notes, extra figures and errors; its measurements are the result's with its name. */
export type SuiteSummary = Omit<SuiteResult, 'measurements'>;

/** This machine, as {@link MachineInfo}. */
export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpus: list.length,
    availableParallelism: availableParallelism(),
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    totalMemBytes: totalmem(),
    node: process.version,
    os: `${process.platform} ${release()}`,
    arch: process.arch,
  };
}

/** Where the measured code came from. */
export interface CodeInfo {
  /** True when the bench runs from a checkout of the repository (apps/bench), false when installed in node_modules. */
  readonly checkout: boolean;
  /** Versions of the bench and of the simulator it runs (from their package.json). */
  readonly packages: Readonly<Record<string, string>>;
  /**
   * With `--simulator-root`: the other checkout whose simulator the scale suite ran, and its
   * `git describe --always --dirty` (null when it is not a git checkout).
   */
  readonly simulator?: { readonly root: string; readonly commit: string | null };
}

/** The bench's package directory (src/ and dist/ are both one level below it), symlinks resolved. */
const BENCH_DIR = realpathSync(fileURLToPath(new URL('..', import.meta.url)));

/** True when `dir` is inside a node_modules directory: an installed package, not a checkout. */
function installed(dir: string): boolean {
  return dir.split(sep).includes('node_modules');
}

function versionOf(dir: string): string {
  try {
    return String((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown }).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

/** {@link CodeInfo} of this run; `simulatorRoot`: the checkout the scale suite ran the simulator of (`--simulator-root`). */
export function codeInfo(simulatorRoot?: string): CodeInfo {
  return {
    checkout: !installed(BENCH_DIR),
    packages: { '@pagevisor/bench': versionOf(BENCH_DIR), '@pagevisor/simulator': versionOf(SIMULATOR_DIR) },
    ...(simulatorRoot === undefined ? {} : { simulator: { root: simulatorRoot, commit: gitDescribe(simulatorRoot) } }),
  };
}

/**
 * `git describe --always --dirty` in `dir`, or null (no git, not a checkout). GIT_OPTIONAL_LOCKS=0:
 * git writes nothing there (no index refresh), so describing another checkout leaves it as it is.
 */
function gitDescribe(dir: string): string | null {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' },
    }).trim();
  } catch {
    return null;
  }
}

/**
 * The bench's own checkout as `git describe --always --dirty` (`-dirty`: uncommitted changes), or
 * null: not a git checkout, no git, or the bench installed in node_modules (where git would
 * describe whatever project it was installed into, not the code measured).
 */
export function codeVersion(): string | null {
  return installed(BENCH_DIR) ? null : gitDescribe(BENCH_DIR);
}

/**
 * Checks that `value` (parsed JSON) looks like a {@link BenchResult}: the format tag and a
 * measurements array whose entries have an id, a unit, a direction and finite statistics.
 * Returns the problems found (empty when it does).
 */
export function resultProblems(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return ['not a JSON object'];
  const v = value as Record<string, unknown>;
  if (v['format'] !== RESULT_FORMAT) return [`format is ${JSON.stringify(v['format'])}, expected "${RESULT_FORMAT}"`];
  if (!Array.isArray(v['measurements'])) return ['measurements is not an array'];
  const problems: string[] = [];
  (v['measurements'] as unknown[]).forEach((m, i) => {
    const r = (typeof m === 'object' && m !== null ? m : {}) as Record<string, unknown>;
    if (typeof r['id'] !== 'string') problems.push(`measurements[${i}].id is not a string`);
    if (r['better'] !== 'higher' && r['better'] !== 'lower') problems.push(`measurements[${i}].better is not "higher" or "lower"`);
    for (const k of ['median', 'min', 'max', 'spread']) {
      if (typeof r[k] !== 'number' || !Number.isFinite(r[k])) problems.push(`measurements[${i}].${k} is not a finite number`);
    }
  });
  return problems.slice(0, 5);
}
