import { InvariantError } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { Int32Map } from './int32-map.js';

describe('Int32Map', () => {
  it('agrees with a Map through growth, deletes and tombstone churn', () => {
    const map = new Int32Map();
    const model = new Map<number, number>();
    // A fixed pseudo-random walk over keys 0 .. 4999, sequential runs included.
    let x = 12345;
    for (let step = 0; step < 50_000; step++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const key = step % 7 === 0 ? step % 5000 : x % 5000;
      if (x % 3 === 0) expect(map.delete(key)).toBe(model.delete(key));
      else {
        map.set(key, step);
        model.set(key, step);
      }
    }
    expect(map.size).toBe(model.size);
    for (let key = 0; key < 5000; key++) expect(map.get(key)).toBe(model.get(key) ?? -1);
    const seen = new Map<number, number>();
    map.forEach((k, v) => seen.set(k, v));
    expect(seen).toEqual(model);
    // Rebuilds keep the table at most four times the live entries (and at least 16 slots).
    expect(map.byteLength).toBeLessThanOrEqual(Math.max(16, 8 * 2 * model.size) * 8);
  });

  it('refuses a negative or fractional key and changes nothing', () => {
    const map = new Int32Map();
    map.set(3, 4);
    for (const bad of [-1, 1.5, 2 ** 31]) expect(() => map.set(bad, 0)).toThrow(InvariantError);
    expect([map.size, map.get(3)]).toEqual([1, 4]);
  });
});
