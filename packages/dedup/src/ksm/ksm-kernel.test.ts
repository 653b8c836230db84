import { asDomId, asGfn, PAGE_SIZE, type DomId } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { numberedPage } from '../../tests/machine-host.js';
import { SharingHost } from '../../tests/sharing-host.js';
import { PartitionedDedup } from '../partitioned-dedup.js';
import { BYTES_PER_RMAP_ITEM, KSM_RMAP_ITEM_BYTES, KsmDedup, type KsmOptions } from './index.js';

// What Linux 6.18's mm/ksm.c counts, case by case, where pagevisor once counted otherwise.

async function host(opts: KsmOptions, doms: number[], frames = 4096): Promise<{ sh: SharingHost; ksm: KsmDedup; ids: DomId[] }> {
  const sh = await SharingHost.create(frames);
  const ids = doms.map((size, i) => sh.addDomain(i + 1, size, 0));
  const ksm = new KsmDedup(opts);
  sh.attach(ksm);
  return { sh, ksm, ids };
}

function stat(ksm: KsmDedup, name: string): number {
  return ksm.stats()[name]!;
}

/** Wakes at the scanner's own times until `n` more full scans are done; returns the wakes. */
function fullScans(ksm: KsmDedup, n: number): number {
  const target = stat(ksm, 'full_scans') + n;
  let wakes = 0;
  while (stat(ksm, 'full_scans') < target) {
    ksm.wake(ksm.nextWakeNs());
    if (++wakes > 100_000) throw new Error('no progress');
  }
  return wakes;
}

describe('KSM as Linux counts it: general_profit and ksm_stat profit', () => {
  it('charge sizeof(struct ksm_rmap_item), 64 bytes on x86_64, per rmap item; metadataBytes stays pagevisor\'s own', async () => {
    const { sh, ksm, ids } = await host({}, [8, 8]);
    for (const d of ids) for (let g = 0; g < 8; g++) sh.populate(d, g, numberedPage(7));
    for (const d of ids) ksm.setDomainMergeable(d, true);
    fullScans(ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 15, rmap_items: 16 });
    expect(KSM_RMAP_ITEM_BYTES).toBe(64);
    // Linux: general_profit = (pages_sharing + ksm_zero_pages) * PAGE_SIZE - ksm_rmap_items * 64.
    expect(stat(ksm, 'general_profit')).toBe(15 * PAGE_SIZE - 16 * 64);
    // ksm_process_profit = (ksm_merging_pages + ksm_zero_pages) * PAGE_SIZE - ksm_rmap_items * 64.
    expect(ksm.domainStats(ids[0]!)).toEqual({ rmap_items: 8, merging_pages: 8, zero_pages: 0, profit: 8 * PAGE_SIZE - 8 * 64, merge_any: 1, mergeable: 1 });
    // pagevisor's own rmap items are 15 bytes of typed arrays: its metadata, not KSM's profit.
    expect([ksm.bytesPerRmapItem, BYTES_PER_RMAP_ITEM]).toEqual([15, 15]);
    expect(ksm.metadataBytes()).toBeLessThan(16 * KSM_RMAP_ITEM_BYTES + 8192);
  });

  it('count zero pages in both, at 64 bytes an item', async () => {
    const { sh, ksm, ids } = await host({ use_zero_pages: 1 }, [10]);
    for (let g = 0; g < 10; g++) sh.populate(ids[0]!, g, g < 6 ? new Uint8Array(PAGE_SIZE) : numberedPage(3));
    ksm.setDomainMergeable(ids[0]!, true);
    fullScans(ksm, 2);
    expect(ksm.stats()).toMatchObject({ ksm_zero_pages: 6, pages_sharing: 3, rmap_items: 10 });
    expect(stat(ksm, 'general_profit')).toBe((3 + 6) * PAGE_SIZE - 10 * 64);
    expect(ksm.domainStats(ids[0]!)['profit']).toBe((4 + 6) * PAGE_SIZE - 10 * 64);
  });
});

describe('KSM as Linux counts it: ksm_zero_pages', () => {
  it('drops when the host says a page KSM put on the zero frame leaves it (zeroPageUnmapped), not at the next scan; once', async () => {
    const { sh, ksm, ids } = await host({ use_zero_pages: 1 }, [6]);
    const dom = ids[0]!;
    for (let g = 0; g < 6; g++) sh.populate(dom, g, new Uint8Array(PAGE_SIZE));
    ksm.setDomainMergeable(dom, true);
    fullScans(ksm, 2);
    expect([stat(ksm, 'ksm_zero_pages'), ksm.domainStats(dom)['zero_pages']]).toEqual([6, 6]);
    sh.writePage(dom, 0, numberedPage(1)); // its copy-on-write fault
    sh.release(dom, 1); // its unmap
    expect([stat(ksm, 'ksm_zero_pages'), ksm.domainStats(dom)['zero_pages']]).toEqual([4, 4]);
    // MADV_UNMERGEABLE: the unmerge's own fault counts it out, and only that.
    ksm.advise(dom, asGfn(2), 1, false);
    expect(stat(ksm, 'ksm_zero_pages')).toBe(3);
    // A page of another domain, or one KSM did not merge, is not KSM's to count out.
    ksm.zeroPageUnmapped(dom, asGfn(2));
    ksm.zeroPageUnmapped(asDomId(9), asGfn(0));
    expect(stat(ksm, 'ksm_zero_pages')).toBe(3);
    fullScans(ksm, 1);
    expect(stat(ksm, 'ksm_zero_pages')).toBe(3);
    expect([ksm.audit(), sh.audit()]).toEqual([[], []]);
  });

  it('PartitionedDedup tells the hook to the group of the domain', async () => {
    const sh = await SharingHost.create(256);
    const a = sh.addDomain(1, 4, 0);
    const b = sh.addDomain(2, 4, 1);
    const ksm = new PartitionedDedup(() => new KsmDedup({ use_zero_pages: 1 }));
    sh.attach(ksm);
    for (const d of [a, b]) for (let g = 0; g < 4; g++) sh.populate(d, g, new Uint8Array(PAGE_SIZE));
    for (const d of [a, b]) ksm.setDomainMergeable!(d, true);
    for (let i = 0; i < 20; i++) ksm.wake!(ksm.nextWakeNs!());
    expect(ksm.stats()['ksm_zero_pages']).toBe(8);
    sh.writePage(b, 3, numberedPage(5));
    expect([ksm.stats()['ksm_zero_pages'], ksm.domainStats!(b)['zero_pages'], ksm.domainStats!(a)['zero_pages']]).toEqual([7, 3, 4]);
    expect(ksm.audit()).toEqual([]);
  });
});

describe('KSM as Linux counts it: a full scan ends on the call after its last page', () => {
  it('1,000 pages at pages_to_scan 100: ten wakes scan them, the eleventh counts the full scan and scans nothing', async () => {
    const { sh, ksm, ids } = await host({ pages_to_scan: 100, smart_scan: 0 }, [1000]);
    for (let g = 0; g < 1000; g++) sh.populate(ids[0]!, g, numberedPage(g));
    ksm.setDomainMergeable(ids[0]!, true);
    for (let w = 1; w <= 10; w++) {
      ksm.wake(ksm.nextWakeNs());
      expect([stat(ksm, 'pages_scanned'), stat(ksm, 'full_scans')]).toEqual([100 * w, 0]);
    }
    // ksm_do_scan's next call of scan_get_next_rmap_item runs off the end of the mm list:
    // full_scans++, and the batch returns with nothing scanned.
    ksm.wake(ksm.nextWakeNs());
    expect([stat(ksm, 'pages_scanned'), stat(ksm, 'full_scans')]).toEqual([1000, 1]);
    // The next wake starts the next full scan.
    ksm.wake(ksm.nextWakeNs());
    expect([stat(ksm, 'pages_scanned'), stat(ksm, 'full_scans')]).toEqual([1100, 1]);
    expect(fullScans(ksm, 1)).toBe(10);
    expect(stat(ksm, 'pages_scanned')).toBe(2000);
  });

  it.each([
    [1000, 11],
    [1050, 11],
    [999, 10],
    [100, 2],
    [1, 1],
  ])('%i pages at pages_to_scan 100 take %i wakes a full scan (floor(N / 100) + 1)', async (n, wakes) => {
    const { sh, ksm, ids } = await host({ pages_to_scan: 100, smart_scan: 0 }, [n]);
    for (let g = 0; g < n; g++) sh.populate(ids[0]!, g, numberedPage(g));
    ksm.setDomainMergeable(ids[0]!, true);
    const t0 = ksm.nextWakeNs();
    expect(fullScans(ksm, 1)).toBe(wakes);
    expect(stat(ksm, 'pages_scanned')).toBe(n);
    // sleep_millisecs 20 after each batch.
    expect(ksm.nextWakeNs() - t0).toBe(wakes * 20e6);
    expect(fullScans(ksm, 1)).toBe(wakes);
    expect(stat(ksm, 'pages_scanned')).toBe(2 * n);
  });

  it('a page that appears after the last page was scanned, but before the scan ran off the end, is scanned in this full scan', async () => {
    const { sh, ksm, ids } = await host({ pages_to_scan: 10, smart_scan: 0 }, [20]);
    const dom = ids[0]!;
    for (let g = 0; g < 10; g++) sh.populate(dom, g, numberedPage(g));
    ksm.setDomainMergeable(dom, true);
    ksm.wake(ksm.nextWakeNs());
    expect([stat(ksm, 'pages_scanned'), stat(ksm, 'full_scans')]).toEqual([10, 0]);
    // ksm_scan.address is past gfn 9; gfn 15 is further on in the same mm.
    sh.populate(dom, 15, numberedPage(15));
    ksm.wake(ksm.nextWakeNs());
    expect([stat(ksm, 'pages_scanned'), stat(ksm, 'full_scans'), stat(ksm, 'rmap_items')]).toEqual([11, 1, 11]);
  });

  it('a domain that becomes mergeable during a full scan joins the list just behind the cursor (__ksm_enter): scanned from the next full scan, before the domain being scanned', async () => {
    const { sh, ksm, ids } = await host({ pages_to_scan: 5, smart_scan: 0 }, [10, 10, 10]);
    const [a, b, c] = ids as [DomId, DomId, DomId];
    for (const d of ids) for (let g = 0; g < 10; g++) sh.populate(d, g, numberedPage(100 * d + g));
    ksm.setDomainMergeable(a, true);
    ksm.setDomainMergeable(b, true);
    ksm.wake(ksm.nextWakeNs()); // a's gfns 0-4
    ksm.setDomainMergeable(c, true); // the cursor is in a: c goes in front of a
    for (let w = 0; w < 3; w++) ksm.wake(ksm.nextWakeNs()); // a's 5-9, b's 0-4, b's 5-9
    expect(stat(ksm, 'full_scans')).toBe(0);
    ksm.wake(ksm.nextWakeNs()); // runs off the end: c was not in this scan
    expect([stat(ksm, 'full_scans'), stat(ksm, 'pages_scanned'), ksm.domainStats(c)['rmap_items']]).toEqual([1, 20, 0]);
    ksm.wake(ksm.nextWakeNs()); // the next scan starts with c
    expect([ksm.domainStats(c)['rmap_items'], stat(ksm, 'pages_scanned')]).toEqual([5, 25]);
    ksm.wake(ksm.nextWakeNs());
    ksm.wake(ksm.nextWakeNs());
    expect(ksm.domainStats(a)['rmap_items']).toBe(10);
    expect(stat(ksm, 'pages_scanned')).toBe(35);
    expect(ksm.audit()).toEqual([]);
  });

  it('between full scans a new domain goes to the end of the list', async () => {
    const { sh, ksm, ids } = await host({ pages_to_scan: 5, smart_scan: 0 }, [5, 5]);
    const [a, b] = ids as [DomId, DomId];
    for (const d of ids) for (let g = 0; g < 5; g++) sh.populate(d, g, numberedPage(100 * d + g));
    ksm.setDomainMergeable(a, true);
    fullScans(ksm, 1);
    ksm.setDomainMergeable(b, true);
    ksm.wake(ksm.nextWakeNs());
    expect([ksm.domainStats(a)['rmap_items'], ksm.domainStats(b)['rmap_items']]).toEqual([5, 0]);
    ksm.wake(ksm.nextWakeNs());
    expect(ksm.domainStats(b)['rmap_items']).toBe(5);
  });
});

describe('KSM as Linux counts it: sleep_millisecs 0', () => {
  it('ksmd runs batch after batch: each takes the simulated time of its scan work, at least 1 µs, and the clock always advances', async () => {
    const { sh, ksm, ids } = await host({ pages_to_scan: 100, sleep_millisecs: 0 }, [250, 250]);
    for (const d of ids) for (let g = 0; g < 250; g++) sh.populate(d, g, numberedPage(g % 50));
    for (const d of ids) ksm.setDomainMergeable(d, true);
    let t = ksm.nextWakeNs();
    let wakes = 0;
    while (stat(ksm, 'full_scans') < 2) {
      const cpu0 = sh.cpuNs;
      ksm.wake(t);
      wakes++;
      const next = ksm.nextWakeNs();
      // The simulator's event loop requires this: a wake-up strictly after the last one.
      expect(next).toBeGreaterThan(t);
      expect(next - t).toBe(Math.max(1000, sh.cpuNs - cpu0));
      t = next;
      if (wakes > 100) throw new Error('no progress');
    }
    // 500 pages: 5 batches and the one that runs off the end, per full scan.
    expect(wakes).toBe(12);
    expect(ksm.stats()).toMatchObject({ pages_shared: 50, pages_sharing: 450, pages_scanned: 1000 });
  });

  it('the batch that only runs off the end of the list costs the 1 µs floor', async () => {
    const { sh, ksm, ids } = await host({ pages_to_scan: 10, sleep_millisecs: 0, smart_scan: 0 }, [10]);
    for (let g = 0; g < 10; g++) sh.populate(ids[0]!, g, numberedPage(g));
    ksm.setDomainMergeable(ids[0]!, true);
    ksm.wake(0);
    expect(ksm.nextWakeNs()).toBeGreaterThan(1000);
    const t = ksm.nextWakeNs();
    ksm.wake(t);
    expect(stat(ksm, 'full_scans')).toBe(1);
    expect(ksm.nextWakeNs()).toBe(t + 1000);
  });

  it('pages_to_scan 0 with sleep_millisecs 0 scans nothing and asks for no wake-up until a knob changes', async () => {
    const { sh, ksm, ids } = await host({ pages_to_scan: 0, sleep_millisecs: 0 }, [4]);
    for (let g = 0; g < 4; g++) sh.populate(ids[0]!, g, numberedPage(g));
    ksm.setDomainMergeable(ids[0]!, true);
    expect(ksm.nextWakeNs()).toBe(Infinity);
    ksm.setKnob('pages_to_scan', 100);
    expect(ksm.nextWakeNs()).toBe(0);
    ksm.wake(0);
    expect(stat(ksm, 'pages_scanned')).toBe(4);
  });

  it('writing sleep_millisecs wakes ksmd at once (wake_up_interruptible(&ksm_iter_wait)), not at the end of the old sleep', async () => {
    const { sh, ksm, ids } = await host({ pages_to_scan: 10 }, [20]);
    for (let g = 0; g < 20; g++) sh.populate(ids[0]!, g, numberedPage(g));
    ksm.setDomainMergeable(ids[0]!, true);
    ksm.wake(5e6);
    expect(ksm.nextWakeNs()).toBe(25e6);
    ksm.setKnob('sleep_millisecs', 0);
    // Due at once: no later than the last wake (the host wakes it at its present time).
    expect(ksm.nextWakeNs()).toBeLessThanOrEqual(5e6);
    ksm.setKnob('sleep_millisecs', 0); // unchanged: no wake-up
    ksm.wake(7e6);
    expect(ksm.nextWakeNs()).toBeGreaterThan(7e6);
    expect(ksm.nextWakeNs()).toBeLessThan(8e6);
  });
});

describe('KSM as Linux counts it: stale KSM pages are pruned lazily', () => {
  it('a KSM page whose last mapping is written stays counted until the scan reaches one of its rmap items, which prunes all of them', async () => {
    const { sh, ksm, ids } = await host({ pages_to_scan: 1, smart_scan: 0 }, [4]);
    const dom = ids[0]!;
    sh.populate(dom, 0, numberedPage(5));
    sh.populate(dom, 1, numberedPage(5));
    sh.populate(dom, 2, numberedPage(6));
    sh.populate(dom, 3, numberedPage(5));
    ksm.setDomainMergeable(dom, true);
    fullScans(ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 2, pages_unshared: 1 });
    const kpage = sh.mfnOf(dom, 0);
    for (const g of [3, 1, 0]) sh.writePage(dom, g, numberedPage(50 + g)); // gfn 0 last: its frame was the KSM page
    // The KSM page is gone (its frame may be reused), but its stable node and items are not.
    expect(ksm.contains(kpage)).toBe(false);
    expect(ksm.size).toBe(0);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 2 });
    expect(ksm.domainStats(dom)).toMatchObject({ merging_pages: 3 });
    expect([ksm.audit(), sh.audit()]).toEqual([[], []]);
    // The next page scanned is gfn 0: remove_rmap_item_from_tree finds the node stale and
    // remove_node_from_stable_tree takes all three items off it.
    ksm.wake(ksm.nextWakeNs());
    expect(stat(ksm, 'pages_scanned')).toBe(2 * 4 + 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 0, pages_sharing: 0 });
    expect(ksm.domainStats(dom)).toMatchObject({ merging_pages: 0, rmap_items: 4 });
    expect(ksm.audit()).toEqual([]);
  });

  it('a stable tree search that meets a stale KSM page prunes it, before the scan reaches any of its items', async () => {
    const { sh, ksm, ids } = await host({ pages_to_scan: 1, smart_scan: 0 }, [1, 2]);
    const [a, b] = ids as [DomId, DomId];
    sh.populate(a, 0, numberedPage(9));
    sh.populate(b, 0, numberedPage(9));
    sh.populate(b, 1, numberedPage(9));
    ksm.setDomainMergeable(b, true);
    fullScans(ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 1 });
    ksm.wake(ksm.nextWakeNs()); // b's gfn 0: the cursor is in b
    ksm.setDomainMergeable(a, true); // a goes in front of b, from the next full scan
    fullScans(ksm, 1);
    fullScans(ksm, 1); // a's page gets its checksum; b's pages still map the KSM page
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 1, rmap_items: 3 });
    sh.writePage(b, 0, numberedPage(1));
    sh.writePage(b, 1, numberedPage(2)); // the last mapping: the KSM page is gone, its node stale
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 1 });
    // a's page comes first: stable_tree_search meets the stale node, prunes it (both of b's
    // items with it), searches again and finds nothing; the page joins the unstable tree.
    ksm.wake(ksm.nextWakeNs());
    expect(ksm.stats()).toMatchObject({ pages_shared: 0, pages_sharing: 0, pages_unshared: 1 });
    expect(ksm.domainStats(b)).toMatchObject({ merging_pages: 0, rmap_items: 2 });
    expect([ksm.audit(), sh.audit()]).toEqual([[], []]);
  });

  it('a chain keeps a stale dup in stable_node_dups until it is pruned, and an emptied chain in stable_node_chains until a search meets it', async () => {
    const { sh, ksm, ids } = await host({ max_page_sharing: 2, smart_scan: 0 }, [6]);
    const dom = ids[0]!;
    for (let g = 0; g < 4; g++) sh.populate(dom, g, numberedPage(9));
    ksm.setDomainMergeable(dom, true);
    fullScans(ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 2, pages_sharing: 2, stable_node_chains: 1, stable_node_dups: 2 });
    // The pages go (decrease_reservation): both KSM pages are freed, nothing is counted out yet.
    for (let g = 0; g < 4; g++) sh.release(dom, g);
    expect(ksm.size).toBe(0);
    expect(ksm.stats()).toMatchObject({ pages_shared: 2, pages_sharing: 2, stable_node_chains: 1, stable_node_dups: 2 });
    expect([ksm.audit(), sh.audit()]).toEqual([[], []]);
    // The scan frees the items of the pages gone, and so prunes both dups; the chain, left
    // empty, stays in the tree: no search meets it, as no page is left to search.
    fullScans(ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 0, pages_sharing: 0, stable_node_chains: 1, stable_node_dups: 0, rmap_items: 0 });
    fullScans(ksm, 3);
    expect(stat(ksm, 'stable_node_chains')).toBe(1);
    expect(ksm.audit()).toEqual([]);
    // A page of that content searches the stable tree: stable_node_dup finds no dup and frees the chain.
    sh.populate(dom, 4, numberedPage(9));
    fullScans(ksm, 2);
    expect(ksm.stats()).toMatchObject({ stable_node_chains: 0, stable_node_dups: 0, pages_unshared: 1 });
    expect(ksm.audit()).toEqual([]);
  });

  it.each([
    [1e9, 'before its prune time, a search stops at the first dup with room: the stale dup behind it stays counted', { stable_node_chains: 1, stable_node_dups: 2, pages_shared: 2, pages_sharing: 4 }],
    [0, 'past its prune time, a search walks every dup: the stale one is pruned, and the chain, left one dup, collapses', { stable_node_chains: 0, stable_node_dups: 0, pages_shared: 1, pages_sharing: 2 }],
  ] as const)('stable_node_chains_prune_millisecs %d: %s', async (pruneMs, _what, after) => {
    const { sh, ksm, ids } = await host({ pages_to_scan: 1, max_page_sharing: 3, smart_scan: 0, stable_node_chains_prune_millisecs: pruneMs }, [5, 1]);
    const [dom, p] = ids as [DomId, DomId];
    for (let g = 0; g < 5; g++) sh.populate(dom, g, numberedPage(9));
    sh.populate(p, 0, numberedPage(9));
    ksm.setDomainMergeable(dom, true);
    fullScans(ksm, 2);
    // gfns 0-2 on the first KSM page (full), 3-4 on the second, the head of the chain (room for one).
    expect(ksm.stats()).toMatchObject({ pages_shared: 2, pages_sharing: 3, stable_node_chains: 1, stable_node_dups: 2 });
    ksm.wake(ksm.nextWakeNs());
    ksm.setDomainMergeable(p, true); // in front of dom from the next full scan
    fullScans(ksm, 1);
    fullScans(ksm, 1); // p's page gets its checksum
    for (let g = 0; g < 3; g++) sh.release(dom, g); // the first KSM page goes: a stale dup behind the head
    expect(ksm.stats()).toMatchObject({ pages_shared: 2, pages_sharing: 3, stable_node_dups: 2 });
    // The next batch scans p's page: its stable tree search meets the chain and merges the page
    // into the head dup; dom's items, which would prune the stale dup, are not reached yet.
    ksm.wake(ksm.nextWakeNs());
    expect(ksm.stats()).toMatchObject({ ...after, pages_scanned: 2 * 5 + 5 + 6 + 1 });
    expect(ksm.domainStats(p)['merging_pages']).toBe(1);
    expect([ksm.audit(), sh.audit()]).toEqual([[], []]);
    // The rest of the scan frees the items of the pages gone: the stale dup is pruned either way.
    fullScans(ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 2, stable_node_dups: pruneMs === 0 ? 0 : 1, rmap_items: 3 });
    expect(ksm.audit()).toEqual([]);
  });

  it('a new max_page_sharing, with pages_shared 0, goes through remove_all_stable_nodes: an emptied chain is freed', async () => {
    const { sh, ksm, ids } = await host({ max_page_sharing: 2, smart_scan: 0 }, [4]);
    const dom = ids[0]!;
    for (let g = 0; g < 4; g++) sh.populate(dom, g, numberedPage(9));
    ksm.setDomainMergeable(dom, true);
    fullScans(ksm, 2);
    for (let g = 0; g < 4; g++) sh.release(dom, g);
    fullScans(ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 0, stable_node_chains: 1, stable_node_dups: 0 });
    ksm.setKnob('max_page_sharing', 5);
    expect(ksm.stats()).toMatchObject({ stable_node_chains: 0, stable_node_dups: 0 });
    expect(ksm.knobs()['max_page_sharing']).toBe(5);
    expect(ksm.audit()).toEqual([]);
  });

  it('max_page_sharing is EBUSY while stale KSM pages still count in pages_shared, accepted once the scan has pruned them', async () => {
    const { sh, ksm, ids } = await host({}, [2]);
    const dom = ids[0]!;
    sh.populate(dom, 0, numberedPage(4));
    sh.populate(dom, 1, numberedPage(4));
    ksm.setDomainMergeable(dom, true);
    fullScans(ksm, 2);
    sh.writePage(dom, 0, numberedPage(1));
    sh.writePage(dom, 1, numberedPage(2));
    expect(ksm.size).toBe(0);
    expect(() => ksm.setKnob('max_page_sharing', 10)).toThrow(/EBUSY/);
    fullScans(ksm, 1);
    ksm.setKnob('max_page_sharing', 10);
    expect(ksm.knobs()['max_page_sharing']).toBe(10);
  });
});

describe('KSM as Linux counts it: a stable_node_chain collapses when one dup is left (Linux 6.11 and later)', () => {
  it('a search that finds a single dup in a chain puts the dup in its place, full or not, whatever the prune time', async () => {
    const { sh, ksm, ids } = await host({ max_page_sharing: 2, smart_scan: 0, stable_node_chains_prune_millisecs: 1e6 }, [6]);
    const dom = ids[0]!;
    for (let g = 0; g < 4; g++) sh.populate(dom, g, numberedPage(9));
    ksm.setDomainMergeable(dom, true);
    fullScans(ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 2, pages_sharing: 2, stable_node_chains: 1, stable_node_dups: 2 });
    // gfns 2 and 3 map the second dup: written, it goes stale, pruned at the next scan.
    sh.writePage(dom, 2, numberedPage(30));
    sh.writePage(dom, 3, numberedPage(31));
    fullScans(ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 1, stable_node_chains: 1, stable_node_dups: 1 });
    // A page of the chain's content searches the stable tree: the one dup left (full) replaces the chain.
    sh.populate(dom, 4, numberedPage(9));
    fullScans(ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 1, stable_node_chains: 0, stable_node_dups: 0, pages_unshared: 3 });
    expect(ksm.audit()).toEqual([]);
    expect(sh.audit()).toEqual([]);
  });
});

describe('KSM as Linux counts it: the scan-time advisor (advisor_mode)', () => {
  it('owns pages_to_scan while on: sets it after each full scan, refuses it by hand, resets it when switched', async () => {
    const { sh, ksm, ids } = await host({ advisor_mode: 'scan-time', advisor_min_pages_to_scan: 50, advisor_max_pages_to_scan: 8, advisor_target_scan_time: 1, smart_scan: 0 }, [200, 200]);
    for (const d of ids) for (let g = 0; g < 200; g++) sh.populate(d, g, numberedPage(g));
    for (const d of ids) ksm.advise(d, asGfn(0), 200, true);
    expect(ksm.knobs()).toMatchObject({ advisor_mode: 1, pages_to_scan: 50 });
    // 400 pages at 50 a wake: the scan ends on the 9th, and the advisor caps the rate at 8.
    expect(fullScans(ksm, 1)).toBe(9);
    expect(ksm.knobs()['pages_to_scan']).toBe(8);
    expect(() => ksm.setKnob('pages_to_scan', 100)).toThrow(/pages_to_scan is the advisor's/);
    ksm.setKnob('advisor_max_pages_to_scan', 30000);
    fullScans(ksm, 1);
    // A 1 s scan (51 wakes of 20 ms) at 1% CPU, aiming at 1 s: at least 10% of a CPU, 8 * 10.
    expect(ksm.knobs()['pages_to_scan']).toBe(80);
    fullScans(ksm, 1);
    expect(ksm.knobs()['pages_to_scan']).toBe(800);
    ksm.setKnob('advisor_mode', 'none');
    expect(ksm.knobs()).toMatchObject({ advisor_mode: 0, pages_to_scan: 100 });
    ksm.setKnob('pages_to_scan', 1000);
    // The same mode again changes nothing (the kernel resets only on a change of mode).
    ksm.setKnob('advisor_mode', 0);
    expect(ksm.knobs()['pages_to_scan']).toBe(1000);
    ksm.setKnob('advisor_mode', 'scan-time');
    expect(ksm.knobs()['pages_to_scan']).toBe(50);
    expect(() => ksm.setKnob('advisor_mode', 'fast')).toThrow(/advisor_mode must be/);
    expect(stat(ksm, 'pages_shared')).toBe(200);
    expect([ksm.audit(), sh.audit()]).toEqual([[], []]);
  });
});

describe('KSM as Linux counts it: fork (ksm_fork)', () => {
  it('the child inherits mergeability and its parent\'s zero pages, no rmap items; its KSM pages count once scanned', async () => {
    const { sh, ksm, ids } = await host({ use_zero_pages: 1, smart_scan: 0 }, [16, 16]);
    const [parent, child] = ids as [DomId, DomId];
    for (let g = 0; g < 16; g++) sh.populate(parent, g, g < 4 ? new Uint8Array(PAGE_SIZE) : numberedPage(g < 10 ? 1 : g));
    ksm.setDomainMergeable(parent, true);
    fullScans(ksm, 2);
    expect(ksm.stats()).toMatchObject({ ksm_zero_pages: 4, pages_shared: 1, pages_sharing: 5 });
    sh.fork(child, parent);
    expect(ksm.domainStats(child)).toEqual({ rmap_items: 0, merging_pages: 0, zero_pages: 4, profit: 4 * PAGE_SIZE, merge_any: 1, mergeable: 1 });
    expect(ksm.stats()).toMatchObject({ ksm_zero_pages: 8, pages_sharing: 5 });
    fullScans(ksm, 1);
    // The child's six pages on the KSM page join it; its private pages are fork-shared with the
    // parent's, which is no merge (the kernel's "don't substitute a ksm page for a forked page").
    expect(ksm.domainStats(child)).toMatchObject({ merging_pages: 6, rmap_items: 12 });
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 11 });
    expect([ksm.audit(), sh.audit()]).toEqual([[], []]);
  });
});
