import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asMfn, HypervisorError, INVALID_MFN, InvariantError } from '@pagevisor/types';
import { LruPolicy } from './lru-policy.js';

const m = asMfn;

function lruWith(frames: number, ...mfns: number[]): LruPolicy {
  const p = new LruPolicy({ frames });
  for (const x of mfns) p.insert(m(x));
  return p;
}

/** Drains the policy through victim/remove: its frames from least to most recent. */
function drain(p: LruPolicy): number[] {
  const out: number[] = [];
  for (let v = p.victim(); v !== INVALID_MFN; v = p.victim()) {
    out.push(v);
    p.remove(v);
  }
  return out;
}

describe('LruPolicy', () => {
  it('has no victim when empty', () => {
    const p = new LruPolicy({ frames: 8 });
    expect(p.name).toBe('lru');
    expect(p.size).toBe(0);
    expect(p.victim()).toBe(INVALID_MFN);
  });

  it('picks the least recently inserted frame without evicting it', () => {
    const p = lruWith(8, 5, 3, 7);
    expect(p.victim()).toBe(5);
    expect(p.victim()).toBe(5);
    expect(p.size).toBe(3);
    expect(p.has(m(5))).toBe(true);
  });

  it('orders frames by their last touch', () => {
    const p = lruWith(8, 0, 1, 2, 3);
    p.touch(m(0));
    p.touch(m(2));
    p.touch(m(1));
    p.touch(m(0));
    expect(drain(p)).toEqual([3, 2, 1, 0]);
  });

  it('moves to the next least recent when the victim is removed', () => {
    const p = lruWith(8, 0, 1, 2);
    p.touch(m(0));
    expect(p.victim()).toBe(1);
    p.remove(m(1));
    expect(p.victim()).toBe(2);
    expect(p.size).toBe(2);
  });

  it('does not change recency on victim or has', () => {
    const p = lruWith(4, 0, 1);
    p.victim();
    p.has(m(0));
    expect(p.victim()).toBe(0);
  });

  it('holds exactly `frames` frames without dropping any', () => {
    const p = lruWith(4, 0, 1, 2, 3);
    expect(p.size).toBe(4);
    expect(drain(p)).toEqual([0, 1, 2, 3]);
  });

  it('throws InvariantError on a second insert and keeps the order', () => {
    const p = lruWith(4, 1, 2);
    expect(() => p.insert(m(1))).toThrow(InvariantError);
    expect(p.victim()).toBe(1);
    expect(p.size).toBe(2);
  });

  it('treats remove and touch of an untracked frame as no-ops', () => {
    const p = lruWith(4, 1);
    p.remove(m(3));
    p.touch(m(3));
    expect(p.size).toBe(1);
    expect(p.has(m(3))).toBe(false);
    expect(p.victim()).toBe(1);
  });

  it('throws InvariantError for an mfn outside the table', () => {
    const p = new LruPolicy({ frames: 4 });
    for (const bad of [INVALID_MFN, m(4), m(0.5)]) {
      expect(() => p.insert(bad)).toThrow(InvariantError);
      expect(() => p.remove(bad)).toThrow(InvariantError);
      expect(() => p.touch(bad)).toThrow(InvariantError);
    }
    expect(p.size).toBe(0);
  });

  it('rejects a bad frames option with EINVAL', () => {
    expect(() => new LruPolicy({ frames: 0 })).toThrow(HypervisorError);
  });

  it('forgets every frame on reset', () => {
    const p = lruWith(4, 0, 1);
    p.reset();
    expect(p.size).toBe(0);
    expect(p.victim()).toBe(INVALID_MFN);
    p.insert(m(1));
    p.insert(m(0));
    expect(p.victim()).toBe(1);
  });

  it('always names exactly the model’s least recent frame', () => {
    const frames = 10;
    const op = fc.tuple(
      fc.constantFrom('insert', 'remove', 'touch', 'victim', 'reset'),
      fc.integer({ min: 0, max: frames - 1 }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 20, maxLength: 300, size: 'max' }), (ops) => {
        const p = new LruPolicy({ frames });
        // Model: tracked frames from least to most recent.
        let order: number[] = [];
        for (const [kind, x] of ops) {
          const mfn = m(x);
          const at = order.indexOf(x);
          switch (kind) {
            case 'insert':
              if (at >= 0) {
                expect(() => p.insert(mfn)).toThrow(InvariantError);
              } else {
                p.insert(mfn);
                order.push(x);
              }
              break;
            case 'remove':
              p.remove(mfn);
              if (at >= 0) order.splice(at, 1);
              break;
            case 'touch':
              p.touch(mfn);
              if (at >= 0) order.push(...order.splice(at, 1));
              break;
            case 'victim': {
              const got = p.victim();
              expect(got).toBe(order.length > 0 ? order[0] : INVALID_MFN);
              break;
            }
            case 'reset':
              p.reset();
              order = [];
              break;
          }
          expect(p.size).toBe(order.length);
        }
        expect(drain(p)).toEqual(order);
      }),
      { numRuns: 300 },
    );
  });
});
