import { BuddyAllocator, FreeListAllocator } from '@pagevisor/frame-allocator';
import { INVALID_MFN, type FrameAllocator, type Mfn } from '@pagevisor/types';
import { measurement, type Measurement } from '../measurement.js';
import { timeCycle } from '../measure.js';
import type { SuiteContext } from '../suite-context.js';

/** Order of the large blocks measured: 2 MiB, a superpage. */
const LARGE_ORDER = 9;

/**
 * Allocates `blocks` blocks of `order` then frees them in the order allocated, timing each phase
 * (`rounds` cycles a repeat). Every allocation must succeed: the allocator has room for all of them.
 */
function allocFree(allocator: FrameAllocator, order: number, blocks: number, repeats: number, rounds: number): { alloc: number[]; free: number[] } {
  const mfns = new Int32Array(blocks);
  const [alloc, free] = timeCycle(blocks, repeats, rounds, [
    () => {
      for (let i = 0; i < blocks; i++) mfns[i] = allocator.alloc(order);
    },
    () => {
      for (let i = 0; i < blocks; i++) allocator.free(mfns[i]! as Mfn, order);
    },
  ]);
  if (mfns.includes(INVALID_MFN)) throw new Error(`frame-allocator bench: ${allocator.name} ran out of frames at order ${order}`);
  return { alloc: alloc!, free: free! };
}

/**
 * Frame allocation and free, order 0 (one 4 KiB frame) and order 9 (2 MiB), for the buddy and
 * free-list allocators. Each allocator manages twice the frames allocated, so that allocation
 * never runs dry; the blocks are freed in allocation order, so the buddy allocator merges on the way.
 */
export function benchFrameAllocator(ctx: SuiteContext): { measurements: Measurement[]; notes: string[] } {
  const blocks0 = ctx.quick ? 4096 : 65536;
  const blocks9 = ctx.quick ? 16 : 128;
  const rounds0 = ctx.quick ? 2 : 8;
  const rounds9 = ctx.quick ? 4 : 32;
  const out: Measurement[] = [];
  const add = (key: string, name: string, samples: number[]): void => {
    out.push(measurement({ suite: 'micro', group: 'frame-allocator', key, name, unit: 'ops/s', better: 'higher', samples }));
  };
  ctx.log('micro: frame-allocator');
  const buddy0 = allocFree(new BuddyAllocator(2 * blocks0), 0, blocks0, ctx.repeats, rounds0);
  add('buddy-alloc-o0', 'buddy alloc, order 0', buddy0.alloc);
  add('buddy-free-o0', 'buddy free, order 0', buddy0.free);
  const buddy9 = allocFree(new BuddyAllocator(2 * blocks9 << LARGE_ORDER), LARGE_ORDER, blocks9, ctx.repeats, rounds9);
  add('buddy-alloc-o9', 'buddy alloc, order 9 (2 MiB)', buddy9.alloc);
  add('buddy-free-o9', 'buddy free, order 9 (2 MiB)', buddy9.free);
  const list0 = allocFree(new FreeListAllocator(2 * blocks0), 0, blocks0, ctx.repeats, rounds0);
  add('freelist-alloc-o0', 'free list alloc, order 0', list0.alloc);
  add('freelist-free-o0', 'free list free, order 0', list0.free);
  return {
    measurements: out,
    notes: [
      `frame-allocator: ${blocks0} order-0 / ${blocks9} order-9 blocks per cycle, ${rounds0} / ${rounds9} cycles a repeat, on allocators of twice that many frames. The free list hands out single frames only (order > 0 is EINVAL), so it has no order-9 figures.`,
    ],
  };
}
