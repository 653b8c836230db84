import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameIndex } from './frame-index.js';

describe('FrameIndex', () => {
  it('behaves as a Map under random sets and deletes, growing and shrinking', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 300 })), { maxLength: 600 }), (ops) => {
        const index = new FrameIndex();
        const model = new Map<number, number>();
        ops.forEach(([set, mfn], step) => {
          if (set && !model.has(mfn)) {
            index.set(mfn, step);
            model.set(mfn, step);
          } else if (!set) {
            expect(index.delete(mfn)).toBe(model.get(mfn) ?? -1);
            model.delete(mfn);
          }
          expect(index.size).toBe(model.size);
        });
        for (let mfn = 0; mfn <= 300; mfn++) expect(index.get(mfn)).toBe(model.get(mfn) ?? -1);
        const seen = new Map<number, number>();
        index.forEach((m, n) => seen.set(m, n));
        expect(seen).toEqual(model);
      }),
      { numRuns: 80 },
    );
  });

  it('refuses a frame twice, ignores negative frames, and clears', () => {
    const index = new FrameIndex();
    index.set(5, 1);
    expect(() => index.set(5, 2)).toThrow(/indexed twice/);
    expect(index.get(-1)).toBe(-1);
    expect(index.delete(-1)).toBe(-1);
    index.clear();
    expect([index.size, index.get(5)]).toEqual([0, -1]);
    expect(index.bytes).toBe(16 * 8);
  });
});
