import { describe, expect, it } from 'vitest';
import { createPart, INVALID_MFN, InvariantError, PAGE_SIZE, PluginError, pluginProblems } from '@pagevisor/types';
import plugin, { DEFAULT_CAPACITY, HotInlineDedup } from './index.mjs';

/** FNV-1a over the page: a stand-in for the machine's xxhash. */
function fnv(page) {
  let h = 0x811c9dc5;
  for (let i = 0; i < page.length; i++) h = Math.imul(h ^ page[i], 0x01000193);
  return h >>> 0;
}

/**
 * The little of a DedupHost this strategy uses: memory (compare, hash), the frame table's
 * isFree, the zero frame (mfn 0). `hash` may be a constant, to make every lookup compare.
 */
function fakeHost(frames, hash = fnv) {
  const ram = new Uint8Array(frames * PAGE_SIZE);
  const free = new Uint8Array(frames).fill(1);
  free[0] = 0;
  const frame = (mfn) => ram.subarray(mfn * PAGE_SIZE, (mfn + 1) * PAGE_SIZE);
  const memory = {
    frames,
    frameEquals: (mfn, page) => frame(mfn).every((b, i) => b === page[i]),
    hashFrame: (mfn) => hash(frame(mfn)),
    hashPage: (page) => hash(page),
  };
  const host = { memory, frames: { totalFrames: frames, isFree: (mfn) => free[mfn] === 1 }, zeroMfn: 0 };
  /** Puts a page filled with `fill` in a new frame `mfn` (live) and returns the page. */
  const put = (mfn, fill) => {
    const page = new Uint8Array(PAGE_SIZE).fill(fill);
    frame(mfn).set(page);
    free[mfn] = 0;
    return page;
  };
  return { host, put, frame, free };
}

/** A strategy attached to a fresh fake host, and a helper that offers frame `mfn` filled with `fill`. */
function setup(capacity, frames = 32, hash = fnv) {
  const h = fakeHost(frames, hash);
  const d = new HotInlineDedup({ capacity });
  d.attach(h.host);
  const offer = (mfn, fill, reason = 'miss') => {
    const page = h.put(mfn, fill);
    d.insert(mfn, h.host.memory.hashPage(page), reason);
    return page;
  };
  const find = (fill) => {
    const page = new Uint8Array(PAGE_SIZE).fill(fill);
    return d.lookup(page, h.host.memory.hashPage(page), 1);
  };
  return { ...h, d, offer, find };
}

describe('hot-inline dedup', () => {
  it('is a dedup plugin that checks its options, naming each wrong one', () => {
    expect(pluginProblems(plugin, 'dedup')).toEqual([]);
    expect(plugin.options({})).toEqual({ capacity: DEFAULT_CAPACITY });
    expect(plugin.options({ capacity: 8 })).toEqual({ capacity: 8 });
    for (const capacity of [0, -1, 1.5, '8', null, Number.NaN, 2 ** 31]) {
      expect(() => plugin.options({ capacity }), String(capacity)).toThrow(/capacity: must be a positive integer/);
    }
    const context = { frames: 16, numaNodes: 1, seed: 1, hashPage: fnv, baseDir: '.' };
    expect(() => createPart(plugin, './index.mjs', { capacity: 4, size: 9, lru: true }, context)).toThrow(PluginError);
    try {
      createPart(plugin, './index.mjs', { capacity: 4, size: 9, lru: true }, context);
    } catch (e) {
      expect(e.issues.map((i) => i.path)).toEqual(['size', 'lru']);
      expect(e.message).toMatch(/size: unknown option; known: capacity/);
    }
    const part = createPart(plugin, './index.mjs', { capacity: 4 }, context);
    expect([part.name, part.inline, part.populateZero, part.capacity]).toEqual(['hot-inline', true, true, 4]);
  });

  it('indexes the zero frame at attach, pinned, and finds it for a page of zeros', () => {
    const { d, find } = setup(2);
    expect(find(0)).toBe(0);
    d.remove(0); // never written nor freed: stays
    expect([d.contains(0), d.size, d.audit()]).toEqual([true, 1, []]);
  });

  it('finds frames by full compare and forgets removed ones', () => {
    const { d, offer, find } = setup(8);
    offer(3, 7);
    offer(4, 8, 'shared');
    expect(find(7)).toBe(3);
    expect(find(8)).toBe(4);
    expect(find(9)).toBe(INVALID_MFN);
    d.remove(3);
    d.remove(3); // twice: nothing more to forget
    d.remove(11); // never offered
    expect(d.contains(3)).toBe(false);
    expect(find(7)).toBe(INVALID_MFN);
    expect(d.stats()).toEqual({ lookups: 4, hits: 2, misses: 2, collisions: 0, inserts: 2, insertsShared: 1, declined: 0, evictions: 0, removes: 1, size: 2, capacity: 8 });
    expect(d.audit()).toEqual([]);
  });

  it('never returns a frame of other content, however the hashes collide', () => {
    const { d, offer, find } = setup(8, 16, () => 42);
    offer(1, 1);
    offer(2, 2);
    offer(3, 3);
    expect(find(2)).toBe(2);
    expect(find(5)).toBe(INVALID_MFN);
    expect(d.stats().collisions).toBeGreaterThan(0);
    d.remove(2);
    expect(find(2)).toBe(INVALID_MFN);
    expect(find(3)).toBe(3);
    expect(d.audit()).toEqual([]);
  });

  it('holds at most capacity entries, evicting the least recently used (a hit counts as a use)', () => {
    const { d, offer, find } = setup(4); // the zero frame and 3 others
    offer(1, 1);
    offer(2, 2);
    offer(3, 3);
    expect(d.size).toBe(4);
    expect(find(1)).toBe(1); // 1 is now the most recent: 2 is the least
    offer(4, 4);
    expect([d.contains(2), d.contains(1), d.contains(3), d.contains(4), d.size]).toEqual([false, true, true, true, 4]);
    offer(5, 5); // evicts 3
    expect([d.contains(3), find(3), find(0)]).toEqual([false, INVALID_MFN, 0]);
    expect(d.stats()).toMatchObject({ evictions: 2, size: 4, inserts: 5 });
    // An evicted frame may be offered again (it is not held).
    offer(2, 2, 'shared');
    expect(d.contains(2)).toBe(true);
    expect(d.audit()).toEqual([]);
  });

  it('declines every offer at capacity 1 (only the zero frame fits) and stays sound', () => {
    const { d, offer, find } = setup(1);
    offer(5, 5);
    expect([d.contains(5), find(5), d.size, d.stats().declined]).toEqual([false, INVALID_MFN, 1, 1]);
    expect(d.audit()).toEqual([]);
  });

  it('sizes its arrays to the machine when capacity exceeds it, and churns without leaking entries', () => {
    const { d, offer, free } = setup(1_000_000, 64);
    expect(d.metadataBytes()).toBe(64 * 24 + 2 * 128 * 4); // 64 entries (the machine), not a million
    for (let round = 0; round < 5; round++) {
      for (let m = 1; m < 64; m++) offer(m, (m + round) & 0xff);
      expect(d.size).toBe(64);
      for (let m = 1; m < 64; m += 2) {
        d.remove(m);
        free[m] = 1;
      }
      expect(d.audit()).toEqual([]);
      for (let m = 2; m < 64; m += 2) d.remove(m);
      expect(d.size).toBe(1);
    }
  });

  it('audits: a frame changed or freed while indexed', () => {
    const { d, offer, frame, free } = setup(8);
    offer(1, 1);
    offer(2, 2);
    frame(1)[100] = 9; // changed behind the index's back: a remove was missed
    free[2] = 1; // freed while indexed
    const problems = d.audit();
    expect(problems).toHaveLength(2);
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(/mfn 1 changed while indexed/), expect.stringMatching(/mfn 2 is indexed but free/)]));
  });

  it('refuses use before attach, a second attach, a frame offered twice and an mfn outside the machine', () => {
    const d = new HotInlineDedup({ capacity: 4 });
    expect(d.audit()).toEqual(['hot-inline dedup: not attached']);
    expect(() => d.lookup(new Uint8Array(PAGE_SIZE), 0, 1)).toThrow(InvariantError);
    expect(() => d.insert(1, 0, 'miss')).toThrow(/before attach/);
    const { host, put } = fakeHost(8);
    d.attach(host);
    expect(() => d.attach(host)).toThrow(/attach called twice/);
    d.insert(1, fnv(put(1, 1)), 'miss');
    expect(() => d.insert(1, fnv(put(1, 1)), 'shared')).toThrow(/indexed already/);
    expect(() => d.insert(8, 0, 'miss')).toThrow(/outside the 8 frames/);
    expect(() => d.contains(-1)).toThrow(InvariantError);
  });
});
