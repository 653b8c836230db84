import type { Better, Measurement } from './measurement.js';
import type { Target } from './targets.js';

/** How a measurement moved between two runs. */
export type Verdict = 'regression' | 'improvement' | 'unchanged';

/** Smallest noise threshold: a median moving by less than 5% is never called a change. */
export const MIN_NOISE = 0.05;
/**
 * Noise threshold when either run has fewer than {@link MIN_SAMPLES_FOR_SPREAD} samples: its
 * spread says nothing about the noise, so a wider margin stands in for it.
 */
export const FEW_SAMPLES_NOISE = 0.25;
/** Samples a run needs for its spread to count as its noise. */
export const MIN_SAMPLES_FOR_SPREAD = 3;
/** Threshold for deterministic figures (simulated quantities): any change beyond rounding counts. */
export const EXACT_NOISE = 1e-9;

/** One measurement present in both runs. */
export interface MeasurementComparison {
  readonly id: string;
  readonly name: string;
  readonly unit: string;
  readonly better: Better;
  readonly oldMedian: number;
  readonly newMedian: number;
  /** newMedian / oldMedian (1 when both are 0; Infinity when only the old one is 0). */
  readonly ratio: number;
  /** Relative change beyond which the verdict is not `unchanged`. */
  readonly noise: number;
  readonly verdict: Verdict;
  /**
   * The change of the ratio to the limit (new ratio / old ratio), when both runs have one: it
   * cancels what slowed or sped up the whole machine between the runs.
   */
  readonly limitRatioChange?: number;
  /** The same for the ratio to the native bound (the C reference's), when both runs have one. */
  readonly nativeRatioChange?: number;
}

/** The comparison of a run with an earlier one. */
export interface Comparison {
  /** Where the earlier run came from (the `--compare` file). */
  readonly against: string;
  /** The earlier run's date. */
  readonly againstDate: string;
  /** Every measurement present in both runs, in the new run's order. */
  readonly entries: readonly MeasurementComparison[];
  /** Ids of the regressions, in order. */
  readonly regressions: readonly string[];
  /** Ids of the improvements, in order. */
  readonly improvements: readonly string[];
  /** Ids measured in the earlier run only (dropped, renamed, or their suite did not run). */
  readonly onlyInOld: readonly string[];
  /** Ids measured in the new run only. */
  readonly onlyInNew: readonly string[];
  /**
   * How far the machine itself moved between the runs: the median of |new/old - 1| over the
   * limits measured in both (0 without them). Timed figures are judged against at least this.
   */
  readonly machineDrift: number;
  /** Why the two runs may not be comparable (quick vs full, other machine, other Node, limits moved). */
  readonly warnings: readonly string[];
  /** The targets judged on this run against the earlier one (e.g. the scale scenario's CPU), with their verdicts. */
  readonly targets?: readonly Target[];
}

/**
 * The relative change two measurements of one figure must exceed to count: 0 (beyond rounding)
 * when both are exact; otherwise the larger of both runs' relative spreads ((max - min) / median)
 * and {@link MIN_NOISE}, or {@link FEW_SAMPLES_NOISE} when either has too few samples to show its noise.
 */
export function noiseThreshold(a: Pick<Measurement, 'spread' | 'samples' | 'exact'>, b: Pick<Measurement, 'spread' | 'samples' | 'exact'>): number {
  if (a.exact === true && b.exact === true) return EXACT_NOISE;
  const few = a.samples.length < MIN_SAMPLES_FOR_SPREAD || b.samples.length < MIN_SAMPLES_FOR_SPREAD;
  return Math.max(a.spread, b.spread, few ? FEW_SAMPLES_NOISE : MIN_NOISE);
}

/** new / old, with 1 for 0 / 0 and ±Infinity for x / 0. */
export function ratioOf(oldMedian: number, newMedian: number): number {
  if (oldMedian === newMedian) return 1;
  if (oldMedian === 0) return newMedian > 0 ? Infinity : -Infinity;
  return newMedian / oldMedian;
}

/**
 * The verdict for a figure whose median went from `oldMedian` to `newMedian`: a regression when
 * it got worse (lower when higher is better, higher when lower is better) by more than `noise`
 * relative to the old median, an improvement when it got better by as much, else unchanged.
 */
export function verdictOf(better: Better, oldMedian: number, newMedian: number, noise: number): Verdict {
  const change = (newMedian - oldMedian) / Math.abs(oldMedian);
  // Both 0: no change; old 0 only: the sign of the new one decides (Infinity beats any noise).
  const rel = oldMedian === 0 ? (newMedian === 0 ? 0 : Math.sign(newMedian) * Infinity) : change;
  if (Math.abs(rel) <= noise) return 'unchanged';
  const up = rel > 0;
  return up === (better === 'higher') ? 'improvement' : 'regression';
}

/**
 * The median of |new/old - 1| over the `limits.` measurements present in both runs: the same
 * primitives, timed the same way, so their move is the machine's (load, clock, neighbours), not
 * the code's. 0 when no limit is in both.
 */
export function machineDrift(oldRun: { readonly measurements: readonly Measurement[] }, newRun: { readonly measurements: readonly Measurement[] }): number {
  const olds = new Map(oldRun.measurements.map((m) => [m.id, m]));
  const moves: number[] = [];
  for (const n of newRun.measurements) {
    const o = olds.get(n.id);
    if (o === undefined || n.suite !== 'limits' || o.median === 0) continue;
    moves.push(Math.abs(n.median / o.median - 1));
  }
  if (moves.length === 0) return 0;
  moves.sort((a, b) => a - b);
  const mid = moves.length >> 1;
  return moves.length % 2 === 1 ? moves[mid]! : (moves[mid - 1]! + moves[mid]!) / 2;
}

/**
 * Compares two runs' measurements by id: each timed figure against the larger of its noise
 * ({@link noiseThreshold}) and the machine's drift between the runs ({@link machineDrift}),
 * each exact figure against rounding only (see {@link verdictOf}).
 */
export function compareMeasurements(
  oldRun: { readonly measurements: readonly Measurement[] },
  newRun: { readonly measurements: readonly Measurement[] },
  against = '',
  againstDate = '',
  warnings: readonly string[] = [],
): Comparison {
  const olds = new Map(oldRun.measurements.map((m) => [m.id, m]));
  const newIds = new Set(newRun.measurements.map((m) => m.id));
  const drift = machineDrift(oldRun, newRun);
  const entries: MeasurementComparison[] = [];
  const onlyInNew: string[] = [];
  for (const n of newRun.measurements) {
    const o = olds.get(n.id);
    if (o === undefined) {
      onlyInNew.push(n.id);
      continue;
    }
    const exact = o.exact === true && n.exact === true;
    // The limits are judged on their own noise: the drift is computed from them.
    const noise = exact || n.suite === 'limits' ? noiseThreshold(o, n) : Math.max(noiseThreshold(o, n), drift);
    const limitRatioChange = o.limit !== undefined && n.limit !== undefined ? n.limit.ratio / o.limit.ratio : undefined;
    const nativeRatioChange = o.native !== undefined && n.native !== undefined ? n.native.ratio / o.native.ratio : undefined;
    entries.push({
      id: n.id,
      name: n.name,
      unit: n.unit,
      better: n.better,
      oldMedian: o.median,
      newMedian: n.median,
      ratio: ratioOf(o.median, n.median),
      noise,
      verdict: verdictOf(n.better, o.median, n.median, noise),
      ...(limitRatioChange === undefined ? {} : { limitRatioChange }),
      ...(nativeRatioChange === undefined ? {} : { nativeRatioChange }),
    });
  }
  const limitsMoved = entries.filter((e) => e.id.startsWith('limits.') && e.verdict !== 'unchanged');
  const allWarnings = [...warnings];
  if (limitsMoved.length > 0) {
    allWarnings.push(
      `the machine's limits moved (${limitsMoved.map((e) => `${e.id} ${e.ratio.toFixed(2)}x`).join(', ')}): the machine was busier, or different; timed figures are judged against at least its median drift, ${(drift * 100).toFixed(1)}%, and those with a limit also show their ratio to it ("vs limit")`,
    );
  }
  return {
    against,
    againstDate,
    entries,
    regressions: entries.filter((e) => e.verdict === 'regression').map((e) => e.id),
    improvements: entries.filter((e) => e.verdict === 'improvement').map((e) => e.id),
    onlyInOld: oldRun.measurements.filter((m) => !newIds.has(m.id)).map((m) => m.id),
    onlyInNew,
    machineDrift: drift,
    warnings: allWarnings,
  };
}
