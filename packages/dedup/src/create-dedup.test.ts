import { HypervisorError } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { createDedup, DEDUP_STRATEGIES, EsxDedup, InlineDedup, KsmDedup, NoDedup } from './index.js';

function refusal(f: () => unknown): HypervisorError {
  try {
    f();
  } catch (e) {
    if (e instanceof HypervisorError) return e;
    throw e;
  }
  throw new Error('expected a HypervisorError');
}

describe('createDedup', () => {
  it('builds every listed strategy under its own name', () => {
    expect(DEDUP_STRATEGIES).toEqual(['inline', 'ksm', 'esx', 'none']);
    for (const name of DEDUP_STRATEGIES) expect(createDedup(name).name).toBe(name);
    expect(createDedup('inline')).toBeInstanceOf(InlineDedup);
    expect(createDedup('ksm')).toBeInstanceOf(KsmDedup);
    expect(createDedup('esx')).toBeInstanceOf(EsxDedup);
    expect(createDedup('none')).toBeInstanceOf(NoDedup);
  });

  it('passes options to the strategy', () => {
    expect((createDedup('inline', { initialCapacity: 64 }) as InlineDedup).capacity).toBe(64);
    expect(createDedup('ksm', { pages_to_scan: 5, max_page_sharing: 2 }).knobs?.()).toMatchObject({ pages_to_scan: 5, max_page_sharing: 2 });
    expect(refusal(() => createDedup('inline', { maxLoadFactor: 2 })).errnoName).toBe('EINVAL');
    expect(refusal(() => createDedup('ksm', { max_page_sharing: 1 })).message).toMatch(/max_page_sharing/);
  });

  it('refuses unknown options, naming them and the known ones', () => {
    const e = refusal(() => createDedup('ksm', { pages_to_scna: 100 }));
    expect(e.errnoName).toBe('EINVAL');
    expect(e.detail).toMatch(/ksm has no option "pages_to_scna"; known: pages_to_scan, sleep_millisecs/);
    expect(refusal(() => createDedup('none', { anything: 1 })).detail).toMatch(/none has no option "anything"/);
  });

  it('refuses an unknown strategy with EINVAL', () => {
    const e = refusal(() => createDedup('vmware'));
    expect(e.errnoName).toBe('EINVAL');
    expect(e.detail).toMatch(/"vmware"; known: inline, ksm, esx, none/);
  });
});
