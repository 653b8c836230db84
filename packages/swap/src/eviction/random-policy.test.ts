import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asMfn, HypervisorError, INVALID_MFN, InvariantError } from '@pagevisor/types';
import { RandomPolicy } from './random-policy.js';

const m = asMfn;

function randomWith(frames: number, seed: number, ...mfns: number[]): RandomPolicy {
  const p = new RandomPolicy({ frames, seed });
  for (const x of mfns) p.insert(m(x));
  return p;
}

function draws(p: RandomPolicy, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(p.victim());
  return out;
}

describe('RandomPolicy', () => {
  it('has no victim when empty', () => {
    const p = new RandomPolicy({ frames: 8, seed: 1 });
    expect(p.name).toBe('random');
    expect(p.size).toBe(0);
    expect(p.victim()).toBe(INVALID_MFN);
  });

  it('draws uniformly among tracked frames over 10,000 draws', () => {
    const tracked = [3, 9, 17, 20, 33, 41, 50, 63];
    const p = randomWith(64, 42, ...tracked);
    const counts = new Map<number, number>();
    for (const v of draws(p, 10_000)) counts.set(v, (counts.get(v) ?? 0) + 1);
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual(tracked);
    // Expected 1250 each, standard deviation about 33: 200 is six of them.
    for (const c of counts.values()) expect(Math.abs(c - 1250)).toBeLessThan(200);
    // Chi-square with 7 degrees of freedom: 24.3 is its 0.999 quantile.
    let chi2 = 0;
    for (const c of counts.values()) chi2 += (c - 1250) ** 2 / 1250;
    expect(chi2).toBeLessThan(24.3);
  });

  it('stays uniform after removals reshuffle the dense array', () => {
    const p = randomWith(16, 7, ...Array.from({ length: 16 }, (_, i) => i));
    for (const x of [0, 5, 15, 8, 9, 1]) p.remove(m(x));
    const counts = new Map<number, number>();
    for (const v of draws(p, 10_000)) counts.set(v, (counts.get(v) ?? 0) + 1);
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([2, 3, 4, 6, 7, 10, 11, 12, 13, 14]);
    for (const c of counts.values()) expect(Math.abs(c - 1000)).toBeLessThan(180);
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const a = draws(randomWith(32, 5, 1, 2, 3, 4, 5, 6, 7, 8), 100);
    const b = draws(randomWith(32, 5, 1, 2, 3, 4, 5, 6, 7, 8), 100);
    const c = draws(randomWith(32, 6, 1, 2, 3, 4, 5, 6, 7, 8), 100);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('replays like a new policy after reset', () => {
    const p = randomWith(32, 9, 1, 2, 3, 4);
    const first = draws(p, 50);
    p.reset();
    expect(p.size).toBe(0);
    expect(p.victim()).toBe(INVALID_MFN);
    for (const x of [1, 2, 3, 4]) p.insert(m(x));
    expect(draws(p, 50)).toEqual(first);
  });

  it('never returns a removed victim', () => {
    const p = randomWith(8, 3, 0, 1, 2, 3);
    const seen: number[] = [];
    for (let v = p.victim(); v !== INVALID_MFN; v = p.victim()) {
      expect(seen).not.toContain(v);
      seen.push(v);
      p.remove(v);
      expect(p.has(v)).toBe(false);
    }
    expect(seen.sort()).toEqual([0, 1, 2, 3]);
    expect(p.size).toBe(0);
  });

  it('ignores touches', () => {
    const a = randomWith(8, 11, 0, 1, 2, 3);
    const b = randomWith(8, 11, 0, 1, 2, 3);
    b.touch(m(2));
    b.touch(m(7));
    expect(draws(b, 40)).toEqual(draws(a, 40));
  });

  it('throws InvariantError on a second insert and keeps its frames', () => {
    const p = randomWith(4, 0, 1, 2);
    expect(() => p.insert(m(2))).toThrow(InvariantError);
    expect(p.size).toBe(2);
    p.remove(m(1));
    expect(p.victim()).toBe(2);
  });

  it('treats remove of an untracked frame as a no-op', () => {
    const p = randomWith(4, 0, 1);
    p.remove(m(3));
    expect(p.size).toBe(1);
    expect(p.victim()).toBe(1);
  });

  it('throws InvariantError for an mfn outside the table', () => {
    const p = new RandomPolicy({ frames: 4, seed: 0 });
    for (const bad of [INVALID_MFN, m(4), m(2.5)]) {
      expect(() => p.insert(bad)).toThrow(InvariantError);
      expect(() => p.remove(bad)).toThrow(InvariantError);
      expect(() => p.touch(bad)).toThrow(InvariantError);
    }
    expect(p.size).toBe(0);
  });

  it('rejects a bad frames option with EINVAL and defaults the seed to 0', () => {
    expect(() => new RandomPolicy({ frames: 0 })).toThrow(HypervisorError);
    expect(new RandomPolicy({ frames: 4 }).seed).toBe(0);
  });

  it('always names a tracked frame of the model', () => {
    const frames = 10;
    const op = fc.tuple(
      fc.constantFrom('insert', 'remove', 'touch', 'victim', 'reset'),
      fc.integer({ min: 0, max: frames - 1 }),
    );
    const ops = fc.array(op, { minLength: 20, maxLength: 300, size: 'max' });
    fc.assert(
      fc.property(fc.integer(), ops, (seed, ops) => {
        const p = new RandomPolicy({ frames, seed });
        const tracked = new Set<number>();
        for (const [kind, x] of ops) {
          const mfn = m(x);
          switch (kind) {
            case 'insert':
              if (tracked.has(x)) {
                expect(() => p.insert(mfn)).toThrow(InvariantError);
              } else {
                p.insert(mfn);
                tracked.add(x);
              }
              break;
            case 'remove':
              p.remove(mfn);
              tracked.delete(x);
              break;
            case 'touch':
              p.touch(mfn);
              break;
            case 'victim': {
              const got = p.victim();
              if (tracked.size === 0) expect(got).toBe(INVALID_MFN);
              else expect(tracked.has(got)).toBe(true);
              break;
            }
            case 'reset':
              p.reset();
              tracked.clear();
              break;
          }
          expect(p.size).toBe(tracked.size);
        }
        for (let f = 0; f < frames; f++) expect(p.has(m(f))).toBe(tracked.has(f));
      }),
      { numRuns: 300 },
    );
  });
});
