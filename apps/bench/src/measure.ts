/** Median of `values` (sorted copy). */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** One measured rate: operations per second, median over repeats, with the spread seen. */
export interface Rate {
  readonly name: string;
  readonly opsPerS: number;
  readonly minOpsPerS: number;
  readonly maxOpsPerS: number;
  readonly repeats: number;
}

/**
 * Runs `body(n)` (which does n operations) once to warm up, then `repeats` times, timing each
 * with the wall clock, and returns the median rate.
 */
export function measure(name: string, opsPerRepeat: number, repeats: number, body: (n: number) => void): Rate {
  body(Math.min(opsPerRepeat, 4096));
  const rates: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    body(opsPerRepeat);
    const s = (performance.now() - t0) / 1000;
    rates.push(opsPerRepeat / s);
  }
  return { name, opsPerS: median(rates), minOpsPerS: Math.min(...rates), maxOpsPerS: Math.max(...rates), repeats };
}
