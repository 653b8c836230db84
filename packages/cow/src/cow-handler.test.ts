import { ArrayFrameTable, BuddyAllocator } from '@pagevisor/frame-allocator';
import { createMachineMemory } from '@pagevisor/machine';
import { ArrayP2m, type ArrayP2mTable } from '@pagevisor/p2m';
import {
  asDomId,
  asGfn,
  CowOutcome,
  DOMID_COW,
  DOMID_INVALID,
  DOMID_XEN,
  Errno,
  FrameFlags,
  HypervisorError,
  INVALID_GFN,
  INVALID_MFN,
  InvariantError,
  P2mType,
  PAGE_SIZE,
  type DedupHost,
  type DedupIndex,
  type DomId,
  type Gfn,
  type MachineMemory,
  type Mfn,
} from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { CowHandler } from './cow-handler.js';

const d1 = asDomId(1);
const d2 = asDomId(2);
const d3 = asDomId(3);
const g = asGfn;

/** A dedup index that only records what it was told to forget. */
class RecordingDedup implements DedupIndex {
  readonly name = 'recording';
  readonly inline = false;
  readonly populateZero = false;
  readonly removed: Mfn[] = [];
  readonly size = 0;
  attach(_host: DedupHost): void {}
  lookup(): Mfn {
    return INVALID_MFN;
  }
  insert(): void {}
  remove(mfn: Mfn): void {
    this.removed.push(mfn);
  }
  contains(): boolean {
    return false;
  }
  metadataBytes(): number {
    return 0;
  }
  stats(): Readonly<Record<string, number>> {
    return {};
  }
  audit(): string[] {
    return [];
  }
}

function page(fill: number): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE; i++) p[i] = (fill + i) & 0xff;
  return p;
}

function readFrame(memory: MachineMemory, mfn: Mfn): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE);
  memory.read(mfn, 0, out, 0, PAGE_SIZE);
  return out;
}

/** A 16-frame machine with the real parts, a zero frame, and domains 1..3 of 8 gfns each. */
async function machine(totalFrames = 16) {
  const memory = await createMachineMemory({ frames: totalFrames });
  const frames = new ArrayFrameTable(new BuddyAllocator(totalFrames));
  const dedup = new RecordingDedup();

  const zeroMfn = frames.allocFrame(DOMID_XEN, INVALID_GFN);
  frames.setFlags(zeroMfn, FrameFlags.shared | FrameFlags.zero);
  frames.addRef(zeroMfn, -1);
  memory.zeroFrame(zeroMfn);
  const p2m = new ArrayP2m(totalFrames, zeroMfn);

  const tables = new Map<DomId, ArrayP2mTable>();
  for (const dom of [d1, d2, d3]) tables.set(dom, p2m.createTable(dom, 8));
  const table = (dom: DomId) => tables.get(dom)!;
  const cow = new CowHandler({ frames, p2m, memory, dedup, zeroMfn });

  /** Makes a shared frame holding `content`, mapped ram_shared by every (dom, gfn) of `sharers`. */
  function share(content: Uint8Array, sharers: [DomId, number][]): Mfn {
    const mfn = frames.allocFrame(sharers[0]![0], g(sharers[0]![1]));
    memory.write(mfn, 0, content, 0, PAGE_SIZE);
    frames.setOwner(mfn, DOMID_COW, INVALID_GFN);
    frames.setFlags(mfn, FrameFlags.shared);
    frames.addRef(mfn, sharers.length - 1);
    for (const [dom, gfn] of sharers) mapShared(mfn, dom, gfn);
    return mfn;
  }

  /** Maps `dom`'s `gfn` to the zero frame. */
  function mapZero(dom: DomId, gfn: number): void {
    frames.addRef(zeroMfn, 1);
    mapShared(zeroMfn, dom, gfn);
  }

  function mapShared(mfn: Mfn, dom: DomId, gfn: number): void {
    p2m.rmap.add(mfn, dom, g(gfn));
    table(dom).set(g(gfn), mfn, P2mType.ram_shared);
  }

  /** Fills every free frame with 0xee bytes, so that allocFrame hands out dirty frames. */
  function dirtyFreeFrames(): void {
    const taken: Mfn[] = [];
    for (let m = frames.allocFrame(d3, g(0)); m !== INVALID_MFN; m = frames.allocFrame(d3, g(0))) {
      memory.write(m, 0, new Uint8Array(PAGE_SIZE).fill(0xee), 0, PAGE_SIZE);
      taken.push(m);
    }
    for (const m of taken) frames.freeFrame(m);
  }

  /** Takes every free frame (for d3), so the next allocation fails. */
  function exhaust(): Mfn[] {
    const taken: Mfn[] = [];
    for (let m = frames.allocFrame(d3, g(0)); m !== INVALID_MFN; m = frames.allocFrame(d3, g(0))) taken.push(m);
    return taken;
  }

  /** The shared/private/zero frame invariants of the common brief, plus the p2m's own audit. */
  function audit(): string[] {
    const problems = p2m.audit();
    for (let i = 0; i < totalFrames; i++) {
      const m = i as Mfn;
      const fl = frames.flags(m);
      if (frames.isFree(m)) {
        if (frames.owner(m) !== DOMID_INVALID || frames.refcount(m) !== 0 || fl !== 0) {
          problems.push(`free mfn ${m} has owner/refcount/flags`);
        }
      } else if (fl & FrameFlags.shared) {
        if (frames.refcount(m) !== p2m.rmap.count(m)) problems.push(`mfn ${m}: refcount != rmap count`);
        if (m === zeroMfn) {
          if (frames.owner(m) !== DOMID_XEN || !memory.isZeroFrame(m)) problems.push('zero frame damaged');
        } else if (frames.owner(m) !== DOMID_COW || frames.gfn(m) !== INVALID_GFN) {
          problems.push(`shared mfn ${m} owner ${frames.owner(m)} gfn ${frames.gfn(m)}`);
        }
      } else if (frames.owner(m) !== d3) {
        // d3's frames in these tests are taken by exhaust() and mapped nowhere.
        const dom = frames.owner(m);
        const gfn = frames.gfn(m);
        const t = tables.get(dom);
        if (!t || frames.refcount(m) !== 1 || t.mfn(gfn) !== m || t.type(gfn) !== P2mType.ram_rw) {
          problems.push(`private mfn ${m} not mapped ram_rw by its owner d${dom} gfn ${gfn}`);
        }
      }
    }
    return problems;
  }

  return { memory, frames, p2m, dedup, zeroMfn, cow, table, share, mapZero, dirtyFreeFrames, exhaust, audit };
}

describe('CowHandler.unshare', () => {
  it('copies: the writer gets a private copy, the other sharer still reads the old content', async () => {
    const m = await machine();
    const old = page(7);
    const shared = m.share(old, [
      [d1, 3],
      [d2, 5],
    ]);
    const free = m.frames.freeFrames;

    expect(m.cow.unshare(d1, m.table(d1), g(3), false)).toBe(CowOutcome.copied);

    const mine = m.table(d1).mfn(g(3));
    expect(mine).not.toBe(shared);
    expect(m.table(d1).type(g(3))).toBe(P2mType.ram_rw);
    expect(readFrame(m.memory, mine)).toEqual(old);
    expect([m.frames.owner(mine), m.frames.gfn(mine), m.frames.refcount(mine)]).toEqual([d1, 3, 1]);
    expect(m.frames.flags(mine)).toBe(0);
    expect(m.frames.freeFrames).toBe(free - 1);

    // The other sharer keeps the shared frame, which stays shared with one reference.
    expect([m.table(d2).mfn(g(5)), m.table(d2).type(g(5))]).toEqual([shared, P2mType.ram_shared]);
    expect(m.frames.refcount(shared)).toBe(1);
    expect(m.p2m.rmap.count(shared)).toBe(1);
    expect(m.frames.flags(shared)).toBe(FrameFlags.shared);

    // The writer's write does not reach the other sharer.
    m.memory.write(mine, 0, page(99), 0, PAGE_SIZE);
    expect(readFrame(m.memory, shared)).toEqual(old);

    expect([m.cow.copied, m.cow.kept, m.cow.zeroAllocated]).toEqual([1, 0, 0]);
    expect(m.dedup.removed).toEqual([]);
    expect(m.audit()).toEqual([]);
  });

  it('keeps: the last sharer takes the frame back without allocating or copying', async () => {
    const m = await machine();
    const content = page(3);
    const shared = m.share(content, [
      [d1, 0],
      [d2, 1],
    ]);
    m.cow.unshare(d1, m.table(d1), g(0), false);
    const free = m.frames.freeFrames;

    expect(m.cow.unshare(d2, m.table(d2), g(1), false)).toBe(CowOutcome.kept);

    expect(m.frames.freeFrames).toBe(free);
    expect([m.table(d2).mfn(g(1)), m.table(d2).type(g(1))]).toEqual([shared, P2mType.ram_rw]);
    expect([m.frames.owner(shared), m.frames.gfn(shared), m.frames.refcount(shared)]).toEqual([d2, 1, 1]);
    expect(m.frames.flags(shared)).toBe(0);
    expect(m.p2m.rmap.count(shared)).toBe(0);
    expect(m.dedup.removed).toEqual([shared]);
    expect(readFrame(m.memory, shared)).toEqual(content);
    expect([m.cow.copied, m.cow.kept, m.cow.zeroAllocated]).toEqual([1, 1, 0]);
    expect(m.audit()).toEqual([]);
  });

  it('keeps even when no frame is free', async () => {
    const m = await machine();
    const shared = m.share(page(1), [[d1, 2]]);
    m.exhaust();
    expect(m.cow.unshare(d1, m.table(d1), g(2), false)).toBe(CowOutcome.kept);
    expect(m.table(d1).mfn(g(2))).toBe(shared);
    expect(m.audit()).toEqual([]);
  });

  it('gives a zero-frame mapping a new zero-filled frame', async () => {
    const m = await machine();
    m.mapZero(d1, 4);
    m.mapZero(d2, 4);
    m.dirtyFreeFrames();
    const free = m.frames.freeFrames;

    expect(m.cow.unshare(d1, m.table(d1), g(4), false)).toBe(CowOutcome.zeroAllocated);

    const mine = m.table(d1).mfn(g(4));
    expect(mine).not.toBe(m.zeroMfn);
    expect(m.table(d1).type(g(4))).toBe(P2mType.ram_rw);
    expect(m.memory.isZeroFrame(mine)).toBe(true);
    expect([m.frames.owner(mine), m.frames.gfn(mine), m.frames.refcount(mine)]).toEqual([d1, 4, 1]);
    expect(m.frames.freeFrames).toBe(free - 1);
    expect(m.frames.refcount(m.zeroMfn)).toBe(1);
    expect(m.p2m.rmap.count(m.zeroMfn)).toBe(1);

    // The last zero-frame mapping also gets a frame: the zero frame is never handed over.
    expect(m.cow.unshare(d2, m.table(d2), g(4), false)).toBe(CowOutcome.zeroAllocated);
    expect(m.table(d2).mfn(g(4))).not.toBe(m.zeroMfn);
    expect(m.frames.refcount(m.zeroMfn)).toBe(0);
    expect(m.frames.flags(m.zeroMfn)).toBe(FrameFlags.shared | FrameFlags.zero);
    expect(m.frames.isFree(m.zeroMfn)).toBe(false);
    expect(m.dedup.removed).toEqual([]);
    expect([m.cow.copied, m.cow.kept, m.cow.zeroAllocated]).toEqual([0, 0, 2]);
    expect(m.audit()).toEqual([]);
  });

  it('skips the copy and the zero-fill when the caller overwrites the page', async () => {
    const m = await machine();
    m.share(page(5), [
      [d1, 0],
      [d2, 0],
    ]);
    m.mapZero(d1, 1);
    m.dirtyFreeFrames();
    const dirty = new Uint8Array(PAGE_SIZE).fill(0xee);

    expect(m.cow.unshare(d1, m.table(d1), g(0), true)).toBe(CowOutcome.copied);
    expect(readFrame(m.memory, m.table(d1).mfn(g(0)))).toEqual(dirty);

    expect(m.cow.unshare(d1, m.table(d1), g(1), true)).toBe(CowOutcome.zeroAllocated);
    expect(readFrame(m.memory, m.table(d1).mfn(g(1)))).toEqual(dirty);
    expect(m.audit()).toEqual([]);
  });

  it('throws ENOMEM and changes nothing when no frame is free', async () => {
    const m = await machine();
    const shared = m.share(page(9), [
      [d1, 0],
      [d2, 0],
    ]);
    m.mapZero(d1, 1);
    m.exhaust();
    expect(m.frames.freeFrames).toBe(0);

    for (const gfn of [0, 1]) {
      const before = {
        entry: [m.table(d1).mfn(g(gfn)), m.table(d1).type(g(gfn))],
        refs: [m.frames.refcount(shared), m.frames.refcount(m.zeroMfn)],
        rmap: [m.p2m.rmap.count(shared), m.p2m.rmap.count(m.zeroMfn)],
        populated: m.table(d1).populated,
      };
      let error: unknown;
      try {
        m.cow.unshare(d1, m.table(d1), g(gfn), false);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(HypervisorError);
      expect((error as HypervisorError).errno).toBe(Errno.ENOMEM);
      expect((error as HypervisorError).op).toBe('cow_fault');
      expect({
        entry: [m.table(d1).mfn(g(gfn)), m.table(d1).type(g(gfn))],
        refs: [m.frames.refcount(shared), m.frames.refcount(m.zeroMfn)],
        rmap: [m.p2m.rmap.count(shared), m.p2m.rmap.count(m.zeroMfn)],
        populated: m.table(d1).populated,
      }).toEqual(before);
      expect(m.frames.freeFrames).toBe(0);
    }
    expect([m.cow.copied, m.cow.kept, m.cow.zeroAllocated]).toEqual([0, 0, 0]);
    expect(m.dedup.removed).toEqual([]);
    expect(m.audit()).toEqual([]);
  });

  it('refuses an entry that is not ram_shared, or another domain’s table', async () => {
    const m = await machine();
    const mine = m.frames.allocFrame(d1, g(0));
    m.table(d1).set(g(0), mine, P2mType.ram_rw);
    m.share(page(2), [
      [d1, 1],
      [d2, 1],
    ]);
    expect(() => m.cow.unshare(d1, m.table(d1), g(0), false)).toThrow(InvariantError);
    expect(() => m.cow.unshare(d1, m.table(d1), g(7), false)).toThrow(InvariantError); // invalid entry
    expect(() => m.cow.unshare(d2, m.table(d1), g(1), false)).toThrow(InvariantError);
    expect(m.table(d1).type(g(1))).toBe(P2mType.ram_shared);
    expect(m.audit()).toEqual([]);
  });
});

describe('CowHandler.release', () => {
  it('frees the frame on the last reference and not before', async () => {
    const m = await machine();
    const shared = m.share(page(4), [
      [d1, 0],
      [d2, 0],
      [d3, 6],
    ]);
    const free = m.frames.freeFrames;
    const drop = (dom: DomId, gfn: Gfn) => {
      m.cow.release(dom, gfn, shared);
      m.table(dom).clear(gfn);
    };

    drop(d1, g(0));
    expect([m.frames.refcount(shared), m.p2m.rmap.count(shared)]).toEqual([2, 2]);
    expect(m.frames.isFree(shared)).toBe(false);

    drop(d3, g(6));
    // One sharer left: the frame stays shared until that sharer writes.
    expect([m.frames.refcount(shared), m.p2m.rmap.count(shared)]).toEqual([1, 1]);
    expect(m.frames.flags(shared)).toBe(FrameFlags.shared);
    expect(m.frames.freeFrames).toBe(free);
    expect(m.dedup.removed).toEqual([]);
    expect(m.audit()).toEqual([]);

    drop(d2, g(0));
    expect(m.frames.isFree(shared)).toBe(true);
    expect(m.frames.freeFrames).toBe(free + 1);
    expect(m.p2m.rmap.count(shared)).toBe(0);
    expect(m.dedup.removed).toEqual([shared]);
    expect(m.audit()).toEqual([]);
  });

  it('never frees the zero frame', async () => {
    const m = await machine();
    m.mapZero(d1, 2);
    const free = m.frames.freeFrames;
    m.cow.release(d1, g(2), m.zeroMfn);
    m.table(d1).clear(g(2));
    expect(m.frames.refcount(m.zeroMfn)).toBe(0);
    expect(m.frames.isFree(m.zeroMfn)).toBe(false);
    expect(m.frames.freeFrames).toBe(free);
    expect(m.dedup.removed).toEqual([]);
    expect(m.audit()).toEqual([]);
  });

  it('refuses a mapping that is not recorded, or a frame that is not shared', async () => {
    const m = await machine();
    const shared = m.share(page(4), [[d1, 0]]);
    expect(() => m.cow.release(d2, g(0), shared)).toThrow(InvariantError);
    const mine = m.frames.allocFrame(d2, g(3));
    m.table(d2).set(g(3), mine, P2mType.ram_rw);
    expect(() => m.cow.release(d2, g(3), mine)).toThrow(InvariantError);
    expect([m.frames.refcount(shared), m.frames.refcount(mine)]).toEqual([1, 1]);
    expect(m.audit()).toEqual([]);
  });
});
