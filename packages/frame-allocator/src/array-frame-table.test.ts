import { describe, expect, it } from 'vitest';
import {
  asDomId,
  asGfn,
  asMfn,
  DOMID_COW,
  DOMID_INVALID,
  DOMID_XEN,
  FrameFlags,
  INVALID_GFN,
  INVALID_MFN,
  InvariantError,
} from '@pagevisor/types';
import { ArrayFrameTable } from './array-frame-table.js';
import { BuddyAllocator } from './buddy-allocator.js';
import { FreeListAllocator } from './free-list-allocator.js';

const D1 = asDomId(1);
const D2 = asDomId(2);

describe('ArrayFrameTable', () => {
  it('follows a frame from free to private to shared and back to free', () => {
    const t = new ArrayFrameTable(new BuddyAllocator(16));
    expect(t.totalFrames).toBe(16);
    expect(t.freeFrames).toBe(16);
    expect(t.owner(asMfn(0))).toBe(DOMID_INVALID);
    expect(t.gfn(asMfn(0))).toBe(INVALID_GFN);

    const m = t.allocFrame(D1, asGfn(42));
    expect(t.isFree(m)).toBe(false);
    expect(t.freeFrames).toBe(15);
    expect(t.owner(m)).toBe(D1);
    expect(t.gfn(m)).toBe(42);
    expect(t.refcount(m)).toBe(1);
    expect(t.flags(m)).toBe(0);

    // Shared copy-on-write by a second mapper.
    t.setOwner(m, DOMID_COW, INVALID_GFN);
    t.setFlags(m, FrameFlags.shared);
    expect(t.addRef(m, 1)).toBe(2);
    expect(t.owner(m)).toBe(DOMID_COW);
    expect(t.gfn(m)).toBe(INVALID_GFN);
    expect(t.flags(m)).toBe(FrameFlags.shared);
    expect(t.addRef(m, -1)).toBe(1);

    t.freeFrame(m);
    expect(t.isFree(m)).toBe(true);
    expect(t.freeFrames).toBe(16);
    expect([t.owner(m), t.gfn(m), t.refcount(m), t.flags(m)]).toEqual([DOMID_INVALID, INVALID_GFN, 0, 0]);
    // The next frame handed out starts clean.
    const again = t.allocFrame(D2, asGfn(7));
    expect([t.owner(again), t.gfn(again), t.refcount(again), t.flags(again)]).toEqual([D2, 7, 1, 0]);
  });

  it('returns INVALID_MFN when the allocator is out of frames', () => {
    const t = new ArrayFrameTable(new FreeListAllocator(2));
    expect(t.allocFrame(D1, asGfn(0))).not.toBe(INVALID_MFN);
    expect(t.allocFrame(D1, asGfn(1))).not.toBe(INVALID_MFN);
    expect(t.allocFrame(D1, asGfn(2))).toBe(INVALID_MFN);
    expect(t.freeFrames).toBe(0);
  });

  it('reserves frames the allocator does not manage for the hypervisor', () => {
    const t = new ArrayFrameTable(new BuddyAllocator(8, 2));
    expect(t.freeFrames).toBe(6);
    expect(t.owner(asMfn(1))).toBe(DOMID_XEN);
    expect(t.refcount(asMfn(1))).toBe(0);
    expect(t.owner(asMfn(2))).toBe(DOMID_INVALID);
    expect(t.allocFrame(D1, asGfn(0))).toBe(2);
  });

  it('refuses to free a free frame or the zero frame, or to count references of a free frame', () => {
    const t = new ArrayFrameTable(new BuddyAllocator(8));
    expect(() => t.freeFrame(asMfn(3))).toThrow(/already free/);
    expect(() => t.addRef(asMfn(3), 1)).toThrow(/frame 3 is free/);
    expect(() => t.setFlags(asMfn(3), FrameFlags.shared)).toThrow(InvariantError);
    expect(() => t.setOwner(asMfn(3), D1, asGfn(0))).toThrow(InvariantError);
    const zero = t.allocFrame(DOMID_XEN, INVALID_GFN);
    t.setFlags(zero, FrameFlags.shared | FrameFlags.zero);
    expect(() => t.freeFrame(zero)).toThrow(/zero frame/);
    expect(t.isFree(zero)).toBe(false);
    const m = t.allocFrame(D1, asGfn(1));
    t.freeFrame(m);
    expect(() => t.freeFrame(m)).toThrow(InvariantError);
  });

  it('keeps reference counts in 0..2^32-1', () => {
    const t = new ArrayFrameTable(new FreeListAllocator(4));
    const m = t.allocFrame(D1, asGfn(0));
    expect(() => t.addRef(m, -2)).toThrow(/refcount 1 \+ -2/);
    expect(t.refcount(m)).toBe(1);
    expect(t.addRef(m, 2 ** 32 - 2)).toBe(2 ** 32 - 1);
    expect(() => t.addRef(m, 1)).toThrow(InvariantError);
    expect(() => t.addRef(m, 0.5)).toThrow(InvariantError);
  });

  it('rejects out-of-range frames, owners, gfns and flags', () => {
    const t = new ArrayFrameTable(new FreeListAllocator(4));
    const m = t.allocFrame(D1, asGfn(0));
    expect(() => t.owner(asMfn(4))).toThrow(RangeError);
    expect(() => t.gfn(asMfn(-1))).toThrow(RangeError);
    expect(() => t.refcount(asMfn(1.5))).toThrow(RangeError);
    expect(() => t.flags(asMfn(99))).toThrow(RangeError);
    expect(() => t.freeFrame(asMfn(4))).toThrow(RangeError);
    expect(() => t.setFlags(m, 256)).toThrow(RangeError);
    expect(() => t.setOwner(m, asDomId(0x10000), asGfn(0))).toThrow(RangeError);
    expect(() => t.setOwner(m, DOMID_INVALID, asGfn(0))).toThrow(InvariantError);
    expect(() => t.setOwner(m, D1, asGfn(-2))).toThrow(RangeError);
    expect(() => t.setOwner(m, D1, asGfn(2 ** 31))).toThrow(RangeError);
    expect(() => t.allocFrame(DOMID_INVALID, asGfn(0))).toThrow(InvariantError);
    expect(() => t.allocFrame(D1, asGfn(1.5))).toThrow(RangeError);
    // Refused calls changed nothing.
    expect([t.owner(m), t.gfn(m), t.flags(m), t.freeFrames]).toEqual([D1, 0, 0, 3]);
  });

  it('accounts tot_pages against max_pages per domain', () => {
    const t = new ArrayFrameTable(new FreeListAllocator(4));
    expect(t.hasDomain(D1)).toBe(false);
    t.addDomain(D1, 3);
    t.addDomain(DOMID_COW, Number.MAX_SAFE_INTEGER);
    expect(t.hasDomain(D1)).toBe(true);
    expect([t.totPages(D1), t.maxPages(D1)]).toEqual([0, 3]);
    t.addTotPages(D1, 3);
    expect(() => t.addTotPages(D1, 1)).toThrow(/would exceed max_pages 3/);
    expect(t.totPages(D1)).toBe(3);
    // A lowered limit lets only frees through.
    t.setMaxPages(D1, 1);
    expect(t.maxPages(D1)).toBe(1);
    t.addTotPages(D1, -1);
    expect(() => t.addTotPages(D1, 1)).toThrow(InvariantError);
    expect(() => t.addTotPages(D1, -3)).toThrow(/not a page count/);
    expect(() => t.removeDomain(D1)).toThrow(/still holds 2 pages/);
    t.addTotPages(D1, -2);
    t.removeDomain(D1);
    expect(t.hasDomain(D1)).toBe(false);
    expect(t.hasDomain(DOMID_COW)).toBe(true);
  });

  it('treats accounting of unknown or duplicate domains as a broken invariant', () => {
    const t = new ArrayFrameTable(new FreeListAllocator(4));
    for (const call of [
      () => t.totPages(D2),
      () => t.maxPages(D2),
      () => t.setMaxPages(D2, 1),
      () => t.addTotPages(D2, 1),
      () => t.removeDomain(D2),
    ]) {
      expect(call).toThrow(/domain 2 is not accounted/);
    }
    t.addDomain(D2, 1);
    expect(() => t.addDomain(D2, 1)).toThrow(/accounted already/);
    expect(() => t.addDomain(D1, -1)).toThrow(RangeError);
    expect(() => t.addDomain(DOMID_INVALID, 1)).toThrow(RangeError);
    expect(() => t.setMaxPages(D2, 1.5)).toThrow(RangeError);
    expect(t.maxPages(D2)).toBe(1);
  });

  it('reports the bytes of its typed arrays and its allocator', () => {
    const alloc = new FreeListAllocator(1024);
    const t = new ArrayFrameTable(alloc);
    expect(t.metadataBytes()).toBe(1024 * 11 + alloc.metadataBytes());
  });

  it("keeps m2p and refcount in a buddy's free-list links: 3 bytes a frame of its own, free frames read as free", () => {
    const alloc = new BuddyAllocator(1024);
    const t = new ArrayFrameTable(alloc);
    expect(t.metadataBytes()).toBe(1024 * 3 + alloc.metadataBytes());
    // Churn that splits and merges blocks, so the links of frames are written while free.
    const held: number[] = [];
    for (let i = 0; i < 300; i++) held.push(t.allocFrame(D1, asGfn(i)));
    for (let i = 0; i < 300; i += 2) t.freeFrame(asMfn(held[i]!));
    for (let i = 1; i < 300; i += 2) {
      const mfn = asMfn(held[i]!);
      expect([t.owner(mfn), t.gfn(mfn), t.refcount(mfn)]).toEqual([D1, i, 1]);
      expect(t.addRef(mfn, 2)).toBe(3);
    }
    for (let mfn = 0; mfn < 1024; mfn++) {
      if (!t.isFree(asMfn(mfn))) continue;
      expect([t.owner(asMfn(mfn)), t.gfn(asMfn(mfn)), t.refcount(asMfn(mfn)), t.flags(asMfn(mfn))]).toEqual([DOMID_INVALID, INVALID_GFN, 0, 0]);
    }
    const again = t.allocFrame(D2, asGfn(9));
    expect([t.gfn(again), t.refcount(again)]).toEqual([9, 1]);
    expect(() => alloc.audit()).not.toThrow();
    for (let i = 1; i < 300; i += 2) t.freeFrame(asMfn(held[i]!));
    t.freeFrame(again);
    expect(t.freeFrames).toBe(1024);
    expect(() => alloc.audit()).not.toThrow();
    // A second table over the same buddy cannot share the links: it has words of its own.
    expect(new ArrayFrameTable(alloc).metadataBytes()).toBe(1024 * 11 + alloc.metadataBytes());
  });

  it("marks frames a buddy never manages as the hypervisor's, with m2p INVALID_GFN and refcount 0", () => {
    const alloc = new BuddyAllocator(64, 8);
    const t = new ArrayFrameTable(alloc);
    for (let mfn = 0; mfn < 8; mfn++) {
      expect([t.owner(asMfn(mfn)), t.gfn(asMfn(mfn)), t.refcount(asMfn(mfn))]).toEqual([DOMID_XEN, INVALID_GFN, 0]);
    }
  });

  it('reserves the frames any allocator already holds, found in its bitmap or asked frame by frame', () => {
    const held = [0, 5, 31, 32, 33, 63, 64, 70];
    const free = new FreeListAllocator(71);
    const buddy = new BuddyAllocator(71);
    for (const a of [free, buddy]) {
      const got: number[] = [];
      for (let i = 0; i <= 70; i++) got.push(a.alloc(0));
      expect(got.sort((x, y) => x - y)).toEqual(Array.from({ length: 71 }, (_, i) => i));
      for (let mfn = 0; mfn <= 70; mfn++) if (!held.includes(mfn)) a.free(asMfn(mfn), 0);
    }
    // An allocator of no built-in class: the table asks isFree of each frame.
    const plugin = { name: 'plugin', totalFrames: 71, freeFrames: 71 - held.length, alloc: () => INVALID_MFN, free: () => {}, isFree: (m: number) => !held.includes(m) };
    for (const a of [free, buddy, plugin]) {
      const t = new ArrayFrameTable(a);
      for (let mfn = 0; mfn <= 70; mfn++) {
        const want = held.includes(mfn) ? [DOMID_XEN, INVALID_GFN, 0, 0] : [DOMID_INVALID, INVALID_GFN, 0, 0];
        expect([t.owner(asMfn(mfn)), t.gfn(asMfn(mfn)), t.refcount(asMfn(mfn)), t.flags(asMfn(mfn))], `${a.name} frame ${mfn}`).toEqual(want);
      }
    }
  });

  it('hands out frames never handed out from a free list of frames that reads as zeros, lowest first after those freed', () => {
    const a = new FreeListAllocator(6);
    const t = new ArrayFrameTable(a);
    expect([t.allocFrame(D1, asGfn(10)), t.allocFrame(D1, asGfn(11)), t.allocFrame(D1, asGfn(12))]).toEqual([0, 1, 2]);
    t.freeFrame(asMfn(1));
    t.freeFrame(asMfn(0));
    expect([t.owner(asMfn(0)), t.gfn(asMfn(0)), t.gfn(asMfn(2)), t.gfn(asMfn(5)), a.freeFrames]).toEqual([DOMID_INVALID, INVALID_GFN, 12, INVALID_GFN, 5]);
    expect([0, 1, 2, 3, 4, 5].map((i) => t.allocFrame(D2, asGfn(i)))).toEqual([0, 1, 3, 4, 5, INVALID_MFN]);
    expect(() => a.free(asMfn(2), 0)).not.toThrow();
    expect(() => a.free(asMfn(2), 0)).toThrow(/already free/);
  });

  it('builds a table of 2^30 frames (4 TiB) cheaply and keeps frame 2^30 - 1 like any other', () => {
    const before = process.memoryUsage().rss;
    const started = performance.now();
    const frames = 2 ** 30;
    const buddy = new BuddyAllocator(frames);
    const t = new ArrayFrameTable(buddy);
    expect([t.totalFrames, t.freeFrames, t.owner(asMfn(frames - 1)), t.gfn(asMfn(frames - 1))]).toEqual([frames, frames, DOMID_INVALID, INVALID_GFN]);
    // 12.1 bytes a frame of arrays, taken as zeros: only the free bitmap (128 MiB) and the
    // carve's block heads are written.
    expect(t.metadataBytes()).toBeGreaterThan(12 * frames);
    expect(process.memoryUsage().rss - before).toBeLessThan(2 ** 29);
    // The buddy hands out low frames first: take every block, give back the machine's last frame.
    for (let k = 0; k < frames >>> 18; k++) expect(buddy.alloc(18)).toBe(k * 2 ** 18);
    buddy.free(asMfn(frames - 1), 0);
    const last = t.allocFrame(D1, asGfn(2 ** 30 - 1));
    expect(last).toBe(frames - 1);
    t.setFlags(last, FrameFlags.shared);
    t.setOwner(last, DOMID_COW, asGfn(2 ** 29));
    expect(t.addRef(last, 2)).toBe(3);
    expect([t.owner(last), t.gfn(last), t.refcount(last), t.flags(last), t.sharedFrameCounts()]).toEqual([
      DOMID_COW,
      2 ** 29,
      3,
      FrameFlags.shared,
      { mapped: 1, shared: 1, sharing: 2 },
    ]);
    expect(() => t.owner(asMfn(frames))).toThrow(RangeError);
    t.setFlags(last, 0);
    t.freeFrame(last);
    expect([t.isFree(last), t.owner(last), t.gfn(last), t.refcount(last), t.freeFrames]).toEqual([true, DOMID_INVALID, INVALID_GFN, 0, 1]);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('builds a table of 2^30 frames over a free list as cheaply', () => {
    const before = process.memoryUsage().rss;
    const t = new ArrayFrameTable(new FreeListAllocator(2 ** 30));
    expect([t.freeFrames, t.owner(asMfn(2 ** 30 - 1)), t.allocFrame(D1, asGfn(7))]).toEqual([2 ** 30, DOMID_INVALID, 0]);
    expect(process.memoryUsage().rss - before).toBeLessThan(2 ** 28);
  });
});

describe('ArrayFrameTable.sharedFrameCounts', () => {
  it('keeps, as refcounts and flags change, what a walk over the shared frames would count', () => {
    for (const allocator of [new BuddyAllocator(64), new FreeListAllocator(64)]) {
      const t = new ArrayFrameTable(allocator);
      const walk = () => {
        const c = { mapped: 0, shared: 0, sharing: 0 };
        for (let m = 0; m < t.totalFrames; m++) {
          if (t.isFree(asMfn(m)) || (t.flags(asMfn(m)) & (FrameFlags.shared | FrameFlags.zero)) !== FrameFlags.shared) continue;
          const refs = t.refcount(asMfn(m));
          if (refs > 0) {
            c.mapped++;
            c.sharing += refs - 1;
          }
          if (refs > 1) c.shared++;
        }
        return c;
      };
      const d = asDomId(1);
      const a = t.allocFrame(d, asGfn(0));
      const b = t.allocFrame(d, asGfn(1));
      expect(t.sharedFrameCounts()).toEqual({ mapped: 0, shared: 0, sharing: 0 });
      t.setFlags(a, FrameFlags.shared);
      t.addRef(a, 2);
      t.setFlags(b, FrameFlags.shared);
      expect(t.sharedFrameCounts()).toEqual({ mapped: 2, shared: 1, sharing: 2 });
      t.addRef(b, -1);
      expect(t.sharedFrameCounts()).toEqual(walk());
      t.setFlags(a, 0);
      expect(t.sharedFrameCounts()).toEqual({ mapped: 0, shared: 0, sharing: 0 });
      // A frame flagged zero (the zero frame) is not counted, shared or not.
      t.setFlags(a, FrameFlags.shared | FrameFlags.zero);
      t.addRef(a, 5);
      expect(t.sharedFrameCounts()).toEqual({ mapped: 0, shared: 0, sharing: 0 });
      t.setFlags(a, FrameFlags.shared);
      t.freeFrame(a);
      t.freeFrame(b);
      expect(t.sharedFrameCounts()).toEqual({ mapped: 0, shared: 0, sharing: 0 });
      expect(walk()).toEqual(t.sharedFrameCounts());
    }
  });
});
