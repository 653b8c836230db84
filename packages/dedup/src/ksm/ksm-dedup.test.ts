import { asDomId, asGfn, asMfn, HypervisorError, INVALID_MFN, InvariantError, PAGE_SIZE, type DomId } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { machineHost, numberedPage } from '../../tests/machine-host.js';
import { SharingHost } from '../../tests/sharing-host.js';
import { BYTES_PER_RMAP_ITEM, DEFAULT_KSM_OPTIONS, KsmDedup } from './index.js';

describe('KsmDedup', () => {
  it('is a scanning strategy: not inline, no zero-frame populate, never looks up, refuses inserts', async () => {
    const ksm = new KsmDedup();
    expect([ksm.name, ksm.inline, ksm.populateZero, ksm.bytesPerRmapItem]).toEqual(['ksm', false, false, BYTES_PER_RMAP_ITEM]);
    expect(BYTES_PER_RMAP_ITEM).toBeLessThanOrEqual(16);
    const { host } = await machineHost(16);
    ksm.attach(host);
    expect(ksm.lookup(new Uint8Array(PAGE_SIZE), 0)).toBe(INVALID_MFN);
    expect(() => ksm.insert(asMfn(3), 0, 'miss')).toThrow(InvariantError);
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
    expect(ksm.domainStats(asDomId(4))).toEqual({ rmap_items: 0, merging_pages: 0, zero_pages: 0, profit: 0, merge_any: 0, mergeable: 0 });
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

describe('KsmDedup.isMergeable', () => {
  it('follows MADV_MERGEABLE, MADV_UNMERGEABLE, PR_SET_MEMORY_MERGE and domain destruction', async () => {
    const ksm = new KsmDedup({ pages_to_scan: 100 });
    expect(ksm.isMergeable(asDomId(1), asGfn(0))).toBe(false); // before attach
    const sh = await SharingHost.create(48);
    const a = sh.addDomain(1, 8, 0);
    const b = sh.addDomain(2, 8, 0);
    sh.attach(ksm);
    for (let g = 0; g < 8; g++) {
      sh.populate(a, g, numberedPage(1 + g));
      sh.populate(b, g, numberedPage(1 + g));
    }
    const row = (dom: DomId) => Array.from({ length: 8 }, (_, g) => (ksm.isMergeable(dom, asGfn(g)) ? 1 : 0));
    expect(row(a)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    ksm.advise(a, asGfn(2), 3, true);
    expect(row(a)).toEqual([0, 0, 1, 1, 1, 0, 0, 0]);
    expect([ksm.isMergeable(a, asGfn(-1)), ksm.isMergeable(a, asGfn(8)), ksm.isMergeable(asDomId(9), asGfn(2))]).toEqual([false, false, false]);
    ksm.setDomainMergeable(b, true);
    expect(row(b)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    for (let i = 0; i < 6; i++) ksm.wake(ksm.nextWakeNs());
    expect([2, 3, 4].map((g) => sh.mfnOf(a, g) === sh.mfnOf(b, g))).toEqual([true, true, true]);
    // MADV_UNMERGEABLE on gfn 3: unmerged, and no longer a candidate.
    ksm.advise(a, asGfn(3), 1, false);
    expect(row(a)).toEqual([0, 0, 1, 0, 1, 0, 0, 0]);
    expect(sh.mfnOf(a, 3)).not.toBe(sh.mfnOf(b, 3));
    ksm.setDomainMergeable(a, true);
    expect(row(a)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    ksm.setDomainMergeable(a, false);
    expect(row(a)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(row(b)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    ksm.domainDestroyed(b);
    expect(row(b)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect([sh.audit(), ksm.audit()]).toEqual([[], []]);
  });

  it('framesForKnob counts the frames run = 2 would take, and nothing for other knobs', async () => {
    const ksm = new KsmDedup({ pages_to_scan: 100 });
    expect(ksm.framesForKnob('run', 2)).toBe(0); // before attach: nothing merged
    const sh = await SharingHost.create(32);
    const doms = [sh.addDomain(1, 4, 0), sh.addDomain(2, 4, 0), sh.addDomain(3, 4, 0)];
    sh.attach(ksm);
    for (const dom of doms) for (let g = 0; g < 4; g++) sh.populate(dom, g, numberedPage(1 + g));
    for (const dom of doms) ksm.setDomainMergeable(dom, true);
    for (let i = 0; i < 6; i++) ksm.wake(ksm.nextWakeNs());
    expect(ksm.stats()).toMatchObject({ pages_shared: 4, pages_sharing: 8 });
    // 4 KSM pages of 3 mappings each: all unmerged, the last keeps the frame: 2 frames each.
    expect(ksm.framesForKnob('run', 2)).toBe(8);
    expect([ksm.framesForKnob('run', 0), ksm.framesForKnob('pages_to_scan', 2)]).toEqual([0, 0]);
    ksm.setKnob('run', 2);
    expect(ksm.framesForKnob('run', 2)).toBe(0);
  });
});
