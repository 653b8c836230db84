import type { Report } from '../src/report.js';

/** A small scenario for sweeps: two guests of 8 MiB, half one image, 2 simulated seconds of writes. */
export const TINY_BASE = {
  name: 'tiny',
  machine: { memoryMiB: 64 },
  durationS: 2,
  sampleIntervalS: 0.5,
  guests: [{ name: 'vm', count: 2, memoryMiB: 8, image: { id: 'os', fraction: 0.5 }, zeroFraction: 0.2, writeRatePagesPerS: 50 }],
};

/** A report as JSON without its wall-clock part: equal for two runs of one scenario. */
export function withoutWall(r: Report): string {
  const { wall: _wall, ...rest } = r;
  return JSON.stringify(rest);
}
