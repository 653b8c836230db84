import { describe, expect, it } from 'vitest';
import { CONVERGENCE_TOLERANCE, convergedAtNs } from './convergence.js';

const series = (values: number[]) => values.map((v, i) => ({ tNs: i * 10, v }));
const at = (values: number[]): number => convergedAtNs(series(values), (s) => s.v);

describe('convergedAtNs', () => {
  it('is the first sample from which the value stays within 0.5% of the final one', () => {
    expect(CONVERGENCE_TOLERANCE).toBe(0.005);
    expect(at([0, 500, 1000, 800, 600, 601, 600])).toBe(40);
    // 1000 * 0.5% = 5: 995 and 1005 are in, 994 is out.
    expect(at([994, 995, 1005, 1000])).toBe(10);
    expect(at([1, 1, 1])).toBe(0);
  });

  it('does not count a sample that passed through the band on the way', () => {
    expect(at([100, 50, 100, 50, 50])).toBe(30);
  });

  it('is the last sample when still moving, and 0 without samples', () => {
    expect(at([10, 20, 30, 40])).toBe(30);
    expect(convergedAtNs([], () => 0)).toBe(0);
  });
});
