import { asDomId, asGfn, asMfn, INVALID_MFN, InvariantError, P2mType } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { ArrayP2mTable, P2M_MAX_MFN } from './p2m-table.js';

const d1 = asDomId(1);
const g = asGfn;
const m = asMfn;

describe('ArrayP2mTable', () => {
  it('starts all invalid with no frame', () => {
    const t = new ArrayP2mTable(d1, 4);
    expect(t.dom).toBe(1);
    expect(t.size).toBe(4);
    expect(t.populated).toBe(0);
    for (let i = 0; i < 4; i++) {
      expect(t.type(g(i))).toBe(P2mType.invalid);
      expect(t.mfn(g(i))).toBe(INVALID_MFN);
    }
  });

  it('sets, reads back and clears entries', () => {
    const t = new ArrayP2mTable(d1, 8);
    t.set(g(3), m(42), P2mType.ram_rw);
    t.set(g(5), m(7), P2mType.ram_shared);
    expect([t.mfn(g(3)), t.type(g(3))]).toEqual([42, P2mType.ram_rw]);
    expect([t.mfn(g(5)), t.type(g(5))]).toEqual([7, P2mType.ram_shared]);
    expect(t.mfn(g(4))).toBe(INVALID_MFN);
    t.clear(g(3));
    expect([t.mfn(g(3)), t.type(g(3))]).toEqual([INVALID_MFN, P2mType.invalid]);
    expect(t.mfn(g(5))).toBe(7);
  });

  it('counts populated entries on every transition', () => {
    const t = new ArrayP2mTable(d1, 4);
    t.set(g(0), m(1), P2mType.ram_rw);
    expect(t.populated).toBe(1);
    t.set(g(0), m(2), P2mType.ram_shared); // populated -> populated
    expect(t.populated).toBe(1);
    t.set(g(1), INVALID_MFN, P2mType.populate_on_demand); // populated without a frame
    t.set(g(2), INVALID_MFN, P2mType.paged);
    expect(t.populated).toBe(3);
    t.set(g(1), INVALID_MFN, P2mType.invalid); // set to invalid counts down
    expect(t.populated).toBe(2);
    t.set(g(3), INVALID_MFN, P2mType.invalid); // invalid -> invalid
    expect(t.populated).toBe(2);
    t.clear(g(0));
    t.clear(g(0)); // clearing twice counts once
    expect(t.populated).toBe(1);
    t.clear(g(2));
    expect(t.populated).toBe(0);
  });

  it('counts entries of each type on every transition', () => {
    const t = new ArrayP2mTable(d1, 6);
    expect(t.countOf(P2mType.invalid)).toBe(6);
    t.set(g(0), m(1), P2mType.ram_rw);
    t.set(g(1), m(2), P2mType.paged);
    t.set(g(2), m(3), P2mType.paged);
    t.set(g(1), m(4), P2mType.ram_shared);
    t.clear(g(0));
    t.clear(g(5));
    expect([P2mType.invalid, P2mType.ram_rw, P2mType.ram_shared, P2mType.paged].map((type) => t.countOf(type))).toEqual([4, 0, 1, 1]);
    expect(() => t.set(g(3), m(1), 9 as P2mType)).toThrow(InvariantError);
    expect(t.countOf(9 as P2mType)).toBe(0);
    expect(t.countOf(P2mType.invalid)).toBe(4);
  });

  it('throws RangeError for gfns out of range and changes nothing', () => {
    const t = new ArrayP2mTable(d1, 4);
    for (const bad of [-1, 4, 1.5, Number.NaN, 2 ** 32]) {
      expect(() => t.type(g(bad))).toThrow(RangeError);
      expect(() => t.mfn(g(bad))).toThrow(RangeError);
      expect(() => t.set(g(bad), m(1), P2mType.ram_rw)).toThrow(RangeError);
      expect(() => t.clear(g(bad))).toThrow(RangeError);
    }
    expect(t.populated).toBe(0);
  });

  it('refuses a bad mfn or type without changing the entry', () => {
    const t = new ArrayP2mTable(d1, 2);
    t.set(g(0), m(5), P2mType.ram_rw);
    expect(() => t.set(g(0), m(-2), P2mType.ram_rw)).toThrow(InvariantError);
    expect(() => t.set(g(0), m(1.5), P2mType.ram_rw)).toThrow(InvariantError);
    expect(() => t.set(g(0), m(1), 7 as P2mType)).toThrow(InvariantError);
    expect(() => t.set(g(1), m(1), 256 as P2mType)).toThrow(InvariantError);
    expect([t.mfn(g(0)), t.type(g(0)), t.populated]).toEqual([5, P2mType.ram_rw, 1]);
    expect(t.type(g(1))).toBe(P2mType.invalid);
  });

  it('rejects a bad size', () => {
    expect(() => new ArrayP2mTable(d1, -1)).toThrow(RangeError);
    expect(() => new ArrayP2mTable(d1, 1.5)).toThrow(RangeError);
    expect(new ArrayP2mTable(d1, 0).size).toBe(0);
  });

  it('spends 5 bytes per guest frame: a 32-bit mfn and a type byte', () => {
    const t = new ArrayP2mTable(d1, 1000);
    expect(ArrayP2mTable.BYTES_PER_GFN).toBe(5);
    expect(t.metadataBytes()).toBe(1000 * ArrayP2mTable.BYTES_PER_GFN);
  });

  it('holds frames and swap slots up to 2^30 - 1 (4 TiB), and refuses one more with the limit named', () => {
    expect(P2M_MAX_MFN).toBe(2 ** 30 - 1);
    const t = new ArrayP2mTable(d1, 4);
    t.set(g(0), m(P2M_MAX_MFN), P2mType.paged);
    t.set(g(1), m(2 ** 28), P2mType.ram_rw); // one past the old limit of 2^28 - 1
    t.set(g(2), m(P2M_MAX_MFN - 1), P2mType.ram_shared);
    expect([t.mfn(g(0)), t.type(g(0))]).toEqual([2 ** 30 - 1, P2mType.paged]);
    expect([t.mfn(g(1)), t.type(g(1))]).toEqual([2 ** 28, P2mType.ram_rw]);
    expect([t.mfn(g(2)), t.type(g(2))]).toEqual([2 ** 30 - 2, P2mType.ram_shared]);
    expect(() => t.set(g(3), m(P2M_MAX_MFN + 1), P2mType.ram_rw)).toThrow('p2m set: mfn 1073741824 is not a frame number in -1 .. 1073741823');
    expect(() => t.set(g(3), m(2 ** 31), P2mType.ram_rw)).toThrow(InvariantError);
    expect([t.mfn(g(3)), t.type(g(3)), t.populated]).toEqual([INVALID_MFN, P2mType.invalid, 3]);
    // Every type round-trips with the largest frame and with none.
    for (const type of Object.values(P2mType)) {
      for (const mfn of [P2M_MAX_MFN, INVALID_MFN, 0]) {
        t.set(g(3), m(mfn), type);
        expect([t.mfn(g(3)), t.type(g(3))]).toEqual([mfn, type]);
      }
    }
    t.clear(g(0));
    expect([t.mfn(g(0)), t.type(g(0))]).toEqual([INVALID_MFN, P2mType.invalid]);
  });

  it('maps gfn 2^30 - 1 of a table of 2^30 gfns to frame 2^30 - 1, touching only what it sets', () => {
    const before = process.memoryUsage().rss;
    const t = new ArrayP2mTable(d1, 2 ** 30);
    expect(t.metadataBytes()).toBe(5 * 2 ** 30);
    const last = g(2 ** 30 - 1);
    expect([t.mfn(last), t.type(last), t.populated]).toEqual([INVALID_MFN, P2mType.invalid, 0]);
    t.set(last, m(P2M_MAX_MFN), P2mType.ram_rw);
    t.set(g(2 ** 29), m(2 ** 28 + 5), P2mType.ram_shared);
    expect([t.mfn(last), t.type(last), t.populated, t.countOf(P2mType.invalid)]).toEqual([P2M_MAX_MFN, P2mType.ram_rw, 2, 2 ** 30 - 2]);
    expect([t.mfn(g(2 ** 29)), t.type(g(2 ** 29))]).toEqual([2 ** 28 + 5, P2mType.ram_shared]);
    expect(() => t.mfn(g(2 ** 30))).toThrow(RangeError);
    // 5 GiB of arrays, none of it filled: far less resident than that.
    expect(process.memoryUsage().rss - before).toBeLessThan(2 ** 28);
  });
});
