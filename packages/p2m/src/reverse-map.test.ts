import { asDomId, asGfn, asMfn, HypervisorError, InvariantError, P2mType, type DomId, type Gfn, type Mfn } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { ArrayP2m } from './array-p2m.js';
import { ArrayP2mTable } from './p2m-table.js';
import { ArrayReverseMap, RMAP_BYTES_PER_FRAME, RMAP_BYTES_PER_NODE, RMAP_HEAVY_NODES, RMAP_ID_CHUNK_SHIFT, RMAP_IDS_PER_NODE } from './reverse-map.js';

const d = asDomId;
const g = asGfn;
const m = asMfn;

/** Mappings of `mfn` as [dom, gfn] pairs, sorted (the order of forEach is not part of the contract). */
function mappings(p2m: ArrayP2m, mfn: Mfn): [number, number][] {
  const out: [number, number][] = [];
  p2m.rmap.forEach(mfn, (dom, gfn) => out.push([dom, gfn]));
  return out.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
}

/**
 * A p2m over 16 frames (frame 0 count-only, as the zero frame) with domains 1 .. 3 of 16 gfns;
 * `share` records and then maps a gfn, `unshare` forgets and then clears it, as callers do.
 */
function setup(frames = 16, doms = 3, gfns = 16) {
  const p2m = new ArrayP2m(frames, 0);
  for (let i = 1; i <= doms; i++) p2m.createTable(d(i), gfns);
  const share = (mfn: number, dom: number, gfn: number) => {
    p2m.rmap.add(m(mfn), d(dom), g(gfn));
    p2m.table(d(dom))!.set(g(gfn), m(mfn), P2mType.ram_shared);
  };
  const unshare = (mfn: number, dom: number, gfn: number) => {
    p2m.rmap.remove(m(mfn), d(dom), g(gfn));
    p2m.table(d(dom))!.clear(g(gfn));
  };
  return { p2m, share, unshare };
}

describe('ArrayReverseMap', () => {
  it('anchors a frame every mapper maps at one gfn: no list, mappers found in the tables', () => {
    const { p2m, share, unshare } = setup();
    const bytes = p2m.metadataBytes();
    share(3, 1, 5);
    share(3, 2, 5);
    share(3, 3, 5);
    expect(p2m.rmap.count(m(3))).toBe(3);
    expect(mappings(p2m, m(3))).toEqual([[1, 5], [2, 5], [3, 5]]);
    expect(p2m.metadataBytes()).toBe(bytes);
    unshare(3, 2, 5);
    expect(mappings(p2m, m(3))).toEqual([[1, 5], [3, 5]]);
    expect(p2m.rmap.size).toBe(2);
    expect(p2m.audit()).toEqual([]);
    unshare(3, 1, 5);
    unshare(3, 3, 5);
    expect(p2m.rmap.count(m(3))).toBe(0);
    expect(p2m.rmap.frames()).toEqual([]);
    expect(p2m.audit()).toEqual([]);
  });

  it('lists a frame once it is mapped at a second gfn, with the mappers it had', () => {
    const { p2m, share, unshare } = setup();
    share(4, 1, 2);
    share(4, 2, 2);
    share(4, 3, 9);
    expect(mappings(p2m, m(4))).toEqual([[1, 2], [2, 2], [3, 9]]);
    // One node, from the pool's first 16.
    expect(p2m.metadataBytes()).toBe(setup().p2m.metadataBytes());
    expect(p2m.audit()).toEqual([]);
    unshare(4, 2, 2);
    expect(mappings(p2m, m(4))).toEqual([[1, 2], [3, 9]]);
    unshare(4, 3, 9);
    unshare(4, 1, 2);
    expect(p2m.rmap.count(m(4))).toBe(0);
    // The frame's list is gone: it is anchored again by its next mapper.
    share(4, 2, 7);
    expect(mappings(p2m, m(4))).toEqual([[2, 7]]);
    expect(p2m.audit()).toEqual([]);
  });

  it('moves the anchor of a frame whose mappers have all gone, without listing', () => {
    const { p2m, share, unshare } = setup();
    share(6, 1, 1);
    unshare(6, 1, 1);
    share(6, 2, 8);
    share(6, 3, 8);
    expect(mappings(p2m, m(6))).toEqual([[2, 8], [3, 8]]);
    expect(p2m.audit()).toEqual([]);
  });

  it('removes from the first, a middle and the last node of long lists, in any order', () => {
    const { p2m, share, unshare } = setup(16, 3, 64);
    // 3 domains x 20 gfns on frame 7: 60 mappings, 10 nodes of 6.
    const all: [number, number][] = [];
    for (let gfn = 0; gfn < 20; gfn++) for (let dom = 1; dom <= 3; dom++) all.push([dom, gfn]);
    for (const [dom, gfn] of all) share(7, dom, gfn);
    expect(p2m.rmap.count(m(7))).toBe(60);
    expect(p2m.audit()).toEqual([]);
    // A fixed shuffle of the removal order.
    const order = all.map((x, i) => [(i * 37) % 61, x] as const).sort((a, b) => a[0] - b[0]).map((x) => x[1]);
    const left = new Set(all.map(([dd, gg]) => `${dd}:${gg}`));
    for (const [dom, gfn] of order) {
      unshare(7, dom, gfn);
      left.delete(`${dom}:${gfn}`);
      expect(mappings(p2m, m(7)).map(([dd, gg]) => `${dd}:${gg}`).sort()).toEqual([...left].sort());
      expect(p2m.rmap.count(m(7))).toBe(left.size);
    }
    expect(p2m.audit()).toEqual([]);
    expect(p2m.rmap.size).toBe(0);
  });

  it('indexes the places of a heavy frame: removals find ids without a walk, and agree with the lists', () => {
    const gfns = RMAP_IDS_PER_NODE * RMAP_HEAVY_NODES * 2;
    const { p2m, share, unshare } = setup(16, 2, gfns);
    const light = p2m.metadataBytes();
    for (let gfn = 0; gfn < gfns; gfn++) share(9, 1 + (gfn % 2), gfn);
    // Past RMAP_HEAVY_NODES nodes the frame's ids are indexed: the index shows in the bytes.
    expect(p2m.metadataBytes()).toBeGreaterThan(light + gfns * 8);
    expect(p2m.audit()).toEqual([]);
    // Remove in a scattered order, checking the lists and the index all the way down.
    const order = Array.from({ length: gfns }, (_, i) => (i * 53) % gfns);
    const left = new Set(order);
    for (const gfn of order) {
      unshare(9, 1 + (gfn % 2), gfn);
      left.delete(gfn);
      if (left.size % 17 === 0) {
        expect(p2m.rmap.count(m(9))).toBe(left.size);
        expect(p2m.audit()).toEqual([]);
      }
    }
    expect(mappings(p2m, m(9))).toEqual([]);
    // Empty, the frame is light again: anchored by its next mapper.
    share(9, 2, 3);
    expect(mappings(p2m, m(9))).toEqual([[2, 3]]);
    expect(p2m.audit()).toEqual([]);
  });

  it('reuses freed list nodes: add/remove churn allocates nothing', () => {
    const { p2m, share, unshare } = setup();
    for (let i = 0; i < 8; i++) share(1, 1, i);
    share(2, 2, 0);
    share(2, 2, 1);
    const bytes = p2m.metadataBytes();
    for (let round = 0; round < 50; round++) {
      const gfn = round % 8;
      unshare(1, 1, gfn);
      share(2, 1, gfn);
      unshare(2, 1, gfn);
      share(1, 1, gfn);
    }
    expect(p2m.metadataBytes()).toBe(bytes);
    expect(p2m.rmap.count(m(1))).toBe(8);
    expect(p2m.rmap.count(m(2))).toBe(2);
    expect(p2m.audit()).toEqual([]);
  });

  it('counts the count-only frame: any number of gfns, no list', () => {
    const { p2m, share, unshare } = setup();
    const bytes = p2m.metadataBytes();
    for (let gfn = 0; gfn < 16; gfn++) share(0, 1 + (gfn % 3), gfn);
    expect(p2m.rmap.count(m(0))).toBe(16);
    expect(p2m.metadataBytes()).toBe(bytes);
    expect(mappings(p2m, m(0))).toHaveLength(16);
    unshare(0, 2, 1);
    expect(p2m.rmap.count(m(0))).toBe(15);
    expect(p2m.audit()).toEqual([]);
  });

  it('lists frames with mappings in ascending order', () => {
    const { p2m, share, unshare } = setup();
    share(9, 1, 0);
    share(2, 1, 1);
    share(15, 2, 0);
    share(2, 2, 3);
    share(0, 2, 2);
    expect(p2m.rmap.frames()).toEqual([0, 2, 9, 15]);
    unshare(9, 1, 0);
    expect(p2m.rmap.frames()).toEqual([0, 2, 15]);
  });

  it('spends 4 bytes a frame and 32 a node of 6 listed mappings, nothing per guest frame', () => {
    expect([RMAP_BYTES_PER_FRAME, RMAP_BYTES_PER_NODE, RMAP_IDS_PER_NODE]).toEqual([4, 32, 6]);
    const p2m = new ArrayP2m(8);
    p2m.createTable(d(1), 200);
    // 16 nodes to start with, one directory entry per chunk of ids.
    expect(p2m.metadataBytes()).toBe(200 * ArrayP2mTable.BYTES_PER_GFN + 8 * RMAP_BYTES_PER_FRAME + 16 * RMAP_BYTES_PER_NODE + 8);
  });

  it('hands ids of a destroyed table out again', () => {
    const p2m = new ArrayP2m(4);
    const t1 = p2m.createTable(d(1), 5000);
    const t2 = p2m.createTable(d(2), 10);
    const t3 = p2m.createTable(d(3), 10);
    // Whole chunks of ids: 5000 gfns take two.
    expect([t1.idBase, t2.idBase, t3.idBase]).toEqual([0, 2, 3].map((c) => c * 2 ** RMAP_ID_CHUNK_SHIFT));
    const share = (dom: number, gfn: number) => {
      p2m.rmap.add(m(2), d(dom), g(gfn));
      p2m.table(d(dom))!.set(g(gfn), m(2), P2mType.ram_shared);
    };
    for (const [dom, gfn] of [[1, 4999], [2, 9], [3, 0], [1, 0]] as const) share(dom, gfn);
    p2m.rmap.remove(m(2), d(2), g(9));
    p2m.table(d(2))!.clear(g(9));
    expect(() => p2m.createTable(d(2), 1)).toThrow(/already has a table/);
    p2m.destroyTable(d(2));
    expect(mappings(p2m, m(2))).toEqual([[1, 0], [1, 4999], [3, 0]]);
    const t4 = p2m.createTable(d(4), 3);
    expect(t4.idBase).toBe(2 * 2 ** RMAP_ID_CHUNK_SHIFT);
    share(4, 2);
    expect(mappings(p2m, m(2))).toEqual([[1, 0], [1, 4999], [3, 0], [4, 2]]);
    expect(p2m.audit()).toEqual([]);
  });

  it('refuses a table with ENOMEM when the 2^31 ids are taken, changing nothing', () => {
    const tables = new Map<number, ArrayP2mTable>();
    const rmap = new ArrayReverseMap(4, (dom) => tables.get(dom));
    // Only size, dom, idBase and countOf are read: stand-ins spare the 4 GiB a real table of 2^30 needs.
    const big = (dom: number) => ({ dom: d(dom), size: 2 ** 30, idBase: -1, countOf: () => 0 }) as unknown as ArrayP2mTable;
    const [a, b, c] = [big(1), big(2), big(3)];
    rmap.register(a);
    rmap.register(b);
    expect([a.idBase, b.idBase]).toEqual([0, 2 ** 30]);
    expect(() => rmap.register(c)).toThrow(HypervisorError);
    expect(c.idBase).toBe(-1);
    rmap.unregister(a);
    rmap.register(c);
    expect(c.idBase).toBe(0);
  });

  it.each([
    ['anchored', [[1, 0], [2, 0], [3, 0]]],
    ['listed', [[1, 0], [1, 1], [2, 3]]],
  ] as const)('lets forEach callbacks remove the mappings they visit (%s)', (_kind, sharers) => {
    const { p2m, share, unshare } = setup();
    for (const [dom, gfn] of sharers) share(5, dom, gfn);
    const seen: [DomId, Gfn][] = [];
    p2m.rmap.forEach(m(5), (dom, gfn) => {
      seen.push([dom, gfn]);
      unshare(5, dom, gfn);
    });
    expect(seen.map(([dd, gg]) => [dd, gg]).sort((x, y) => x[0] - y[0] || x[1] - y[1])).toEqual(sharers);
    expect(p2m.rmap.count(m(5))).toBe(0);
    expect(p2m.audit()).toEqual([]);
  });

  describe('errors throw InvariantError and change nothing', () => {
    const cases: [string, (p2m: ArrayP2m) => void][] = [
      ['removing a mapping whose entry is not shared', (p) => p.rmap.remove(m(3), d(1), g(5))],
      ['removing a mapping under the wrong frame', (p) => p.rmap.remove(m(4), d(1), g(0))],
      ['removing an entry the anchored frame does not record', (p) => {
        p.table(d(3))!.set(g(7), m(4), P2mType.ram_shared);
        p.rmap.remove(m(4), d(3), g(7));
      }],
      ['adding a mapping the entry already records', (p) => p.rmap.add(m(3), d(1), g(0))],
      ['a domain without a table', (p) => p.rmap.add(m(3), d(9), g(0))],
      ['a gfn out of range', (p) => p.rmap.add(m(3), d(1), g(16))],
      ['an mfn out of range', (p) => p.rmap.add(m(16), d(1), g(2))],
      ['a negative mfn', (p) => p.rmap.remove(m(-1), d(1), g(0))],
      ['count of an mfn out of range', (p) => p.rmap.count(m(99))],
      ['forEach of an mfn out of range', (p) => p.rmap.forEach(m(99), () => {})],
    ];
    it.each(cases)('%s', (_name, fn) => {
      const { p2m, share } = setup();
      share(3, 1, 0);
      share(3, 2, 4);
      share(4, 1, 1);
      const state = () => JSON.stringify([mappings(p2m, m(3)), mappings(p2m, m(4)), p2m.rmap.size]);
      const before = state();
      expect(() => fn(p2m)).toThrow(InvariantError);
      expect(state()).toBe(before);
    });
  });

  it('audit reports a shared entry the reverse map does not record, and a listed entry that changed', () => {
    const { p2m, share } = setup();
    share(3, 1, 0);
    share(3, 2, 4);
    p2m.table(d(3))!.set(g(9), m(3), P2mType.ram_shared);
    expect(p2m.audit()).toEqual(['d3 gfn 9 maps mfn 3 shared, unrecorded', '3 shared entries in the tables, 2 in use']);
    p2m.table(d(3))!.clear(g(9));
    p2m.table(d(1))!.set(g(0), m(3), P2mType.ram_rw);
    expect(p2m.audit()).toEqual(['mfn 3: d1 gfn 0 is listed but does not map it shared', '1 shared entries in the tables, 2 in use']);
  });
});
