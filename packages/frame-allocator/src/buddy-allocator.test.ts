import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asMfn, HypervisorError, INVALID_MFN, InvariantError, MAX_ORDER, type Mfn } from '@pagevisor/types';
import { BuddyAllocator } from './buddy-allocator.js';

/** Free blocks per order, 0..MAX_ORDER. */
function shape(a: BuddyAllocator): number[] {
  return Array.from({ length: MAX_ORDER + 1 }, (_, k) => a.freeBlocks(k));
}

/** Free blocks per order of a bottom-up greedy carve of [first, total) into maximal aligned blocks. */
function greedyShape(total: number, first: number): number[] {
  const counts = new Array<number>(MAX_ORDER + 1).fill(0);
  let s = first;
  while (s < total) {
    let k = MAX_ORDER;
    while (s % 2 ** k !== 0 || s + 2 ** k > total) k--;
    counts[k]!++;
    s += 2 ** k;
  }
  return counts;
}

describe('BuddyAllocator', () => {
  it('starts as one block per aligned power of two and hands out the lowest frames first', () => {
    const a = new BuddyAllocator(1024);
    expect(a.name).toBe('buddy');
    expect(a.maxOrder).toBe(10);
    expect(a.freeFrames).toBe(1024);
    expect(shape(a)[10]).toBe(1);
    expect([0, 1, 2, 3].map(() => a.alloc(0))).toEqual([0, 1, 2, 3]);
    expect(a.freeFrames).toBe(1020);
    expect(a.isFree(asMfn(3))).toBe(false);
    expect(a.isFree(asMfn(4))).toBe(true);
    a.audit();
  });

  it('splits a block down to the order asked and coalesces it back', () => {
    const a = new BuddyAllocator(16);
    const initial = shape(a);
    const mfn = a.alloc(0);
    expect(mfn).toBe(0);
    // 15 free frames left as blocks of 1, 2, 4 and 8.
    expect(shape(a).slice(0, 5)).toEqual([1, 1, 1, 1, 0]);
    a.audit();
    a.free(mfn, 0);
    expect(shape(a)).toEqual(initial);
    expect(a.alloc(4)).toBe(0);
    expect(a.freeFrames).toBe(0);
  });

  it('allocates and frees every order, each block aligned to its size', () => {
    const a = new BuddyAllocator(2 ** (MAX_ORDER + 1));
    expect(a.maxOrder).toBe(MAX_ORDER);
    const blocks: [Mfn, number][] = [];
    for (let k = 0; k <= MAX_ORDER; k++) {
      const mfn = a.alloc(k);
      expect(mfn).not.toBe(INVALID_MFN);
      expect(mfn % 2 ** k).toBe(0);
      for (const f of [mfn, mfn + 2 ** k - 1]) expect(a.isFree(asMfn(f))).toBe(false);
      blocks.push([mfn, k]);
    }
    expect(a.freeFrames).toBe(1);
    a.audit();
    for (const [mfn, k] of blocks.reverse()) a.free(mfn, k);
    expect(a.freeFrames).toBe(2 ** (MAX_ORDER + 1));
    expect(shape(a)[MAX_ORDER]).toBe(2);
    a.audit();
  });

  it('carves sizes that are not powers of two, and a first frame, into maximal aligned blocks', () => {
    for (const [total, first] of [
      [1000, 0],
      [1000, 3],
      [1, 0],
      [7, 7],
      [(1 << 20) + 5, 1],
      [3 * 2 ** MAX_ORDER + 77, 12345],
    ] as const) {
      const a = new BuddyAllocator(total, first);
      expect(a.freeFrames).toBe(total - first);
      expect(shape(a)).toEqual(greedyShape(total, first));
      a.audit();
    }
    const a = new BuddyAllocator(1000, 3);
    expect(a.isFree(asMfn(2))).toBe(false);
    expect(a.isFree(asMfn(3))).toBe(true);
    // 1000 frames from 3: the largest aligned blocks are 256..511 and 512..767.
    expect(a.maxOrder).toBe(8);
    // Everything out and back in returns to the carve.
    const got: Mfn[] = [];
    for (let m = a.alloc(0); m !== INVALID_MFN; m = a.alloc(0)) got.push(m);
    expect(got.length).toBe(997);
    expect(new Set(got).size).toBe(997);
    expect(Math.min(...got)).toBe(3);
    for (const m of got) a.free(m, 0);
    expect(shape(a)).toEqual(greedyShape(1000, 3));
    expect(a.alloc(9)).toBe(INVALID_MFN);
    expect(new Set([a.alloc(8), a.alloc(8)])).toEqual(new Set([256, 512]));
    expect(a.alloc(8)).toBe(INVALID_MFN);
    a.audit();
  });

  it('returns INVALID_MFN when no block is large enough', () => {
    const a = new BuddyAllocator(12);
    expect(a.maxOrder).toBe(3);
    expect(a.alloc(4)).toBe(INVALID_MFN);
    expect(a.alloc(3)).toBe(0);
    expect(a.alloc(3)).toBe(INVALID_MFN);
    expect(a.alloc(2)).toBe(8);
    expect(a.alloc(0)).toBe(INVALID_MFN);
    expect(a.freeFrames).toBe(0);
    const none = new BuddyAllocator(5, 5);
    expect(none.freeFrames).toBe(0);
    expect(none.alloc(0)).toBe(INVALID_MFN);
  });

  it('refuses orders outside 0..MAX_ORDER with EINVAL', () => {
    const a = new BuddyAllocator(64);
    for (const order of [-1, 1.5, MAX_ORDER + 1, Number.NaN]) {
      expect(() => a.alloc(order)).toThrow(HypervisorError);
    }
    try {
      a.alloc(MAX_ORDER + 1);
    } catch (e) {
      expect((e as HypervisorError).errnoName).toBe('EINVAL');
    }
    expect(a.freeFrames).toBe(64);
  });

  it('frees part of an allocated block, keeping the rest allocated', () => {
    const a = new BuddyAllocator(64);
    const sp = a.alloc(3);
    a.free(asMfn(sp + 5), 0);
    expect(a.isFree(asMfn(sp + 5))).toBe(true);
    expect(a.isFree(asMfn(sp + 4))).toBe(false);
    a.audit();
    // The rest is now blocks of order 2 (0..3), 0 (4) and 1 (6..7).
    expect(() => a.free(sp, 3)).toThrow(/allocated with order 2/);
    a.free(sp, 2);
    a.free(asMfn(sp + 6), 1);
    a.free(asMfn(sp + 4), 0);
    expect(a.freeFrames).toBe(64);
    expect(shape(a)[6]).toBe(1);
    a.audit();
  });

  it('treats a double free, a wrong order, a misaligned or unmanaged frame as a broken invariant', () => {
    const a = new BuddyAllocator(64, 4);
    const m = a.alloc(0);
    const n = a.alloc(0);
    expect(m).toBe(4);
    expect(n).toBe(5);
    expect(() => a.free(m, 1)).toThrow(/allocated with order 0/);
    a.free(m, 0);
    expect(() => a.free(m, 0)).toThrow(/frame 4 is already free/);
    expect(() => a.free(asMfn(9), 0)).toThrow(/already free/);
    expect(() => a.free(asMfn(2), 0)).toThrow(/frames below 4 are not managed/);
    expect(() => a.free(asMfn(6), 2)).toThrow(/multiple of 4/);
    expect(() => a.free(n, -1)).toThrow(InvariantError);
    const big = a.alloc(4);
    expect(() => a.free(asMfn(big + 1), 0)).not.toThrow();
    expect(() => a.free(asMfn(big + 2), 2)).toThrow(/multiple of 4/);
    expect(() => a.free(asMfn(64), 0)).toThrow(RangeError);
    expect(() => a.isFree(asMfn(-1))).toThrow(RangeError);
    a.audit();
  });

  it('reports the bytes of its typed arrays', () => {
    const a = new BuddyAllocator(1 << 16);
    const perFrame = a.metadataBytes() / (1 << 16);
    expect(perFrame).toBeGreaterThan(9);
    expect(perFrame).toBeLessThan(9.2);
  });

  it('matches a model under random alloc/free sequences and returns to its carve', () => {
    type Op = { kind: 'alloc'; order: number } | { kind: 'free'; pick: number; part: boolean };
    const op = fc.oneof(
      fc.record({ kind: fc.constant('alloc' as const), order: fc.nat({ max: 6 }) }),
      fc.record({ kind: fc.constant('free' as const), pick: fc.nat(), part: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.nat({ max: 40 }), fc.array(op, { maxLength: 120 }), (total, f, ops: Op[]) => {
        const first = Math.min(f, total);
        const a = new BuddyAllocator(total, first);
        const initial = shape(a);
        const used = new Uint8Array(total);
        const blocks: [number, number][] = [];
        let usedCount = 0;
        const fullyFree = (s: number, k: number): boolean => {
          for (let i = s; i < s + 2 ** k; i++) if (used[i] || i < first) return false;
          return true;
        };
        for (const o of ops) {
          if (o.kind === 'alloc') {
            const mfn = a.alloc(o.order);
            if (mfn === INVALID_MFN) {
              // Full coalescing: failure only when no aligned block of that order is free.
              for (let s = 0; s + 2 ** o.order <= total; s += 2 ** o.order) {
                if (o.order <= a.maxOrder) expect(fullyFree(s, o.order)).toBe(false);
              }
              continue;
            }
            expect(mfn % 2 ** o.order).toBe(0);
            expect(mfn >= first && mfn + 2 ** o.order <= total).toBe(true);
            expect(fullyFree(mfn, o.order)).toBe(true);
            for (let i = mfn; i < mfn + 2 ** o.order; i++) used[i] = 1;
            usedCount += 2 ** o.order;
            blocks.push([mfn, o.order]);
          } else if (blocks.length > 0) {
            const idx = o.pick % blocks.length;
            const [mfn, k] = blocks[idx]!;
            blocks.splice(idx, 1);
            if (o.part && k > 0) {
              // Free the whole block as its 2^k single frames, from the top down.
              for (let i = 2 ** k - 1; i >= 0; i--) a.free(asMfn(mfn + i), 0);
            } else {
              a.free(asMfn(mfn), k);
            }
            for (let i = mfn; i < mfn + 2 ** k; i++) used[i] = 0;
            usedCount -= 2 ** k;
          }
          expect(a.freeFrames).toBe(total - first - usedCount);
        }
        a.audit();
        for (let i = 0; i < total; i++) expect(a.isFree(asMfn(i))).toBe(i >= first && !used[i]);
        for (const [mfn, k] of blocks) a.free(asMfn(mfn), k);
        expect(a.freeFrames).toBe(total - first);
        expect(shape(a)).toEqual(initial);
        a.audit();
        if (total > first) expect(a.alloc(a.maxOrder)).not.toBe(INVALID_MFN);
      }),
      { seed: 20240611, numRuns: 300 },
    );
  });
});
