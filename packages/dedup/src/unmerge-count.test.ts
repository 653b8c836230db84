import { HypervisorError, type FrameTable } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { UnmergeCount } from './unmerge-count.js';

/** A frame table that answers only refcount and freeFrames. */
function frames(refcounts: Record<number, number>, free: number): FrameTable {
  return { refcount: (m: number) => refcounts[m] ?? 0, freeFrames: free } as unknown as FrameTable;
}

describe('UnmergeCount', () => {
  it('counts a frame per page, but none for the last sharer of a frame whose mappings are all unmerged', () => {
    const table = frames({ 7: 3, 4: 3, 9: 1 }, 0);
    const c = new UnmergeCount(8);
    // Frame 7: all 3 mappings (2 frames); frame 4: 2 of 3 (2 frames); frame 9: its only mapping (0); 2 zero pages (2).
    for (const m of [7, 4, 7, 9, 4, 7]) c.addShared(m);
    c.addZero();
    c.addZero();
    expect(c.frames(table)).toBe(6);
    expect(new UnmergeCount(0).frames(table)).toBe(0);
  });

  it('refuses with ENOMEM naming the frames needed and free, and passes when they suffice', () => {
    const c = new UnmergeCount(2);
    c.addShared(5);
    c.addZero();
    expect(() => c.check('op_x', { frames: frames({ 5: 2 }, 1) })).toThrow(HypervisorError);
    expect(() => c.check('op_x', { frames: frames({ 5: 2 }, 1) })).toThrow('op_x: ENOMEM: 2 frames needed to unmerge, 1 free');
    expect(() => c.check('op_x', { frames: frames({ 5: 2 }, 2) })).not.toThrow();
  });

  it('asks a host that pages out to make room, and refuses when it cannot', () => {
    const c = new UnmergeCount(2);
    c.addShared(5);
    c.addZero();
    const asked: number[] = [];
    const host = (room: boolean) => ({ frames: frames({ 5: 2 }, 1), ensureFree: (n: number) => (asked.push(n), room) });
    expect(() => c.check('op_x', host(true))).not.toThrow();
    expect(asked).toEqual([2]);
    expect(() => c.check('op_x', host(false))).toThrow('op_x: ENOMEM: 2 frames needed to unmerge, 1 free and no more could be paged out');
    expect(() => c.check('op_x', { frames: frames({ 5: 2 }, 2), ensureFree: () => false })).not.toThrow(); // enough free: not asked
  });
});
