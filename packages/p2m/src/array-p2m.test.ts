import {
  asDomId,
  asGfn,
  asMfn,
  DOMID_COW,
  INVALID_MFN,
  InvariantError,
  P2mType,
  type DomId,
} from '@pagevisor/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArrayP2m } from './array-p2m.js';

const d = asDomId;
const g = asGfn;
const m = asMfn;

describe('ArrayP2m', () => {
  it('creates, finds and destroys tables, listing domains in creation order', () => {
    const p2m = new ArrayP2m(8);
    const t5 = p2m.createTable(d(5), 4);
    p2m.createTable(d(0), 2);
    p2m.createTable(d(3), 1);
    expect(p2m.table(d(5))).toBe(t5);
    expect(t5.dom).toBe(5);
    expect(p2m.table(d(4))).toBeUndefined();
    expect([...p2m.domains()]).toEqual([5, 0, 3]);
    p2m.destroyTable(d(0));
    expect(p2m.table(d(0))).toBeUndefined();
    p2m.createTable(d(0), 2);
    expect([...p2m.domains()]).toEqual([5, 3, 0]);
  });

  it('refuses a second table for a domain and a reserved domain id', () => {
    const p2m = new ArrayP2m(8);
    const t = p2m.createTable(d(1), 4);
    expect(() => p2m.createTable(d(1), 8)).toThrow(InvariantError);
    expect(p2m.table(d(1))).toBe(t);
    expect(() => p2m.createTable(DOMID_COW, 4)).toThrow(InvariantError);
    expect(() => p2m.createTable(d(-1), 4)).toThrow(InvariantError);
    expect([...p2m.domains()]).toEqual([1]);
  });

  it('refuses to destroy a missing table or one with populated entries; the audit finds a mapping left behind', () => {
    const p2m = new ArrayP2m(8);
    expect(() => p2m.destroyTable(d(1))).toThrow(InvariantError);
    const t = p2m.createTable(d(1), 4);
    t.set(g(2), INVALID_MFN, P2mType.populate_on_demand);
    expect(() => p2m.destroyTable(d(1))).toThrow(/1 populated/);
    t.clear(g(2));
    p2m.rmap.add(m(6), d(1), g(1));
    t.set(g(1), m(6), P2mType.ram_shared);
    expect(() => p2m.destroyTable(d(1))).toThrow(/1 populated/);
    // Clearing the entry without removing the mapping leaks it: the audit counts it.
    t.clear(g(1));
    expect(p2m.audit()).toEqual(['0 shared entries in the tables, 1 in use']);
    p2m.destroyTable(d(1));
    expect([...p2m.domains()]).toEqual([]);
  });

  it('reports the bytes of every typed array: 5 a gfn, 4 a frame, the list nodes and the id directory', () => {
    const p2m = new ArrayP2m(100);
    const own = 100 * 4 + 16 * 32;
    expect(p2m.metadataBytes()).toBe(own);
    p2m.createTable(d(1), 1000);
    p2m.createTable(d(2), 24);
    // One id-directory reference (8 bytes) per table's chunk of ids.
    expect(p2m.metadataBytes()).toBe(own + 1024 * 5 + 2 * 8);
    p2m.rmap.add(m(7), d(1), g(3));
    p2m.table(d(1))!.set(g(3), m(7), P2mType.ram_shared);
    expect(p2m.metadataBytes()).toBe(own + 1024 * 5 + 2 * 8);
    p2m.destroyTable(d(2));
    expect(p2m.metadataBytes()).toBe(own + 1000 * 5 + 8);
  });

  it('rejects bad constructor arguments', () => {
    expect(() => new ArrayP2m(-1)).toThrow(RangeError);
    expect(() => new ArrayP2m(2 ** 31)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Property test: random operation sequences against a Map-based model.

const DOMS = 3;
const FRAMES = 6;
const MAX_SIZE = 6;

type Op =
  | { kind: 'create'; dom: number; size: number }
  | { kind: 'destroy'; dom: number }
  | { kind: 'set'; dom: number; gfn: number; mfn: number; type: P2mType }
  | { kind: 'clear'; dom: number; gfn: number }
  | { kind: 'share'; dom: number; gfn: number; mfn: number }
  | { kind: 'unshare'; dom: number; gfn: number; mfn: number; pick: number; bogus: boolean }
  | { kind: 'drain'; dom: number };

const dom = fc.integer({ min: 0, max: DOMS - 1 });
// Up to MAX_SIZE so that some gfns are out of range of smaller tables.
const gfn = fc.integer({ min: 0, max: MAX_SIZE });
const mfn = fc.integer({ min: 0, max: FRAMES - 1 });
const notShared = fc.constantFrom(
  P2mType.invalid,
  P2mType.ram_rw,
  P2mType.populate_on_demand,
  P2mType.paging_out,
  P2mType.paged,
  P2mType.paging_in,
);
const anyOp: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('create' as const), dom, size: fc.integer({ min: 0, max: MAX_SIZE }) }),
  fc.record({ kind: fc.constant('destroy' as const), dom }),
  fc.record({ kind: fc.constant('set' as const), dom, gfn, mfn, type: notShared }),
  fc.record({ kind: fc.constant('clear' as const), dom, gfn }),
  fc.record({ kind: fc.constant('share' as const), dom, gfn, mfn }),
  fc.record({ kind: fc.constant('share' as const), dom, gfn, mfn }),
  fc.record({ kind: fc.constant('share' as const), dom, gfn, mfn }),
  // Mostly an existing mapping (the pick-th), sometimes arbitrary values that usually name none.
  fc.record({
    kind: fc.constant('unshare' as const),
    dom,
    gfn,
    mfn,
    pick: fc.nat(),
    bogus: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('drain' as const), dom }),
);

interface ModelTable {
  size: number;
  entries: Map<number, { mfn: number; type: number }>;
}

class Model {
  tables = new Map<number, ModelTable>();
  /** Per mfn, its mappings as "dom:gfn" in insertion order. */
  rmap = new Map<number, string[]>();
  rmapOf = new Map<string, number>();

  populated(dom: number): number {
    let n = 0;
    for (const e of this.tables.get(dom)!.entries.values()) if (e.type !== P2mType.invalid) n++;
    return n;
  }
  rmapCount(dom: number): number {
    let n = 0;
    for (const key of this.rmapOf.keys()) if (key.startsWith(`${dom}:`)) n++;
    return n;
  }
  addRmap(mfn: number, key: string) {
    this.rmap.set(mfn, [...(this.rmap.get(mfn) ?? []), key]);
    this.rmapOf.set(key, mfn);
  }
  removeRmap(mfn: number, key: string) {
    this.rmap.set(mfn, this.rmap.get(mfn)!.filter((k) => k !== key));
    this.rmapOf.delete(key);
  }
}

/** Applies `o` to both; expects the real p2m to throw exactly when the model says it must. */
function apply(p2m: ArrayP2m, model: Model, op: Op): void {
  let o = op;
  if (o.kind === 'unshare' && !o.bogus && model.rmapOf.size > 0) {
    const keys = [...model.rmapOf.keys()].sort();
    const key = keys[o.pick % keys.length]!;
    const [dd, gg] = key.split(':').map(Number) as [number, number];
    o = { ...o, dom: dd, gfn: gg, mfn: model.rmapOf.get(key)! };
  }
  const mt = model.tables.get(o.dom);
  const rt = p2m.table(d(o.dom));
  const key = 'gfn' in o ? `${o.dom}:${o.gfn}` : '';
  const inRange = mt !== undefined && 'gfn' in o && o.gfn < mt.size;
  switch (o.kind) {
    case 'create':
      if (mt) {
        expect(() => p2m.createTable(d(o.dom), o.size)).toThrow(InvariantError);
      } else {
        p2m.createTable(d(o.dom), o.size);
        model.tables.set(o.dom, { size: o.size, entries: new Map() });
      }
      return;
    case 'destroy':
      if (!mt || model.populated(o.dom) > 0 || model.rmapCount(o.dom) > 0) {
        expect(() => p2m.destroyTable(d(o.dom))).toThrow(InvariantError);
      } else {
        p2m.destroyTable(d(o.dom));
        model.tables.delete(o.dom);
      }
      return;
    case 'set':
    case 'clear':
      if (!mt) return;
      if (!inRange) {
        expect(() => rt!.type(g(o.gfn))).toThrow(RangeError);
        expect(() => rt!.mfn(g(o.gfn))).toThrow(RangeError);
        if (o.kind === 'set') expect(() => rt!.set(g(o.gfn), m(o.mfn), o.type)).toThrow(RangeError);
        else expect(() => rt!.clear(g(o.gfn))).toThrow(RangeError);
        return;
      }
      // A gfn with a mapping is only changed through unshare, as the hypervisor does.
      if (model.rmapOf.has(key)) return;
      if (o.kind === 'set') {
        rt!.set(g(o.gfn), m(o.mfn), o.type);
        mt.entries.set(o.gfn, { mfn: o.mfn, type: o.type });
      } else {
        rt!.clear(g(o.gfn));
        mt.entries.delete(o.gfn);
      }
      return;
    case 'share':
      if (!mt) {
        expect(() => p2m.rmap.add(m(o.mfn), d(o.dom), g(o.gfn))).toThrow(InvariantError);
      } else if (!inRange) {
        expect(() => p2m.rmap.add(m(o.mfn), d(o.dom), g(o.gfn))).toThrow(InvariantError);
      } else if (model.rmapOf.get(key) === o.mfn) {
        expect(() => p2m.rmap.add(m(o.mfn), d(o.dom), g(o.gfn))).toThrow(InvariantError);
      } else if (model.rmapOf.has(key)) {
        // Moving a mapping to another frame starts with removing it (unshare), as callers do.
        return;
      } else {
        p2m.rmap.add(m(o.mfn), d(o.dom), g(o.gfn));
        rt!.set(g(o.gfn), m(o.mfn), P2mType.ram_shared);
        model.addRmap(o.mfn, key);
        mt.entries.set(o.gfn, { mfn: o.mfn, type: P2mType.ram_shared });
      }
      return;
    case 'unshare':
      if (model.rmapOf.get(key) !== o.mfn || !inRange) {
        expect(() => p2m.rmap.remove(m(o.mfn), d(o.dom), g(o.gfn))).toThrow(InvariantError);
      } else {
        p2m.rmap.remove(m(o.mfn), d(o.dom), g(o.gfn));
        rt!.set(g(o.gfn), m((o.mfn + 1) % FRAMES), P2mType.ram_rw);
        model.removeRmap(o.mfn, key);
        mt!.entries.set(o.gfn, { mfn: (o.mfn + 1) % FRAMES, type: P2mType.ram_rw });
      }
      return;
    case 'drain':
      // What domain destruction does: drop every mapping, then clear every entry.
      if (!mt) return;
      for (let f = 0; f < FRAMES; f++) {
        const mine: [DomId, number][] = [];
        p2m.rmap.forEach(m(f), (dd, gg) => {
          if (dd === o.dom) mine.push([dd, gg]);
        });
        for (const [dd, gg] of mine) {
          p2m.rmap.remove(m(f), dd, g(gg));
          model.removeRmap(f, `${dd}:${gg}`);
        }
      }
      for (let i = 0; i < mt.size; i++) rt!.clear(g(i));
      mt.entries.clear();
      return;
  }
}

/** Everything observable, from the real p2m and from the model; compared in one assertion. */
function observe(p2m: ArrayP2m): unknown {
  const tables = [...p2m.domains()].map((dd) => {
    const t = p2m.table(dd)!;
    const entries: [number, number][] = [];
    for (let i = 0; i < t.size; i++) entries.push([t.mfn(g(i)), t.type(g(i))]);
    return { dom: dd as number, size: t.size, populated: t.populated, entries };
  });
  const rmap: { count: number; list: string[] }[] = [];
  for (let f = 0; f < FRAMES; f++) {
    const list: string[] = [];
    p2m.rmap.forEach(m(f), (dd, gg) => list.push(`${dd}:${gg}`));
    rmap.push({ count: p2m.rmap.count(m(f)), list: list.sort() });
  }
  return { tables, rmap, frames: [...p2m.rmap.frames()], audit: p2m.audit() };
}

function expected(model: Model): unknown {
  const tables = [...model.tables].map(([dd, mt]) => {
    const entries: [number, number][] = [];
    for (let i = 0; i < mt.size; i++) {
      const e = mt.entries.get(i) ?? { mfn: INVALID_MFN, type: P2mType.invalid };
      entries.push([e.mfn, e.type]);
    }
    return { dom: dd, size: mt.size, populated: model.populated(dd), entries };
  });
  const rmap: { count: number; list: string[] }[] = [];
  const frames: number[] = [];
  for (let f = 0; f < FRAMES; f++) {
    const list = [...(model.rmap.get(f) ?? [])].sort();
    rmap.push({ count: list.length, list });
    if (list.length > 0) frames.push(f);
  }
  return { tables, rmap, frames, audit: [] };
}

describe('ArrayP2m against a Map model', () => {
  it('agrees after every operation of random sequences', () => {
    fc.assert(
      fc.property(fc.array(anyOp, { minLength: 20, maxLength: 150, size: 'max' }), (ops) => {
        // Tables come and go, so ids are handed out again.
        const p2m = new ArrayP2m(FRAMES);
        const model = new Model();
        for (const o of ops) {
          apply(p2m, model, o);
          expect(observe(p2m)).toEqual(expected(model));
        }
      }),
      { numRuns: 120, seed: 20240611 },
    );
  }, 30_000);
});
