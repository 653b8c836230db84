import { describe, expect, it } from 'vitest';
import { asMfn, HypervisorError, INVALID_MFN } from '@pagevisor/types';
import { ClockPolicy } from './clock-policy.js';
import {
  createEvictionPolicy,
  EVICTION_POLICIES,
  type EvictionPolicyName,
} from './create-eviction-policy.js';
import { LruPolicy } from './lru-policy.js';
import { RandomPolicy } from './random-policy.js';

describe('createEvictionPolicy', () => {
  it('lists every policy once', () => {
    expect([...EVICTION_POLICIES]).toEqual(['clock', 'lru', 'random']);
  });

  it('creates each policy by name', () => {
    expect(createEvictionPolicy('clock', { frames: 4 })).toBeInstanceOf(ClockPolicy);
    expect(createEvictionPolicy('lru', { frames: 4 })).toBeInstanceOf(LruPolicy);
    const r = createEvictionPolicy('random', { frames: 4, seed: 77 });
    expect(r).toBeInstanceOf(RandomPolicy);
    expect((r as RandomPolicy).seed).toBe(77);
    expect((createEvictionPolicy('random', { frames: 4 }) as RandomPolicy).seed).toBe(0);
  });

  it.each(EVICTION_POLICIES)('%s keeps the interface contract', (name) => {
    const p = createEvictionPolicy(name, { frames: 8 });
    expect(p.name).toBe(name);
    expect(p.victim()).toBe(INVALID_MFN);
    p.insert(asMfn(6));
    p.insert(asMfn(2));
    p.touch(asMfn(6));
    const v = p.victim();
    expect([2, 6]).toContain(v);
    p.remove(v);
    expect(p.size).toBe(1);
    expect(p.victim()).toBe(v === 2 ? 6 : 2);
    p.reset();
    expect(p.size).toBe(0);
    expect(p.victim()).toBe(INVALID_MFN);
  });

  it('rejects an unknown name and a bad frames option with EINVAL', () => {
    expect(() => createEvictionPolicy('fifo' as EvictionPolicyName, { frames: 4 })).toThrow(
      HypervisorError,
    );
    for (const name of EVICTION_POLICIES) {
      expect(() => createEvictionPolicy(name, { frames: 0 })).toThrow(/EINVAL/);
    }
  });
});
