import { describe, expect, it } from 'vitest';
import { createPart, HypervisorError, INVALID_MFN, InvariantError, MAX_ORDER, PluginError, pluginProblems } from '@pagevisor/types';
import plugin, { BitmapAllocator } from './index.mjs';

describe('bitmap allocator', () => {
  it('is an allocator plugin over the machine frames that takes no options', () => {
    expect(pluginProblems(plugin, 'allocator')).toEqual([]);
    const context = { frames: 100, numaNodes: 1, seed: 1, hashPage: () => 0, baseDir: '.' };
    const a = createPart(plugin, './index.mjs', {}, context);
    expect([a.name, a.totalFrames, a.freeFrames]).toEqual(['bitmap', 100, 100]);
    let refused;
    try {
      createPart(plugin, './index.mjs', { search: 'first-fit' }, context);
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(PluginError);
    expect(refused.issues).toEqual([{ path: 'search', message: 'the bitmap allocator takes no options' }]);
    expect(() => new BitmapAllocator(0)).toThrow(RangeError);
  });

  it('hands out single frames next-fit: on from the last one, wrapping around', () => {
    const a = new BitmapAllocator(40);
    expect([a.alloc(0), a.alloc(0), a.alloc(0)]).toEqual([0, 1, 2]);
    a.free(0, 0);
    expect(a.alloc(0)).toBe(3); // not 0: the search goes on from the cursor
    for (let m = 4; m < 40; m++) expect(a.alloc(0)).toBe(m);
    expect(a.alloc(0)).toBe(0); // wrapped around to the one free frame
    expect([a.freeFrames, a.alloc(0)]).toEqual([0, INVALID_MFN]);
    a.free(17, 0);
    a.free(5, 0);
    expect([a.alloc(0), a.alloc(0)]).toEqual([5, 17]); // cursor was at 1: 5 comes first, then 17
    expect(a.audit()).toEqual([]);
  });

  it('hands out aligned runs for higher orders, the lowest first, inside a word and across words', () => {
    const a = new BitmapAllocator(256);
    a.alloc(0); // frame 0
    expect(a.alloc(1)).toBe(2);
    expect(a.alloc(2)).toBe(4);
    expect(a.alloc(3)).toBe(8);
    expect(a.alloc(4)).toBe(16);
    expect(a.alloc(5)).toBe(32);
    expect(a.alloc(6)).toBe(64);
    expect(a.alloc(6)).toBe(128);
    expect(a.alloc(7)).toBe(INVALID_MFN); // 128..255 is not free whole
    expect(a.alloc(1)).toBe(192);
    expect(a.alloc(8)).toBe(INVALID_MFN);
    expect(a.audit()).toEqual([]);
    for (let m = 0; m < 256; m++) expect(a.isFree(m)).toBe(m === 1 || (m >= 194 && m < 256));
  });

  it('never hands out frames past the machine end, whatever the order', () => {
    const a = new BitmapAllocator(37); // the last word holds 5 frames
    expect(a.maxOrder).toBe(5);
    expect(a.alloc(5)).toBe(0);
    expect(a.alloc(5)).toBe(INVALID_MFN);
    expect(a.alloc(2)).toBe(32);
    expect(a.alloc(1)).toBe(INVALID_MFN); // 36 alone is left
    expect([a.alloc(0), a.alloc(0), a.freeFrames]).toEqual([36, INVALID_MFN, 0]);
    expect(a.alloc(MAX_ORDER)).toBe(INVALID_MFN);
    expect(a.audit()).toEqual([]);
  });

  it('frees blocks as allocated or aligned parts of them, and catches wrong frees', () => {
    const a = new BitmapAllocator(64);
    const big = a.alloc(3); // 0..7
    a.free(big + 2, 1); // an aligned part: 2, 3
    expect([a.isFree(2), a.isFree(3), a.isFree(4), a.freeFrames]).toEqual([true, true, false, 58]);
    a.free(big + 4, 2);
    a.free(big, 0);
    a.free(big + 1, 0);
    expect(a.freeFrames).toBe(64);
    expect(() => a.free(big, 0)).toThrow(/already free/);
    const one = a.alloc(0);
    const two = a.alloc(0);
    expect(() => a.free(one, 1)).toThrow(InvariantError); // two single frames are not a block of order 1
    expect(() => a.free(1, 1)).toThrow(/multiple of 2/);
    expect(() => a.free(60, 3)).toThrow(/multiple of 8/);
    expect(() => a.free(56, 4)).toThrow(/multiple of 16/);
    expect(() => a.free(64, 0)).toThrow(RangeError);
    expect(() => a.free(one, -1)).toThrow(InvariantError);
    expect(() => a.isFree(-1)).toThrow(RangeError);
    expect(() => a.alloc(MAX_ORDER + 1)).toThrow(HypervisorError);
    expect(() => a.alloc(0.5)).toThrow(HypervisorError);
    a.free(two, 0);
    a.free(one, 0);
    expect([a.freeFrames, a.audit()]).toEqual([64, []]);
  });

  it('agrees with a model of allocated frames under random allocs and frees', () => {
    const frames = 1000;
    const a = new BitmapAllocator(frames);
    const owner = new Int32Array(frames).fill(-1); // model: block id of each allocated frame
    const blocks = [];
    let x = 99;
    const rand = (n) => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x % n;
    };
    for (let i = 0; i < 20_000; i++) {
      if (rand(2) === 0 || blocks.length === 0) {
        const order = rand(3) === 0 ? rand(7) : 0;
        const mfn = a.alloc(order);
        const size = 2 ** order;
        if (mfn === INVALID_MFN) {
          // None may be free: check that no aligned run of the model is free.
          let anyRunFree = false;
          for (let s = 0; s + size <= frames && !anyRunFree; s += size) anyRunFree = owner.subarray(s, s + size).every((o) => o === -1);
          expect(anyRunFree).toBe(false);
          continue;
        }
        expect(mfn % size).toBe(0);
        for (let m = mfn; m < mfn + size; m++) {
          expect(owner[m]).toBe(-1);
          owner[m] = i;
        }
        blocks.push([mfn, order]);
      } else {
        const [mfn, order] = blocks.splice(rand(blocks.length), 1)[0];
        a.free(mfn, order);
        owner.fill(-1, mfn, mfn + 2 ** order);
      }
      expect(a.freeFrames).toBe(owner.reduce((n, o) => n + (o === -1 ? 1 : 0), 0));
      if (i % 2000 === 0) {
        for (let m = 0; m < frames; m++) expect(a.isFree(m)).toBe(owner[m] === -1);
        expect(a.audit()).toEqual([]);
      }
    }
    expect(a.metadataBytes()).toBe(Math.ceil(frames / 32) * 4 + frames);
  });
});
