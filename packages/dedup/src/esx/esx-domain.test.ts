import { describe, expect, it } from 'vitest';
import { asDomId, asGfn, INVALID_MFN, P2mType, Prng, type P2mTable } from '@pagevisor/types';
import { EsxDomain } from './esx-domain.js';
import { NO_SLOT } from './esx-table.js';

function tableOf(size: number): P2mTable {
  return {
    dom: asDomId(1),
    size,
    populated: 0,
    type: () => P2mType.invalid,
    mfn: () => INVALID_MFN,
    set: () => {},
    clear: () => {},
  };
}

describe('EsxDomain', () => {
  it('keeps the mergeable gfns in a dense list, marking and unmarking idempotently', () => {
    const d = new EsxDomain(asDomId(1), tableOf(10));
    for (const g of [3, 5, 7, 5]) d.mark(asGfn(g));
    expect(d.count).toBe(3);
    d.unmark(asGfn(3));
    d.unmark(asGfn(3));
    d.unmark(asGfn(4));
    expect(d.count).toBe(2);
    expect([3, 4, 5, 7].map((g) => d.isMergeable(asGfn(g)))).toEqual([false, false, true, true]);
    expect(d.audit()).toEqual([]);
  });

  it('draws only mergeable gfns, each about equally often', () => {
    const d = new EsxDomain(asDomId(1), tableOf(100));
    const mergeable = [2, 10, 40, 41, 99];
    for (const g of mergeable) d.mark(asGfn(g));
    const prng = new Prng(3);
    const counts = new Map<number, number>();
    for (let i = 0; i < 5000; i++) {
      const g = d.pick(prng);
      counts.set(g, (counts.get(g) ?? 0) + 1);
    }
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual(mergeable);
    for (const n of counts.values()) expect(Math.abs(n - 1000)).toBeLessThan(150);
  });

  it('counts pages with a hint and 12 bytes a guest frame', () => {
    const d = new EsxDomain(asDomId(1), tableOf(10));
    d.setHint(asGfn(1), 5);
    d.setHint(asGfn(1), 6);
    d.setHint(asGfn(2), 7);
    expect(d.hints).toBe(2);
    d.setHint(asGfn(1), NO_SLOT);
    expect(d.hints).toBe(1);
    expect(d.bytes()).toBe(120);
    expect(d.audit()).toEqual([]);
  });
});
