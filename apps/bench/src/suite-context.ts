import type { Measurement, SuiteName } from './measurement.js';
import type { BenchStrategy } from './strategies.js';

/** What every suite gets: sizes, repeats, where to log, and the limits measured so far. */
export interface SuiteContext {
  /** Smaller sizes (for tests and smoke runs): figures are not comparable with full runs. */
  readonly quick: boolean;
  /** Timed repeats (samples) of each measurement of this suite. */
  readonly repeats: number;
  /** Progress lines (to stderr in the CLI). */
  readonly log: (line: string) => void;
  /** The limits suite's measurements by id, when it ran (ratios need them). */
  readonly limits: ReadonlyMap<string, Measurement>;
  /**
   * Why the C reference's limits (`limits.native.*`) are not in `limits` (no C compiler, no
   * source), when the limits suite ran without them: the figures then carry only their
   * JavaScript ratios, and say why.
   */
  readonly nativeUnavailable?: string;
  /**
   * Another checkout whose built simulator the scale suite runs (`--simulator-root`): its
   * `apps/simulator/bin/pagevisor.js`, on the scenario file of this one.
   */
  readonly simulatorRoot?: string;
  /** Dedup strategy plugins given with `--strategy` (the macro suite runs its matrix under each too). */
  readonly strategies?: readonly BenchStrategy[];
}

/** What a suite returns. */
export interface SuiteResult {
  /** The suite. */
  readonly suite: SuiteName;
  /** Its measurements, in the order they print. */
  readonly measurements: readonly Measurement[];
  /** Remarks on how the figures were obtained, printed under the suite's table. */
  readonly notes: readonly string[];
  /** Parts that failed while the rest ran (each a message naming the part). */
  readonly errors?: readonly string[];
  /** Extra figures that are not measurements (e.g. the scale run's report summary). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Problems shown of an audit's list: the rest are counted. */
const PROBLEMS_SHOWN = 3;

/** Throws an Error naming `what` and the first few of `problems` (with their count), if there are any. */
export function throwProblems(what: string, problems: readonly string[]): void {
  if (problems.length === 0) return;
  const more = problems.length > PROBLEMS_SHOWN ? `; and ${problems.length - PROBLEMS_SHOWN} more` : '';
  throw new Error(`${what}: ${problems.slice(0, PROBLEMS_SHOWN).join('; ')}${more}`);
}
