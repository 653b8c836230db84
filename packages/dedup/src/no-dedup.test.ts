import { asMfn, INVALID_MFN, InvariantError, PAGE_SIZE } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { fakeHost } from '../tests/fake-host.js';
import { NoDedup } from './index.js';

describe('NoDedup', () => {
  it('declares itself neither inline nor mapping populated pages to the zero frame', () => {
    const dedup = new NoDedup();
    expect([dedup.name, dedup.inline, dedup.populateZero]).toEqual(['none', false, false]);
  });

  it('indexes nothing: lookups miss, insert is a bug, remove and contains see nothing', () => {
    const host = fakeHost(4, () => 1);
    const dedup = new NoDedup();
    dedup.attach(host);
    // Not even the zero frame is indexed.
    expect(dedup.lookup(new Uint8Array(PAGE_SIZE), 1)).toBe(INVALID_MFN);
    expect(dedup.contains(host.zeroMfn)).toBe(false);
    expect(() => dedup.insert(asMfn(1), 1, 'miss')).toThrow(InvariantError);
    expect(dedup.contains(asMfn(1))).toBe(false);
    dedup.remove(asMfn(1));
    expect(dedup.size).toBe(0);
    expect(dedup.metadataBytes()).toBe(0);
    expect(dedup.stats()).toEqual({ lookups: 1, size: 0 });
    expect(dedup.audit()).toEqual([]);
  });

  it('audit reports a strategy that was never attached', () => {
    expect(new NoDedup().audit()).toEqual(['no dedup: not attached']);
  });

  it('refuses a second attach', () => {
    const dedup = new NoDedup();
    dedup.attach(fakeHost(2, () => 0));
    expect(() => dedup.attach(fakeHost(2, () => 0))).toThrow(InvariantError);
  });
});
