/** How {@link timeRates} times a body of operations. */
export interface TimedSpec {
  /** Operations one call of `run` does. */
  readonly ops: number;
  /** Timed repeats (samples). */
  readonly repeats: number;
  /**
   * Untimed, before the warm-up and before each repeat: puts the state back where `run` expects
   * it (frames to free again, pages to share again). With a setup, each repeat is one `run(ops)`.
   */
  readonly setup?: () => void;
  /** Does `n` operations (n <= ops when there is a setup; any n otherwise). */
  readonly run: (n: number) => void;
  /**
   * Without a setup: a repeat calls `run(ops)` as many times as it takes to last at least this
   * long (estimated from the warm-up), so that fast operations are not timed at the clock's
   * resolution or swamped by a few ms of another process. Default 50 ms.
   */
  readonly minRepeatMs?: number;
}

/** Repeats below this would be timed near the resolution of `performance.now()` and its jitter. */
export const DEFAULT_MIN_REPEAT_MS = 50;

/**
 * Warms up untimed — `run(min(ops, 4096))` to estimate the cost, then one whole repeat, so that
 * the JIT has optimised the loop before any timing — then does `spec.repeats` timed repeats and
 * returns the rate of each, in operations per second.
 */
export function timeRates(spec: TimedSpec): number[] {
  const { ops, repeats, setup, run } = spec;
  if (!(Number.isInteger(ops) && ops > 0)) throw new RangeError(`timeRates: ops must be a positive integer, got ${ops}`);
  if (!(Number.isInteger(repeats) && repeats > 0)) throw new RangeError(`timeRates: repeats must be a positive integer, got ${repeats}`);
  setup?.();
  const warm = Math.min(ops, 4096);
  let t0 = performance.now();
  run(warm);
  const warmMs = performance.now() - t0;
  let calls = 1;
  if (setup === undefined) {
    // Estimated from the first, coldest run: errs towards longer repeats.
    const msPerCall = Math.max(warmMs, 1e-3) * (ops / warm);
    calls = Math.max(1, Math.ceil((spec.minRepeatMs ?? DEFAULT_MIN_REPEAT_MS) / msPerCall));
  }
  const rates: number[] = [];
  for (let r = -1; r < repeats; r++) {
    setup?.();
    t0 = performance.now();
    for (let c = 0; c < calls; c++) run(ops);
    const rate = (ops * calls) / ((performance.now() - t0) / 1000);
    if (r >= 0) rates.push(rate);
  }
  return rates;
}

/**
 * Times a cycle of phases that each do `ops` operations and together restore the state (allocate
 * every block, then free them): `rounds` untimed warm-up cycles, then per repeat `rounds` cycles, each
 * phase timed on its own. Returns per phase the rate of each repeat, in operations per second.
 */
export function timeCycle(ops: number, repeats: number, rounds: number, phases: readonly (() => void)[]): number[][] {
  for (let k = 0; k < rounds; k++) for (const phase of phases) phase();
  const rates = phases.map(() => [] as number[]);
  const ms = phases.map(() => 0);
  for (let r = 0; r < repeats; r++) {
    ms.fill(0);
    for (let k = 0; k < rounds; k++) {
      for (let p = 0; p < phases.length; p++) {
        const t0 = performance.now();
        phases[p]!();
        ms[p]! += performance.now() - t0;
      }
    }
    for (let p = 0; p < phases.length; p++) rates[p]!.push((ops * rounds) / (ms[p]! / 1000));
  }
  return rates;
}

/** Wall-clock milliseconds `body` takes, and what it returned. */
export async function timed<T>(body: () => Promise<T> | T): Promise<{ readonly ms: number; readonly value: T }> {
  const t0 = performance.now();
  const value = await body();
  return { ms: performance.now() - t0, value };
}

/**
 * Times two bodies of `ops` operations in alternation, repeat after repeat (a, then b), after an
 * untimed warm-up of each: per repeat the two samples are taken seconds apart at most, so their
 * ratio cancels what drifts over a run (a busier machine, a slower clock). Each body runs as
 * many times a repeat as it takes to last `minRepeatMs` (default 20 ms). Returns both bodies'
 * rates, one per repeat, in operations per second.
 */
export function timePaired(ops: number, repeats: number, a: (n: number) => void, b: (n: number) => void, minRepeatMs = DEFAULT_MIN_REPEAT_MS): [number[], number[]] {
  const callsOf = (run: (n: number) => void): number => {
    run(Math.min(ops, 4096));
    const t0 = performance.now();
    run(ops);
    return Math.max(1, Math.ceil(minRepeatMs / Math.max(performance.now() - t0, 1e-3)));
  };
  const calls = [callsOf(a), callsOf(b)];
  const rates: [number[], number[]] = [[], []];
  const runs = [a, b];
  for (let r = 0; r < repeats; r++) {
    for (let k = 0; k < 2; k++) {
      const t0 = performance.now();
      for (let c = 0; c < calls[k]!; c++) runs[k]!(ops);
      rates[k]!.push((ops * calls[k]!) / ((performance.now() - t0) / 1000));
    }
  }
  return rates;
}
