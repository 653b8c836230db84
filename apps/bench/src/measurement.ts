/** The suites of the runner, in the order they run. */
export const SUITE_NAMES = ['limits', 'micro', 'swap', 'ksmd', 'macro', 'sweep', 'trace', 'scale', 'huge'] as const;

/** Name of a suite. */
export type SuiteName = (typeof SUITE_NAMES)[number];

/** Which way a figure is better. */
export type Better = 'higher' | 'lower';

/** A measurement's ratio to the machine limit it is bounded by (both measured in this process). */
export interface LimitRatio {
  /** Id of the limit's measurement, e.g. `limits.copy-hash`. */
  readonly id: string;
  /** Its name, e.g. `copy+hash`. */
  readonly name: string;
  /** This measurement's median over the limit's median. */
  readonly ratio: number;
}

/**
 * The two kinds of bound a figure can carry a ratio to, each a field of {@link Measurement}:
 * `limit`, the JavaScript bound (this process's own primitives, `limits.machine.*`, or a loop
 * timed beside the figure); `native`, the C reference's bound (`limits.native.*`, what the
 * machine itself does with memcpy, memcmp and XXH64).
 */
export const LIMIT_KINDS = ['limit', 'native'] as const;

/** A kind of bound: see {@link LIMIT_KINDS}. */
export type LimitKind = (typeof LIMIT_KINDS)[number];

/** A bound a figure is compared with: the id of the limit's measurement, its name in the tables, and its kind. */
export interface Bound {
  readonly id: string;
  readonly name: string;
  /** Default `limit` (the JavaScript bound). */
  readonly kind?: LimitKind;
}

/**
 * One figure of a run: every sample (one per repeat), their median, extremes and relative spread.
 * Measurements are matched between runs by `id`, which stays stable when the name's wording changes.
 */
export interface Measurement {
  /** Stable key: `suite.group.key`, e.g. `micro.frame-allocator.buddy-alloc-o0`. */
  readonly id: string;
  /** Suite that produced it. */
  readonly suite: SuiteName;
  /** Package or section inside the suite, e.g. `frame-allocator`. */
  readonly group: string;
  /** What was measured, in words. */
  readonly name: string;
  /** Unit of the samples, e.g. `ops/s`, `pages/s`, `ms`, `bytes`. */
  readonly unit: string;
  /** Whether a higher or a lower figure is better. */
  readonly better: Better;
  /** Median of the samples. */
  readonly median: number;
  /** Smallest sample. */
  readonly min: number;
  /** Largest sample. */
  readonly max: number;
  /** The samples, in the order they were taken. */
  readonly samples: readonly number[];
  /** (max - min) / median: the noise seen (0 with one sample, or when the median is 0). */
  readonly spread: number;
  /**
   * True for a deterministic figure (a simulated quantity: frames saved, simulated CPU time): the
   * same code gives the same value, so any change between runs is a change of behaviour, not noise.
   */
  readonly exact?: boolean;
  /** Ratio to the relevant JavaScript bound (see {@link LIMIT_KINDS}), when there is one and it was measured. */
  readonly limit?: LimitRatio;
  /** Ratio to the relevant native bound, the C reference's (see {@link LIMIT_KINDS}), when there is one and it was measured. */
  readonly native?: LimitRatio;
  /** A remark printed beside the figure. */
  readonly note?: string;
}

/** What a suite gives to {@link measurement}: everything but the derived statistics. */
export interface MeasurementSpec {
  readonly suite: SuiteName;
  readonly group: string;
  /** Short stable key inside the group (kebab-case). */
  readonly key: string;
  readonly name: string;
  readonly unit: string;
  readonly better: Better;
  readonly samples: readonly number[];
  readonly exact?: boolean;
  readonly note?: string;
}

/** Median of `values` (sorted copy); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** (max - min) / median of `values`; 0 for fewer than two values or a median of 0. */
export function relativeSpread(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = median(values);
  return m === 0 ? 0 : (Math.max(...values) - Math.min(...values)) / Math.abs(m);
}

/**
 * A {@link Measurement} from its samples. Throws when there is no sample or one is not a finite
 * number: a benchmark that produced NaN or Infinity measured nothing.
 */
export function measurement(spec: MeasurementSpec): Measurement {
  const { samples } = spec;
  if (samples.length === 0) throw new Error(`measurement ${spec.suite}.${spec.group}.${spec.key}: no samples`);
  const bad = samples.find((x) => !Number.isFinite(x));
  if (bad !== undefined) throw new Error(`measurement ${spec.suite}.${spec.group}.${spec.key}: sample ${bad} is not a finite number`);
  return {
    id: `${spec.suite}.${spec.group}.${spec.key}`,
    suite: spec.suite,
    group: spec.group,
    name: spec.name,
    unit: spec.unit,
    better: spec.better,
    median: median(samples),
    min: Math.min(...samples),
    max: Math.max(...samples),
    samples: [...samples],
    spread: relativeSpread(samples),
    ...(spec.exact === true ? { exact: true } : {}),
    ...(spec.note === undefined ? {} : { note: spec.note }),
  };
}

/** `m` with its ratio to `limit` (median over median), as its JavaScript bound or (`kind` `native`) its native one. */
export function withLimit(m: Measurement, limit: Measurement, limitName: string, kind: LimitKind = 'limit'): Measurement {
  return { ...m, [kind]: { id: limit.id, name: limitName, ratio: m.median / limit.median } };
}

/**
 * `m` with its ratio to each of `bounds` found in `limits` (the limits suite's measurements by
 * id); a bound that was not measured (the C reference without a C compiler) is left out.
 */
export function withBounds(m: Measurement, limits: ReadonlyMap<string, Measurement>, bounds: readonly Bound[]): Measurement {
  let out = m;
  for (const b of bounds) {
    const limit = limits.get(b.id);
    if (limit !== undefined) out = withLimit(out, limit, b.name, b.kind ?? 'limit');
  }
  return out;
}
