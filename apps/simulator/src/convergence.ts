/** Tolerance of {@link convergedAtNs}: 0.5% of the final value. */
export const CONVERGENCE_TOLERANCE = 0.005;

/**
 * The time of the first sample from which `value` stays within `tolerance` (a fraction) of its
 * final value (the last sample's) until the end: when de-duplication has done its work. It is the
 * last sample's time when the value was still moving at the end, and 0 for an empty timeline.
 */
export function convergedAtNs<T extends { readonly tNs: number }>(
  samples: readonly T[],
  value: (sample: T) => number,
  tolerance = CONVERGENCE_TOLERANCE,
): number {
  if (samples.length === 0) return 0;
  const final = value(samples.at(-1)!);
  const band = Math.abs(final) * tolerance;
  let first = samples.length - 1;
  while (first > 0 && Math.abs(value(samples[first - 1]!) - final) <= band) first--;
  return samples[first]!.tNs;
}
