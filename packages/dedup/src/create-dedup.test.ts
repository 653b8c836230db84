import { HypervisorError, type DedupIndex } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { SharingHost } from '../tests/sharing-host.js';
import { createDedup, DEDUP_STRATEGIES, EsxDedup, InlineDedup, KsmDedup, NoDedup, PartitionedDedup } from './index.js';

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

describe('createDedup with trustGroups', () => {
  it('partitions any strategy by trust group, with its options', () => {
    for (const name of DEDUP_STRATEGIES) {
      const d = createDedup(name, { trustGroups: true });
      expect(d).toBeInstanceOf(PartitionedDedup);
      expect(d.name).toBe(`${name}+groups`);
    }
    const ksm = createDedup('ksm', { pages_to_scan: 5, trustGroups: true }) as PartitionedDedup;
    expect(ksm.knobs!()['pages_to_scan']).toBe(5);
    expect(ksm.inner(0)).toBeInstanceOf(KsmDedup);
    expect(createDedup('ksm', { pages_to_scan: 5, trustGroups: false })).toBeInstanceOf(KsmDedup);
  });

  it('refuses a trustGroups that is not a boolean, and bad options of the strategy at once', () => {
    expect(refusal(() => createDedup('inline', { trustGroups: 1 })).detail).toMatch(/trustGroups must be a boolean, got 1/);
    expect(refusal(() => createDedup('ksm', { max_page_sharing: 1, trustGroups: true })).message).toMatch(/max_page_sharing/);
    const e = refusal(() => createDedup('esx', { sed: 3, trustGroups: true }));
    expect(e.detail).toMatch(/esx has no option "sed"; known: .*seed.*, trustGroups$/);
    expect(refusal(() => createDedup('none', { x: 1 })).detail).toBe('none has no option "x"; known: trustGroups');
  });

  it('gives ESX groups other than 0 seeds of their own, group 0 the one asked for', async () => {
    const draws = async (d: DedupIndex, group: number) => {
      const sh = await SharingHost.create(8);
      const dom = sh.addDomain(1, 64, group);
      sh.attach(d);
      for (let g = 0; g < 64; g++) sh.populateZero(dom, g);
      const table = sh.p2m.table(dom)!;
      const reads: number[] = [];
      const type = table.type.bind(table);
      table.type = (gfn) => {
        reads.push(gfn);
        return type(gfn);
      };
      d.setDomainMergeable!(dom, true);
      d.wake!(d.nextWakeNs!());
      return reads;
    };
    const opts = { seed: 7, scanRatePerDomainPagesPerS: 200, populateZero: true };
    const plain = await draws(createDedup('esx', opts), 0);
    expect(plain.length).toBe(20);
    expect(await draws(createDedup('esx', { ...opts, trustGroups: true }), 0)).toEqual(plain);
    expect(await draws(createDedup('esx', { ...opts, trustGroups: true }), 1)).not.toEqual(plain);
  });
});
