import { describe, expect, it } from 'vitest';
import { createPart, INVALID_MFN, InvariantError, PluginError, pluginProblems } from '@pagevisor/types';
import plugin, { TWO_Q_DEFAULTS, TwoQPolicy } from './index.mjs';

const context = { frames: 64, numaNodes: 1, seed: 1, hashPage: () => 0, baseDir: '.' };

/** Evicts the way the hypervisor does: ask for a victim, then remove it. */
function evict(p) {
  const m = p.victim();
  if (m !== INVALID_MFN) p.remove(m);
  return m;
}

describe('2q eviction policy', () => {
  it('is an eviction-policy plugin with defaults, refusing bad and unknown options by name', () => {
    expect(pluginProblems(plugin, 'eviction-policy')).toEqual([]);
    expect(plugin.options({})).toEqual(TWO_Q_DEFAULTS);
    const part = createPart(plugin, './index.mjs', { a1inFraction: 0.5 }, context);
    expect([part.name, part.size, part.victim(), part.a1inFraction, part.ghostCapacity]).toEqual(['2q', 0, INVALID_MFN, 0.5, 0]);
    expect(createPart(plugin, './index.mjs', { ghostFraction: 0.5 }, context).ghostCapacity).toBe(32);
    let refused;
    try {
      createPart(plugin, './index.mjs', { a1inFraction: 1, ghostFraction: -0.1, kout: 3 }, context);
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(PluginError);
    expect(refused.issues.map((i) => i.path)).toEqual(['kout', 'a1inFraction', 'ghostFraction']);
    expect(() => plugin.options({ ghostFraction: '0.5' })).toThrow(/ghostFraction: must be a number in \[0, 1\]/);
    expect(() => new TwoQPolicy({ frames: 0 })).toThrow(/frames must be an integer/);
  });

  it('evicts frames never touched first, oldest first (A1in is a FIFO)', () => {
    const p = new TwoQPolicy({ frames: 16 });
    for (const m of [3, 1, 2]) p.insert(m);
    expect([p.size, p.victim(), p.victim()]).toEqual([3, 3, 3]); // victim changes nothing
    expect([evict(p), evict(p), evict(p), evict(p)]).toEqual([3, 1, 2, INVALID_MFN]);
    expect(p.audit()).toEqual([]);
  });

  it('promotes a frame touched in A1in to Am, which is LRU and evicted once A1in is within its share', () => {
    const p = new TwoQPolicy({ frames: 16, a1inFraction: 0.25 });
    for (let m = 0; m < 8; m++) p.insert(m);
    for (const m of [0, 1, 2, 3, 4, 5]) p.touch(m); // Am: 0..5 (5 most recent); A1in: 6, 7
    expect(p.stats()).toMatchObject({ a1in: 2, am: 6, promotions: 6 });
    p.touch(0); // 0 becomes Am's most recent
    // A1in holds 2 of 8 = 25%, not more: Am's least recent (1) goes first.
    expect(evict(p)).toBe(1);
    // Now 2 of 7 > 25%: A1in's oldest.
    expect(evict(p)).toBe(6);
    expect([evict(p), evict(p), evict(p), evict(p), evict(p), evict(p)]).toEqual([2, 3, 4, 7, 5, 0]);
    expect(p.audit()).toEqual([]);
  });

  it('remembers frames that left A1in as ghosts: inserted again, they go straight to Am', () => {
    const p = new TwoQPolicy({ frames: 8, ghostFraction: 0.25 }); // 2 ghosts
    for (const m of [0, 1, 2]) p.insert(m);
    expect([evict(p), evict(p), evict(p)]).toEqual([0, 1, 2]); // ghosts 1, 2 (0 forgotten)
    expect([p.queueOf(0), p.queueOf(1), p.queueOf(2), p.size]).toEqual(['none', 'a1out', 'a1out', 0]);
    p.insert(1);
    p.insert(0);
    expect([p.queueOf(1), p.queueOf(0)]).toEqual(['am', 'a1in']);
    expect(p.stats()).toMatchObject({ ghostHits: 1, ghostsForgotten: 1, a1out: 1 });
    // Leaving Am leaves no ghost.
    p.remove(1);
    expect(p.queueOf(1)).toBe('none');
    expect(p.audit()).toEqual([]);
  });

  it('names another victim after the hypervisor touches the one it could not evict', () => {
    // The pager's second chance: a failed eviction touches the victim and asks again.
    const p = new TwoQPolicy({ frames: 8 });
    for (const m of [4, 5, 6]) p.insert(m);
    const first = p.victim();
    p.touch(first);
    expect(p.victim()).not.toBe(first);
    p.touch(5);
    p.touch(6);
    const inAm = p.victim(); // everything is in Am now
    p.touch(inAm);
    expect(p.victim()).not.toBe(inAm);
  });

  it('ignores remove and touch of untracked frames; refuses a double insert and mfns outside the table', () => {
    const p = new TwoQPolicy({ frames: 4 });
    p.remove(2);
    p.touch(2);
    expect([p.size, p.has(2)]).toEqual([0, false]);
    p.insert(2);
    expect(() => p.insert(2)).toThrow(InvariantError);
    p.touch(2);
    expect(() => p.insert(2)).toThrow(/already tracked \(am\)/);
    for (const bad of [-1, 4, 1.5]) {
      expect(() => p.insert(bad)).toThrow(InvariantError);
      expect(() => p.touch(bad)).toThrow(InvariantError);
      expect(() => p.remove(bad)).toThrow(InvariantError);
    }
  });

  it('reset forgets every frame and ghost', () => {
    const p = new TwoQPolicy({ frames: 8, ghostFraction: 0.5 });
    for (let m = 0; m < 8; m++) p.insert(m);
    p.touch(3);
    evict(p);
    expect(p.stats().a1out).toBe(1);
    p.reset();
    expect([p.size, p.victim(), p.stats().a1out, p.queueOf(3)]).toEqual([0, INVALID_MFN, 0, 'none']);
    p.insert(3);
    expect(p.victim()).toBe(3);
    expect(p.audit()).toEqual([]);
  });

  it('keeps its lists sound under random operations, and victim is always a tracked frame', () => {
    const frames = 128;
    const p = new TwoQPolicy({ frames, a1inFraction: 0.3, ghostFraction: 0.2 });
    const tracked = new Set();
    let x = 12345;
    const rand = (n) => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x % n;
    };
    for (let i = 0; i < 20_000; i++) {
      const m = rand(frames);
      const op = rand(4);
      if (op === 0 && !tracked.has(m)) {
        p.insert(m);
        tracked.add(m);
      } else if (op === 1) {
        p.remove(m);
        tracked.delete(m);
      } else if (op === 2) p.touch(m);
      else {
        const v = evict(p);
        if (v === INVALID_MFN) expect(tracked.size).toBe(0);
        else expect(tracked.delete(v)).toBe(true);
      }
      expect(p.size).toBe(tracked.size);
      if (i % 1000 === 0) expect(p.audit()).toEqual([]);
    }
    expect(p.audit()).toEqual([]);
    expect(p.metadataBytes()).toBe(frames * 9);
  });
});
