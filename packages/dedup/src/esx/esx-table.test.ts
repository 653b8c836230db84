import { describe, expect, it } from 'vitest';
import { asDomId, asGfn, asMfn, InvariantError, type DomId, type Gfn } from '@pagevisor/types';
import { EsxSlot, EsxTable, NO_SLOT, type EsxHintMoves } from './esx-table.js';

/** Records where hints moved, as EsxDedup's per-page back-pointers would. */
class Moves implements EsxHintMoves {
  readonly at = new Map<string, number>();
  hintMoved(dom: DomId, gfn: Gfn, slot: number): void {
    this.at.set(`${dom}:${gfn}`, slot);
  }
}

/** Every slot under `key`, in probe order. */
function entries(t: EsxTable, key: number): number[] {
  const out: number[] = [];
  for (let s = t.first(key); s !== NO_SLOT; s = t.next(s, key)) out.push(s);
  return out;
}

describe('EsxTable', () => {
  it('holds shared entries and hints under one key apart, and finds shared entries by frame', () => {
    const t = new EsxTable(16, 32, new Moves());
    const a = t.insertShared(7, asMfn(3));
    const h = t.insertHint(7, asDomId(2), asGfn(9));
    const b = t.insertShared(8, asMfn(4));
    expect(entries(t, 7)).toEqual([a, h]);
    expect(entries(t, 8)).toEqual([b]);
    expect(entries(t, 9)).toEqual([]);
    expect(t.kind(a)).toBe(EsxSlot.shared);
    expect(t.kind(h)).toBe(EsxSlot.hint);
    expect([t.hintDom(h), t.hintGfn(h), t.key(h)]).toEqual([2, 9, 7]);
    expect(t.slotOf(asMfn(3))).toBe(a);
    expect(t.slotOf(asMfn(5))).toBe(NO_SLOT);
    expect(t.slotOf(asMfn(-1))).toBe(NO_SLOT);
    expect([t.shared, t.hints]).toEqual([2, 1]);
    expect(t.audit()).toEqual([]);
  });

  it('turns a hint into a shared entry in place', () => {
    const t = new EsxTable(16, 32, new Moves());
    const h = t.insertHint(5, asDomId(1), asGfn(0));
    t.hintToShared(h, asMfn(6));
    expect(t.kind(h)).toBe(EsxSlot.shared);
    expect(t.slotOf(asMfn(6))).toBe(h);
    expect([t.shared, t.hints]).toEqual([1, 0]);
    expect(() => t.hintToShared(h, asMfn(7))).toThrow(InvariantError);
    expect(t.audit()).toEqual([]);
  });

  it('leaves a tombstone inside a probe run, and empties the end of a run', () => {
    const t = new EsxTable(16, 32, new Moves());
    const s = [1, 2, 3].map((m) => t.insertShared(42, asMfn(m)));
    t.removeSlot(s[1]!);
    expect(t.tombstones).toBe(1);
    expect(entries(t, 42)).toEqual([s[0], s[2]]);
    t.removeSlot(s[2]!);
    // The last entry went and the tombstone before it ended the run too.
    expect(t.tombstones).toBe(0);
    expect(entries(t, 42)).toEqual([s[0]]);
    expect(t.slotOf(asMfn(3))).toBe(NO_SLOT);
    expect(t.audit()).toEqual([]);
  });

  it('allows removing the slot being visited during a walk', () => {
    const t = new EsxTable(16, 32, new Moves());
    for (let g = 0; g < 4; g++) t.insertHint(1, asDomId(1), asGfn(g));
    const seen: number[] = [];
    for (let s = t.first(1); s !== NO_SLOT; s = t.next(s, 1)) {
      seen.push(t.hintGfn(s));
      if (t.hintGfn(s) % 2 === 0) t.removeSlot(s);
    }
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(entries(t, 1).map((s) => t.hintGfn(s))).toEqual([1, 3]);
    expect(t.audit()).toEqual([]);
  });

  it('grows past its load limit, reporting where every hint went', () => {
    const moves = new Moves();
    const t = new EsxTable(2, 1024, moves);
    const hintAt = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      if (i % 3 === 0) t.insertShared(i * 2654435761, asMfn(i));
      else hintAt.set(`${i % 5}:${i}`, t.insertHint(i * 2654435761, asDomId(i % 5), asGfn(i)));
    }
    expect(t.rebuilds).toBeGreaterThan(5);
    expect(t.capacity).toBeGreaterThanOrEqual(600);
    for (const [k, slot] of moves.at) hintAt.set(k, slot); // later moves win
    // After the last rebuild some hints were inserted without moving: keep their insert slot.
    for (const [k, slot] of hintAt) {
      const [dom, gfn] = k.split(':').map(Number);
      expect(t.kind(slot), k).toBe(EsxSlot.hint);
      expect([t.hintDom(slot), t.hintGfn(slot)]).toEqual([dom, gfn]);
    }
    for (let i = 0; i < 300; i += 3) expect(t.mfn(t.slotOf(asMfn(i)))).toBe(i);
    expect([t.shared, t.hints]).toEqual([100, 200]);
    expect(t.audit()).toEqual([]);
  });

  it('rebuilds at the same capacity under churn at a steady size', () => {
    const t = new EsxTable(64, 64, new Moves());
    for (let round = 0; round < 200; round++) {
      const s = t.insertShared(round, asMfn(round % 64));
      t.removeSlot(s);
      t.insertHint(round, asDomId(1), asGfn(round));
      t.removeSlot(t.first(round));
    }
    expect(t.capacity).toBe(64);
    expect(t.audit()).toEqual([]);
  });

  it('refuses a frame entered twice, a frame outside memory, removing an empty slot, and bad capacities', () => {
    const t = new EsxTable(8, 8, new Moves());
    t.insertShared(1, asMfn(1));
    expect(() => t.insertShared(2, asMfn(1))).toThrow(/already has a shared entry/);
    expect(() => t.insertShared(2, asMfn(8))).toThrow(/outside machine memory/);
    expect(() => t.removeSlot(t.first(1) ^ 1)).toThrow(/holds no entry/);
    expect(() => new EsxTable(3, 8, new Moves())).toThrow(InvariantError);
    expect(() => new EsxTable(1, 8, new Moves())).toThrow(InvariantError);
  });

  it('counts 11 bytes a slot and 4 a frame', () => {
    expect(new EsxTable(128, 1000, new Moves()).bytes()).toBe(128 * 11 + 1000 * 4);
  });
});
