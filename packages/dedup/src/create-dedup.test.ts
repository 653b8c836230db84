import { HypervisorError } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { createDedup, DEDUP_STRATEGIES, InlineDedup, NoDedup, type DedupStrategy } from './index.js';

describe('createDedup', () => {
  it('builds every listed strategy under its own name', () => {
    expect(DEDUP_STRATEGIES).toEqual(['inline', 'none']);
    for (const name of DEDUP_STRATEGIES) expect(createDedup(name).name).toBe(name);
    expect(createDedup('inline')).toBeInstanceOf(InlineDedup);
    expect(createDedup('none')).toBeInstanceOf(NoDedup);
  });

  it('passes options to the inline strategy', () => {
    const dedup = createDedup('inline', { initialCapacity: 64 }) as InlineDedup;
    expect(dedup.capacity).toBe(64);
    expect(() => createDedup('inline', { maxLoadFactor: 2 })).toThrow(HypervisorError);
  });

  it('refuses an unknown strategy with EINVAL', () => {
    try {
      createDedup('ksm' as DedupStrategy);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(HypervisorError);
      expect((e as HypervisorError).errnoName).toBe('EINVAL');
      expect((e as HypervisorError).detail).toMatch(/"ksm"/);
    }
  });
});
