import { asDomId, asGfn, asMfn, HypervisorError, InvariantError, P2mType, type DomId, type Gfn, type Mfn } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { ArrayP2m } from './array-p2m.js';
import type { ArrayP2mTable } from './p2m-table.js';
import { ArrayReverseMap, RMAP_BYTES_PER_FRAME, RMAP_BYTES_PER_GFN, RMAP_ID_CHUNK_SHIFT } from './reverse-map.js';

const d = asDomId;
const g = asGfn;
const m = asMfn;

function mappings(p2m: ArrayP2m, mfn: Mfn): [number, number][] {
  const out: [number, number][] = [];
  p2m.rmap.forEach(mfn, (dom, gfn) => out.push([dom, gfn]));
  return out;
}

/** A p2m with domains 1 and 2 (16 gfns each) over 16 frames; `share` maps and records a gfn. */
function setup() {
  const p2m = new ArrayP2m(16);
  p2m.createTable(d(1), 16);
  p2m.createTable(d(2), 16);
  const share = (mfn: number, dom: number, gfn: number) => {
    p2m.table(d(dom))!.set(g(gfn), m(mfn), P2mType.ram_shared);
    p2m.rmap.add(m(mfn), d(dom), g(gfn));
  };
  return { p2m, share };
}

describe('ArrayReverseMap', () => {
  it('adds, counts and lists mappings, most recent first', () => {
    const { p2m, share } = setup();
    share(3, 1, 0);
    share(3, 2, 5);
    share(3, 1, 9);
    share(4, 2, 1);
    expect(p2m.rmap.count(m(3))).toBe(3);
    expect(p2m.rmap.count(m(4))).toBe(1);
    expect(p2m.rmap.count(m(0))).toBe(0);
    expect(mappings(p2m, m(3))).toEqual([[1, 9], [2, 5], [1, 0]]);
    expect(mappings(p2m, m(4))).toEqual([[2, 1]]);
    expect(mappings(p2m, m(5))).toEqual([]);
    expect(p2m.rmap.size).toBe(4);
    expect(p2m.table(d(1))!.rmapEntries).toBe(2);
    expect(p2m.audit()).toEqual([]);
  });

  it.each([
    ['head', [1, 2], [1, 0]],
    ['middle', [2, 0], [1, 2]],
    ['tail', [1, 0], [2, 0]],
  ] as const)('removes the %s of a list', (_where, first, second) => {
    const { p2m, share } = setup();
    share(7, 1, 0);
    share(7, 2, 0);
    share(7, 1, 2);
    // List order is [1,2], [2,0], [1,0]: head, middle, tail.
    const before = mappings(p2m, m(7));
    p2m.rmap.remove(m(7), d(first[0]), g(first[1]));
    const left = before.filter(([dd, gg]) => dd !== first[0] || gg !== first[1]);
    expect(mappings(p2m, m(7))).toEqual(left);
    expect(p2m.rmap.count(m(7))).toBe(2);
    expect(p2m.table(d(first[0]))!.hasRmapEntry(g(first[1]))).toBe(false);
    p2m.table(d(first[0]))!.clear(g(first[1]));
    expect(p2m.audit()).toEqual([]);
    // Then another removal from what is left, and the last one.
    p2m.rmap.remove(m(7), d(second[0]), g(second[1]));
    p2m.table(d(second[0]))!.clear(g(second[1]));
    const last = left.filter(([dd, gg]) => dd !== second[0] || gg !== second[1]);
    expect(mappings(p2m, m(7))).toEqual(last);
    expect(p2m.audit()).toEqual([]);
    p2m.rmap.remove(m(7), d(last[0]![0]), g(last[0]![1]));
    expect(p2m.rmap.count(m(7))).toBe(0);
    expect(mappings(p2m, m(7))).toEqual([]);
    expect(p2m.rmap.frames()).toEqual([]);
    expect(p2m.rmap.size).toBe(0);
  });

  it('counts shared frames and their extra mappings, leaving one frame out', () => {
    const { p2m, share } = setup();
    share(1, 1, 0);
    share(1, 2, 0);
    share(1, 1, 1);
    share(2, 1, 2);
    share(0, 1, 3);
    share(0, 2, 1);
    expect(p2m.rmap.sharingCounts(m(0))).toEqual({ shared: 1, sharing: 2 });
    expect(p2m.rmap.sharingCounts(m(15))).toEqual({ shared: 2, sharing: 3 });
  });

  it('lists frames with mappings in ascending order', () => {
    const { p2m, share } = setup();
    share(9, 1, 0);
    share(2, 1, 1);
    share(15, 2, 0);
    share(2, 2, 1);
    share(0, 2, 2);
    expect([...p2m.rmap.frames()]).toEqual([0, 2, 9, 15]);
    p2m.rmap.remove(m(9), d(1), g(0));
    expect([...p2m.rmap.frames()]).toEqual([0, 2, 15]);
  });

  it('threads long lists through the table, allocating its links once', () => {
    const p2m = new ArrayP2m(8);
    p2m.createTable(d(1), 200);
    const t = p2m.table(d(1))!;
    expect(t.rmapNext).toBeNull();
    for (let i = 0; i < 100; i++) {
      t.set(g(i), m(i % 8), P2mType.ram_shared);
      p2m.rmap.add(m(i % 8), d(1), g(i));
    }
    for (let f = 0; f < 8; f++) {
      const expected = [];
      for (let i = 99; i >= 0; i--) if (i % 8 === f) expected.push([1, i]);
      expect(mappings(p2m, m(f))).toEqual(expected);
      expect(p2m.rmap.count(m(f))).toBe(expected.length);
    }
    expect(p2m.audit()).toEqual([]);
    expect(p2m.metadataBytes()).toBe(200 * 5 + 200 * RMAP_BYTES_PER_GFN + 8 * RMAP_BYTES_PER_FRAME + 8);
  });

  it('keeps lists intact and allocates nothing under add/remove churn', () => {
    const { p2m, share } = setup();
    for (let i = 0; i < 4; i++) share(1, 1, i);
    const bytes = p2m.metadataBytes();
    for (let round = 0; round < 10; round++) {
      p2m.rmap.remove(m(1), d(1), g(round % 4));
      p2m.table(d(1))!.set(g(round % 4), m(2), P2mType.ram_shared);
      p2m.rmap.add(m(2), d(1), g(round % 4));
      p2m.rmap.remove(m(2), d(1), g(round % 4));
      p2m.table(d(1))!.set(g(round % 4), m(1), P2mType.ram_shared);
      p2m.rmap.add(m(1), d(1), g(round % 4));
    }
    expect(p2m.metadataBytes()).toBe(bytes);
    expect(p2m.rmap.count(m(1))).toBe(4);
    expect(p2m.rmap.count(m(2))).toBe(0);
    expect(p2m.audit()).toEqual([]);
  });

  it('links gfns of several domains in one list, and hands ids of a destroyed table out again', () => {
    const p2m = new ArrayP2m(4);
    const t1 = p2m.createTable(d(1), 5000);
    const t2 = p2m.createTable(d(2), 10);
    const t3 = p2m.createTable(d(3), 10);
    // Whole chunks of ids: 5000 gfns take two.
    expect([t1.idBase, t2.idBase, t3.idBase]).toEqual([0, 2, 3].map((c) => c * 2 ** RMAP_ID_CHUNK_SHIFT));
    for (const [dom, gfn] of [[1, 4999], [2, 9], [3, 0], [1, 0]] as const) {
      p2m.table(d(dom))!.set(g(gfn), m(2), P2mType.ram_shared);
      p2m.rmap.add(m(2), d(dom), g(gfn));
    }
    expect(mappings(p2m, m(2))).toEqual([[1, 0], [3, 0], [2, 9], [1, 4999]]);
    p2m.rmap.remove(m(2), d(2), g(9));
    p2m.table(d(2))!.clear(g(9));
    p2m.destroyTable(d(2));
    expect(mappings(p2m, m(2))).toEqual([[1, 0], [3, 0], [1, 4999]]);
    const t4 = p2m.createTable(d(4), 3);
    expect(t4.idBase).toBe(2 * 2 ** RMAP_ID_CHUNK_SHIFT);
    t4.set(g(2), m(2), P2mType.ram_shared);
    p2m.rmap.add(m(2), d(4), g(2));
    expect(mappings(p2m, m(2))).toEqual([[4, 2], [1, 0], [3, 0], [1, 4999]]);
    expect(p2m.audit()).toEqual([]);
  });

  it('refuses a table with ENOMEM when the 2^31 ids are taken, changing nothing', () => {
    const tables = new Map<number, ArrayP2mTable>();
    const rmap = new ArrayReverseMap(4, (dom) => tables.get(dom));
    // Only size, dom and idBase are read: stand-ins spare the 4 GiB a real table of 2^30 needs.
    const big = (dom: number) => ({ dom: d(dom), size: 2 ** 30, idBase: -1, rmapEntries: 0 }) as unknown as ArrayP2mTable;
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

  it('lets forEach callbacks remove the mappings they visit', () => {
    const { p2m, share } = setup();
    share(5, 1, 0);
    share(5, 1, 1);
    share(5, 2, 3);
    const seen: [DomId, Gfn][] = [];
    p2m.rmap.forEach(m(5), (dom, gfn) => {
      seen.push([dom, gfn]);
      p2m.rmap.remove(m(5), dom, gfn);
      p2m.table(dom)!.clear(gfn);
    });
    expect(seen).toEqual([[2, 3], [1, 1], [1, 0]]);
    expect(p2m.rmap.count(m(5))).toBe(0);
    expect(p2m.audit()).toEqual([]);
  });

  describe('errors throw InvariantError and change nothing', () => {
    const cases: [string, (p2m: ArrayP2m) => void][] = [
      ['removing a mapping that is not there', (p) => p.rmap.remove(m(3), d(1), g(5))],
      ['removing a mapping under the wrong frame', (p) => p.rmap.remove(m(4), d(1), g(0))],
      ['adding a (dom, gfn) that has an entry', (p) => p.rmap.add(m(3), d(1), g(0))],
      ['adding a (dom, gfn) that has an entry for another frame', (p) => p.rmap.add(m(5), d(1), g(1))],
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
      share(3, 2, 0);
      share(4, 1, 1);
      const state = () => JSON.stringify([mappings(p2m, m(3)), mappings(p2m, m(4)), p2m.rmap.size]);
      const before = state();
      expect(() => fn(p2m)).toThrow(InvariantError);
      expect(state()).toBe(before);
      expect(p2m.audit()).toEqual([]);
    });

    it('removing twice', () => {
      const { p2m, share } = setup();
      share(4, 1, 1);
      p2m.rmap.remove(m(4), d(1), g(1));
      expect(() => p2m.rmap.remove(m(4), d(1), g(1))).toThrow(InvariantError);
      expect(p2m.rmap.count(m(4))).toBe(0);
      expect(p2m.rmap.size).toBe(0);
    });
  });

  it('audit reports a p2m entry that no longer matches its mapping', () => {
    const { p2m, share } = setup();
    share(3, 1, 0);
    p2m.table(d(1))!.set(g(0), m(3), P2mType.ram_rw);
    expect(p2m.audit()).toEqual([`mfn 3: d1 gfn 0 is (3, type 1), not (3, ram_shared)`]);
  });
});
