import { asMfn, INVALID_MFN, InvariantError } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { InlineDedup } from '../src/index.js';
import { fakeHost, filledPage } from './fake-host.js';

// A host built on @pagevisor/types alone, whose hash is constant: every frame collides with every
// other, so only full compares can tell them apart.
describe('InlineDedup on a host whose hash always collides', () => {
  function setup(fills: number[]) {
    const host = fakeHost(64, () => 7);
    const dedup = new InlineDedup({ initialCapacity: 2 });
    dedup.attach(host);
    const mfns = fills.map((fill, i) => {
      const mfn = host.frames.take(i + 1);
      host.memory.write(mfn, 0, filledPage(fill), 0, filledPage(fill).length);
      dedup.insert(mfn, host.memory.hashFrame(mfn), 'miss');
      return mfn;
    });
    return { host, dedup, mfns };
  }

  it('finds each content by full compare and counts the failed compares as collisions', () => {
    const { host, dedup, mfns } = setup([1, 2, 3, 4, 5]);
    expect(dedup.audit()).toEqual([]);
    for (let k = 0; k < 5; k++) {
      expect(dedup.lookup(filledPage(k + 1), 7)).toBe(mfns[k]);
    }
    expect(dedup.lookup(filledPage(0), 7)).toBe(host.zeroMfn);
    const before = dedup.stats().collisions!;
    expect(dedup.lookup(filledPage(9), 7)).toBe(INVALID_MFN);
    // The miss compared against all six frames (zero frame included) and each compare failed.
    expect(dedup.stats().collisions! - before).toBe(6);
    expect(dedup.stats()).toMatchObject({ hits: 6, misses: 1, size: 6 });
  });

  it('keeps colliding frames findable after removes leave tombstones between them', () => {
    const { dedup, mfns } = setup([1, 2, 3, 4, 5, 6, 7, 8]);
    dedup.remove(mfns[1]!);
    dedup.remove(mfns[4]!);
    dedup.remove(mfns[6]!);
    expect(dedup.lookup(filledPage(2), 7)).toBe(INVALID_MFN);
    expect(dedup.lookup(filledPage(5), 7)).toBe(INVALID_MFN);
    for (const k of [0, 2, 3, 5, 7]) expect(dedup.lookup(filledPage(k + 1), 7)).toBe(mfns[k]);
    expect(dedup.audit()).toEqual([]);
  });

  it('audit names a frame whose content changed and a frame that was freed', () => {
    const host = fakeHost(8, (page) => page[0]!);
    const dedup = new InlineDedup();
    dedup.attach(host);
    const changed = host.frames.take(1);
    const freed = host.frames.take(2);
    host.memory.write(changed, 0, filledPage(1), 0, 4096);
    host.memory.write(freed, 0, filledPage(2), 0, 4096);
    dedup.insert(changed, host.memory.hashFrame(changed), 'miss');
    dedup.insert(freed, host.memory.hashFrame(freed), 'miss');
    expect(dedup.audit()).toEqual([]);
    host.memory.write(changed, 0, filledPage(3), 0, 1);
    host.frames.freeFrame(freed);
    const problems = dedup.audit();
    expect(problems).toHaveLength(2);
    expect(problems.find((p) => p.includes('mfn 1 '))).toMatch(/changed/);
    expect(problems.find((p) => p.includes('mfn 2 '))).toMatch(/free/);
  });

  it('rejects an insert outside machine memory', () => {
    const host = fakeHost(4, () => 0);
    const dedup = new InlineDedup();
    dedup.attach(host);
    expect(() => dedup.insert(asMfn(4), 0, 'miss')).toThrow(InvariantError);
    expect(() => dedup.insert(asMfn(-1), 0, 'miss')).toThrow(InvariantError);
  });
});

describe('InlineDedup rebuild', () => {
  it('purges tombstones at the same capacity when few frames are live', () => {
    // Pages [1, i] hash to 7 (one long probe run); pages [2, i] hash to 1000 + i (spread out).
    const host = fakeHost(64, (page) => (page[0] === 1 ? 7 : 1000 + page[1]!));
    const dedup = new InlineDedup({ initialCapacity: 64, maxLoadFactor: 0.5 });
    dedup.attach(host);
    let next = 1;
    const frameWith = (a: number, b: number) => {
      const mfn = host.frames.take(next++);
      const page = filledPage(0);
      page[0] = a;
      page[1] = b;
      host.memory.write(mfn, 0, page, 0, page.length);
      dedup.insert(mfn, host.memory.hashFrame(mfn), 'miss');
      return mfn;
    };
    const run = Array.from({ length: 29 }, (_, i) => frameWith(1, i));
    // The last frame of the run stays, so the 28 removed ahead of it become tombstones.
    for (const mfn of run.slice(0, 28)) dedup.remove(mfn);
    expect(dedup.stats()).toMatchObject({ size: 2, tombstones: 28, capacity: 64, rebuilds: 0 });
    const spread = [];
    while (dedup.stats().rebuilds === 0) {
      expect(spread.length).toBeLessThan(13);
      spread.push(frameWith(2, spread.length));
    }
    expect(dedup.stats()).toMatchObject({ capacity: 64, tombstones: 0, size: 2 + spread.length });
    const last = filledPage(0);
    last[0] = 1;
    last[1] = 28;
    expect(dedup.lookup(last, 7)).toBe(run[28]);
    expect(dedup.audit()).toEqual([]);
  });

  it('doubles the capacity when most of the limit is live', () => {
    const host = fakeHost(64, (page) => page[0]! * 256 + page[1]!);
    const dedup = new InlineDedup({ initialCapacity: 16, maxLoadFactor: 0.5 });
    dedup.attach(host);
    for (let i = 1; i <= 8; i++) {
      const mfn = host.frames.take(i);
      const page = filledPage(0);
      page[1] = i;
      host.memory.write(mfn, 0, page, 0, page.length);
      dedup.insert(mfn, host.memory.hashFrame(mfn), 'miss');
    }
    // Zero frame plus 7 frames filled the limit of 8 slots; the 8th insert doubled the table.
    expect(dedup.stats()).toMatchObject({ capacity: 32, rebuilds: 1, size: 9 });
    expect(dedup.audit()).toEqual([]);
  });
});
