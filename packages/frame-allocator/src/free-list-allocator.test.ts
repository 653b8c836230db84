import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asMfn, HypervisorError, INVALID_MFN, InvariantError, type Mfn } from '@pagevisor/types';
import { FreeListAllocator } from './free-list-allocator.js';

describe('FreeListAllocator', () => {
  it('hands out every frame once, lowest first, then INVALID_MFN', () => {
    const a = new FreeListAllocator(37);
    expect(a.name).toBe('free-list');
    expect(a.freeFrames).toBe(37);
    const got: Mfn[] = [];
    for (let m = a.alloc(0); m !== INVALID_MFN; m = a.alloc(0)) got.push(m);
    expect(got).toEqual(Array.from({ length: 37 }, (_, i) => i));
    expect(a.freeFrames).toBe(0);
    expect(a.isFree(asMfn(36))).toBe(false);
    a.free(asMfn(17), 0);
    expect(a.isFree(asMfn(17))).toBe(true);
    expect(a.freeFrames).toBe(1);
    expect(a.alloc(0)).toBe(17);
  });

  it('refuses order > 0 with EINVAL and changes nothing', () => {
    const a = new FreeListAllocator(8);
    expect(() => a.alloc(1)).toThrow(HypervisorError);
    expect(() => a.alloc(-1)).toThrow(/order -1/);
    try {
      a.alloc(3);
    } catch (e) {
      expect((e as HypervisorError).errnoName).toBe('EINVAL');
      expect((e as HypervisorError).detail).toMatch(/single frames only/);
    }
    expect(a.freeFrames).toBe(8);
  });

  it('treats a double free or a wrong order as a broken invariant', () => {
    const a = new FreeListAllocator(8);
    const m = a.alloc(0);
    expect(() => a.free(m, 1)).toThrow(InvariantError);
    a.free(m, 0);
    expect(() => a.free(m, 0)).toThrow(/already free/);
    expect(() => a.free(asMfn(5), 0)).toThrow(InvariantError);
    expect(() => a.free(asMfn(8), 0)).toThrow(RangeError);
    expect(() => a.isFree(asMfn(8))).toThrow(RangeError);
    expect(a.freeFrames).toBe(8);
  });

  it('reports the bytes of its typed arrays', () => {
    expect(new FreeListAllocator(1024).metadataBytes()).toBe(1024 * 4 + 1024 / 8);
  });

  it('matches a model under random alloc/free sequences', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.array(fc.option(fc.nat()), { maxLength: 200 }), (total, ops) => {
        const a = new FreeListAllocator(total);
        const held: number[] = [];
        for (const pick of ops) {
          if (pick === null) {
            const m = a.alloc(0);
            if (m === INVALID_MFN) {
              expect(held.length).toBe(total);
              continue;
            }
            expect(held.includes(m)).toBe(false);
            held.push(m);
          } else if (held.length > 0) {
            const [m] = held.splice(pick % held.length, 1);
            a.free(asMfn(m!), 0);
          }
          expect(a.freeFrames).toBe(total - held.length);
        }
        for (let i = 0; i < total; i++) expect(a.isFree(asMfn(i))).toBe(!held.includes(i));
      }),
      { seed: 7, numRuns: 200 },
    );
  });
});
