import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asMfn, HypervisorError, INVALID_MFN, InvariantError, type Mfn } from '@pagevisor/types';
import { ClockPolicy } from './clock-policy.js';

const m = asMfn;

function clockWith(frames: number, ...mfns: number[]): ClockPolicy {
  const p = new ClockPolicy({ frames });
  for (const x of mfns) p.insert(m(x));
  return p;
}

describe('ClockPolicy', () => {
  it('has no victim when empty', () => {
    const p = new ClockPolicy({ frames: 8 });
    expect(p.name).toBe('clock');
    expect(p.size).toBe(0);
    expect(p.victim()).toBe(INVALID_MFN);
  });

  it('gives touched frames a second chance and finds the untouched one', () => {
    const p = clockWith(8, 1, 2, 3);
    p.touch(m(1));
    p.touch(m(2));
    expect(p.victim()).toBe(3);
    // The hand cleared the bits it passed.
    expect(p.isReferenced(m(1))).toBe(false);
    expect(p.isReferenced(m(2))).toBe(false);
    // The victim stays tracked and under the hand until removed.
    expect(p.victim()).toBe(3);
    expect(p.has(m(3))).toBe(true);
    expect(p.size).toBe(3);
  });

  it('returns the frame under the hand after a full revolution when all are touched', () => {
    const p = clockWith(8, 0, 1, 2);
    for (const x of [0, 1, 2]) p.touch(m(x));
    expect(p.victim()).toBe(0);
    for (const x of [0, 1, 2]) expect(p.isReferenced(m(x))).toBe(false);
  });

  it('moves the hand to the next frame when the victim is removed', () => {
    const p = clockWith(8, 1, 2, 3);
    p.touch(m(1));
    p.touch(m(2));
    expect(p.victim()).toBe(3);
    p.remove(m(3));
    // The hand wrapped to 1, whose bit it cleared on the previous sweep.
    expect(p.victim()).toBe(1);
    expect(p.size).toBe(2);
  });

  it('moves the hand on when the frame under it is removed', () => {
    const p = clockWith(8, 4, 5, 6);
    expect(p.victim()).toBe(4);
    p.touch(m(6));
    p.remove(m(4));
    expect(p.victim()).toBe(5);
    p.remove(m(5));
    // Only 6 is left, referenced: one sweep clears it and comes back.
    expect(p.victim()).toBe(6);
    p.remove(m(6));
    expect(p.victim()).toBe(INVALID_MFN);
    expect(p.size).toBe(0);
  });

  it('inserts behind the hand, so a new frame is reached last', () => {
    const p = clockWith(8, 0, 1, 2);
    expect(p.victim()).toBe(0);
    p.insert(m(3));
    p.touch(m(0));
    expect(p.victim()).toBe(1);
    p.touch(m(1));
    p.touch(m(2));
    expect(p.victim()).toBe(3);
  });

  it('inserts frames unreferenced and ignores touches of untracked frames', () => {
    const p = new ClockPolicy({ frames: 4 });
    p.touch(m(2));
    expect(p.isReferenced(m(2))).toBe(false);
    p.insert(m(2));
    expect(p.isReferenced(m(2))).toBe(false);
    p.touch(m(2));
    expect(p.isReferenced(m(2))).toBe(true);
    p.remove(m(2));
    p.insert(m(2));
    expect(p.isReferenced(m(2))).toBe(false);
  });

  it('throws InvariantError on a second insert and leaves the ring intact', () => {
    const p = clockWith(4, 1, 2);
    expect(() => p.insert(m(1))).toThrow(InvariantError);
    expect(p.size).toBe(2);
    expect(p.victim()).toBe(1);
  });

  it('treats remove of an untracked frame as a no-op', () => {
    const p = clockWith(4, 1);
    p.remove(m(3));
    p.remove(m(3));
    expect(p.size).toBe(1);
    expect(p.victim()).toBe(1);
  });

  it('throws InvariantError for an mfn outside the table', () => {
    const p = new ClockPolicy({ frames: 4 });
    for (const bad of [INVALID_MFN, m(4), m(1.5)]) {
      expect(() => p.insert(bad)).toThrow(InvariantError);
      expect(() => p.remove(bad)).toThrow(InvariantError);
      expect(() => p.touch(bad)).toThrow(InvariantError);
    }
    expect(p.size).toBe(0);
  });

  it('rejects a bad frames option with EINVAL', () => {
    for (const frames of [0, -1, 2.5, 2 ** 31]) {
      expect(() => new ClockPolicy({ frames })).toThrow(HypervisorError);
    }
  });

  it('forgets every frame on reset', () => {
    const p = clockWith(4, 0, 1, 2);
    p.touch(m(1));
    p.reset();
    expect(p.size).toBe(0);
    expect(p.victim()).toBe(INVALID_MFN);
    expect(p.has(m(1))).toBe(false);
    expect(p.isReferenced(m(1))).toBe(false);
    p.insert(m(1));
    expect(p.victim()).toBe(1);
  });

  it('matches a reference model of the ring', () => {
    const frames = 12;
    const op = fc.tuple(
      fc.constantFrom('insert', 'remove', 'touch', 'victim', 'reset'),
      fc.integer({ min: 0, max: frames - 1 }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 20, maxLength: 300, size: 'max' }), (ops) => {
        const p = new ClockPolicy({ frames });
        // Model: the ring in hand order as an array, the hand an index into it, referenced bits a set.
        let ring: number[] = [];
        let hand = 0;
        const referenced = new Set<number>();
        for (const [kind, x] of ops) {
          const mfn = m(x);
          switch (kind) {
            case 'insert':
              if (ring.includes(x)) {
                expect(() => p.insert(mfn)).toThrow(InvariantError);
              } else {
                p.insert(mfn);
                ring.splice(hand, 0, x);
                if (ring.length > 1) hand++;
                referenced.delete(x);
              }
              break;
            case 'remove': {
              p.remove(mfn);
              const at = ring.indexOf(x);
              if (at >= 0) {
                ring.splice(at, 1);
                referenced.delete(x);
                if (at < hand) hand--;
                if (hand >= ring.length) hand = 0;
              }
              break;
            }
            case 'touch':
              p.touch(mfn);
              if (ring.includes(x)) referenced.add(x);
              break;
            case 'victim': {
              let want: Mfn = INVALID_MFN;
              if (ring.length > 0) {
                while (referenced.has(ring[hand]!)) {
                  referenced.delete(ring[hand]!);
                  hand = (hand + 1) % ring.length;
                }
                want = m(ring[hand]!);
              }
              const got = p.victim();
              expect(got).toBe(want);
              if (got !== INVALID_MFN) expect(p.has(got)).toBe(true);
              break;
            }
            case 'reset':
              p.reset();
              ring = [];
              hand = 0;
              referenced.clear();
              break;
          }
          expect(p.size).toBe(ring.length);
        }
        for (let f = 0; f < frames; f++) {
          expect(p.has(m(f))).toBe(ring.includes(f));
          expect(p.isReferenced(m(f))).toBe(referenced.has(f));
        }
      }),
      { numRuns: 300 },
    );
  });
});
