import { asDomId, asGfn, asMfn, HypervisorError, INVALID_MFN, InvariantError, PAGE_SIZE } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { machineHost } from '../../tests/machine-host.js';
import { BYTES_PER_RMAP_ITEM, DEFAULT_KSM_OPTIONS, KsmDedup } from './index.js';

describe('KsmDedup', () => {
  it('is a scanning strategy: not inline, no zero-frame populate, never looks up, refuses inserts', async () => {
    const ksm = new KsmDedup();
    expect([ksm.name, ksm.inline, ksm.populateZero, ksm.bytesPerRmapItem]).toEqual(['ksm', false, false, BYTES_PER_RMAP_ITEM]);
    expect(BYTES_PER_RMAP_ITEM).toBeLessThanOrEqual(16);
    const { host } = await machineHost(16);
    ksm.attach(host);
    expect(ksm.lookup(new Uint8Array(PAGE_SIZE), 0)).toBe(INVALID_MFN);
    expect(() => ksm.insert(asMfn(3), 0)).toThrow(InvariantError);
    expect(() => ksm.attach(host)).toThrow(/attach called twice/);
    ksm.remove(asMfn(3));
    expect([ksm.contains(asMfn(3)), ksm.size]).toEqual([false, 0]);
    expect(ksm.audit()).toEqual([]);
  });

  it('before attach: no wake-ups, no KSM pages, knobs settable, advice refused', () => {
    const ksm = new KsmDedup({ pages_to_scan: 5 });
    expect(ksm.nextWakeNs()).toBe(Infinity);
    ksm.wake(0);
    ksm.remove(asMfn(1));
    expect(ksm.contains(asMfn(1))).toBe(false);
    expect(ksm.audit()).toEqual([]);
    expect(ksm.knobs()).toEqual({ ...DEFAULT_KSM_OPTIONS, pages_to_scan: 5 });
    ksm.setKnob('run', 2);
    ksm.setKnob('max_page_sharing', 10);
    expect(ksm.knobs()).toMatchObject({ run: 2, max_page_sharing: 10 });
    expect(() => ksm.advise(asDomId(1), asGfn(0), 1, true)).toThrow(/madvise before attach/);
    expect(ksm.stats()).toMatchObject({ pages_shared: 0, pages_sharing: 0, full_scans: 0, general_profit: 0 });
    expect(ksm.domainStats(asDomId(4))).toEqual({ rmap_items: 0, merging_pages: 0, zero_pages: 0, profit: 0 });
  });

  it('refuses bad options and knobs with EINVAL naming them', () => {
    expect(() => new KsmDedup({ max_page_sharing: 1 })).toThrow(/EINVAL: max_page_sharing must be an integer in \[2,/);
    const ksm = new KsmDedup();
    expect(() => ksm.setKnob('run', 3)).toThrow(HypervisorError);
    expect(() => ksm.setKnob('run', 3)).toThrow(/ksm_set_knob: EINVAL: run must be/);
    expect(() => ksm.setKnob('sleep', 3)).toThrow(/unknown KSM knob/);
    expect(ksm.knobs()['run']).toBe(1);
  });

  it('counts the metadata of its arrays', async () => {
    const ksm = new KsmDedup();
    const { host } = await machineHost(16);
    ksm.attach(host);
    expect(ksm.metadataBytes()).toBeGreaterThan(0);
    expect(ksm.metadataBytes()).toBeLessThan(8192);
  });
});
