import { asDomId, asGfn, asMfn, InvariantError, P2mType, type DomId, type Gfn, type Mfn } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { ArrayP2m } from './array-p2m.js';
import { RMAP_BYTES_PER_ENTRY, RMAP_BYTES_PER_FRAME } from './reverse-map.js';

const d = asDomId;
const g = asGfn;
const m = asMfn;

function mappings(p2m: ArrayP2m, mfn: Mfn): [number, number][] {
  const out: [number, number][] = [];
  p2m.rmap.forEach(mfn, (dom, gfn) => out.push([dom, gfn]));
  return out;
}

/** A p2m with domains 1 and 2 (16 gfns each) over 16 frames; `share` maps and records a gfn. */
function setup(initialRmapEntries = 1024) {
  const p2m = new ArrayP2m(16, { initialRmapEntries });
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
    expect(p2m.table(d(first[0]))!.rmapEntry[first[1]]).toBe(-1);
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

  it('grows the entry pool by doubling and keeps every list intact', () => {
    const p2m = new ArrayP2m(8, { initialRmapEntries: 2 });
    p2m.createTable(d(1), 200);
    const t = p2m.table(d(1))!;
    expect(p2m.rmap.capacity).toBe(2);
    for (let i = 0; i < 100; i++) {
      t.set(g(i), m(i % 8), P2mType.ram_shared);
      p2m.rmap.add(m(i % 8), d(1), g(i));
    }
    expect(p2m.rmap.capacity).toBe(128);
    for (let f = 0; f < 8; f++) {
      const expected = [];
      for (let i = 99; i >= 0; i--) if (i % 8 === f) expected.push([1, i]);
      expect(mappings(p2m, m(f))).toEqual(expected);
      expect(p2m.rmap.count(m(f))).toBe(expected.length);
    }
    expect(p2m.audit()).toEqual([]);
    expect(p2m.metadataBytes()).toBe(200 * 9 + 8 * RMAP_BYTES_PER_FRAME + 128 * RMAP_BYTES_PER_ENTRY);
  });

  it('reuses freed entries before growing', () => {
    const { p2m, share } = setup(4);
    for (let i = 0; i < 4; i++) share(1, 1, i);
    expect(p2m.rmap.capacity).toBe(4);
    for (let round = 0; round < 10; round++) {
      p2m.rmap.remove(m(1), d(1), g(round % 4));
      p2m.rmap.add(m(2), d(1), g(round % 4));
      p2m.rmap.remove(m(2), d(1), g(round % 4));
      p2m.rmap.add(m(1), d(1), g(round % 4));
    }
    expect(p2m.rmap.capacity).toBe(4);
    expect(p2m.rmap.count(m(1))).toBe(4);
    expect(p2m.audit()).toEqual([]);
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
