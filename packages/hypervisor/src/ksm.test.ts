import { describe, expect, it } from 'vitest';
import { KSM_RMAP_ITEM_BYTES, KsmDedup, type KsmOptions } from '@pagevisor/dedup';
import { asDomId, asGfn, asMfn, HypervisorError, P2mType, PAGE_SIZE, Prng, type DomId } from '@pagevisor/types';
import { Hypervisor } from './hypervisor.js';
import { MADV_DONTNEED } from './memory-ops.js';
import { pageOf } from '../tests/pages.js';

const MS = 1e6;
const asMfnOf = (m: number) => asMfn(m);
const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

async function ksmHost(opts: KsmOptions = {}, frames = 2048, numaNodes = 1): Promise<{ hv: Hypervisor; ksm: KsmDedup }> {
  const ksm = new KsmDedup(opts);
  const hv = await Hypervisor.create({ frames, dedup: ksm, numaNodes });
  return { hv, ksm };
}

/** A domain of `pages` populated pages, page i holding `content(i)` (undefined: left as zeros). */
function guest(hv: Hypervisor, pages: number, content: (i: number) => number | undefined): DomId {
  const dom = hv.createDomain({ maxPages: pages });
  hv.populatePhysmap(dom, range(pages));
  for (let i = 0; i < pages; i++) {
    const c = content(i);
    if (c !== undefined) hv.writePage(dom, asGfn(i), 0, pageOf(c), 0, PAGE_SIZE);
  }
  return dom;
}

function stat(ksm: KsmDedup, name: string): number {
  return ksm.stats()[name]!;
}

function expectClean(hv: Hypervisor): void {
  expect(hv.audit()).toEqual([]);
}

/** Wakes the scanner at its own times until `n` more full scans are done; audits after every wake. Returns the wakes. */
function fullScans(hv: Hypervisor, ksm: KsmDedup, n: number): number {
  const target = stat(ksm, 'full_scans') + n;
  let wakes = 0;
  while (stat(ksm, 'full_scans') < target) {
    const t = ksm.nextWakeNs();
    if (!Number.isFinite(t)) throw new Error('scanner asleep before the scans were done');
    ksm.wake(t);
    wakes++;
    expectClean(hv);
    if (wakes > 1_000_000) throw new Error('no progress');
  }
  return wakes;
}

/** Frames mapped by more than one gfn of any domain. */
function sharedFrames(hv: Hypervisor): number {
  const seen = new Map<number, number>();
  for (const d of hv.domains()) {
    for (let g = 0; g < d.table.size; g++) {
      const t = d.table.type(asGfn(g));
      if (t !== P2mType.ram_rw && t !== P2mType.ram_shared) continue;
      const m = d.table.mfn(asGfn(g));
      seen.set(m, (seen.get(m) ?? 0) + 1);
    }
  }
  let n = 0;
  for (const c of seen.values()) if (c > 1) n++;
  return n;
}

/** Throws unless every page of the model reads back as last written (a byte compare: toEqual is slow on pages). */
function checkContents(hv: Hypervisor, model: Map<number, Map<number, Uint8Array>>, where: string): void {
  for (const [d, pages] of model) {
    for (const [g, c] of pages) {
      if (Buffer.compare(readBack(hv, asDomId(d), g), c) !== 0) throw new Error(`${where}: dom ${d} gfn ${g} differs from its last write`);
    }
  }
}

/** What a refused operation must leave as it was: knobs, counters, every p2m entry, the host's figures. */
function snapshot(hv: Hypervisor, ksm: KsmDedup): unknown {
  const p2m: number[] = [];
  for (const d of hv.domains()) {
    for (let g = 0; g < d.table.size; g++) p2m.push(d.table.type(asGfn(g)), d.table.mfn(asGfn(g)));
  }
  const doms = hv.domains().map((d) => ksm.domainStats(d.table.dom));
  return { knobs: ksm.knobs(), stats: ksm.stats(), doms, totals: hv.totals(), free: hv.frames.freeFrames, next: ksm.nextWakeNs(), p2m };
}

function readBack(hv: Hypervisor, dom: DomId, gfn: number): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE);
  hv.readPage(dom, asGfn(gfn), 0, out, 0, PAGE_SIZE);
  return out;
}

describe('KSM: merging identical pages', () => {
  it('N identical pages: nothing merges in the first full scan, then pages_shared 1 and pages_sharing N-1', async () => {
    const { hv, ksm } = await ksmHost();
    const a = guest(hv, 60, () => 7);
    const b = guest(hv, 40, () => 7);
    hv.setDomainMergeable(a, true);
    hv.setDomainMergeable(b, true);
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 0, pages_sharing: 0, pages_unshared: 0, pages_volatile: 100, full_scans: 1, pages_scanned: 100 });
    expect(hv.totals().pagesShared).toBe(0);
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 99, pages_unshared: 0, pages_volatile: 0, full_scans: 2, rmap_items: 100 });
    expect(hv.totals()).toMatchObject({ pagesShared: 1, pagesSharing: 99 });
    expect(hv.totals().machineFramesUsed).toBe(2); // the zero frame and the KSM page
    // Linux charges sizeof(struct ksm_rmap_item), 64 bytes, per rmap item.
    expect(ksm.domainStats(a)).toEqual({ rmap_items: 60, merging_pages: 60, zero_pages: 0, profit: 60 * PAGE_SIZE - 60 * KSM_RMAP_ITEM_BYTES, merge_any: 1, mergeable: 1 });
    expect(stat(ksm, 'general_profit')).toBe(99 * PAGE_SIZE - 100 * KSM_RMAP_ITEM_BYTES);
    expect(ksm.contains(hv.p2m.table(a)!.mfn(asGfn(0)))).toBe(true);
    expect(ksm.size).toBe(1);
    // A stable state: more scans change nothing.
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 99, full_scans: 4 });
    for (const g of [0, 39]) expect(readBack(hv, b, g)).toEqual(pageOf(7));
  });

  it('unique pages stay unshared (in the unstable tree); pairs and triples share one KSM page each', async () => {
    const { hv, ksm } = await ksmHost();
    // 10 unique pages, 5 pairs, 3 triples.
    const contents = [...range(10, 100), ...range(5, 200).flatMap((c) => [c, c]), ...range(3, 300).flatMap((c) => [c, c, c])];
    const dom = guest(hv, contents.length, (i) => contents[i]);
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 8, pages_sharing: 5 + 6, pages_unshared: 10, pages_volatile: 0 });
    expect(hv.totals().machineFramesUsed).toBe(1 + 10 + 8);
  });

  it('600 identical pages at max_page_sharing 256: three KSM pages chained (pages_shared 3, pages_sharing 597)', async () => {
    const { hv, ksm } = await ksmHost({ max_page_sharing: 256 });
    const dom = guest(hv, 600, () => 42);
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 3, pages_sharing: 597, pages_unshared: 0, stable_node_chains: 1, stable_node_dups: 3 });
    expect(hv.totals()).toMatchObject({ pagesShared: 3, pagesSharing: 597 });
    // 256 + 256 + 88 mappings.
    const counts = [...hv.p2m.rmap.frames()].filter((m) => m !== hv.zeroMfn).map((m) => hv.p2m.rmap.count(m)).sort((x, y) => x - y);
    expect(counts).toEqual([88, 256, 256]);
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 3, pages_sharing: 597, stable_node_chains: 1, stable_node_dups: 3 });
  });

  it('max_page_sharing 2: 5 identical pages give two full KSM pages in a chain and one page left unshared (smart_scan 0)', async () => {
    const { hv, ksm } = await ksmHost({ max_page_sharing: 2, smart_scan: 0 });
    const dom = guest(hv, 5, () => 9);
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 2, pages_sharing: 2, pages_unshared: 1, stable_node_chains: 1, stable_node_dups: 2 });
    fullScans(hv, ksm, 3);
    expect(ksm.stats()).toMatchObject({ pages_shared: 2, pages_sharing: 2, pages_unshared: 1 });
  });

  it('a chain whose dups were freed down to one keeps the stale dup until the scan prunes it, then collapses when a search meets it', async () => {
    const { hv, ksm } = await ksmHost({ max_page_sharing: 2, stable_node_chains_prune_millisecs: 100 });
    const dom = guest(hv, 4, () => 9);
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 2, pages_sharing: 2, stable_node_chains: 1, stable_node_dups: 2 });
    // Free gfns 2 and 3: one KSM page goes with them; its chain is left with a single dup.
    const m2 = hv.p2m.table(dom)!.mfn(asGfn(2));
    const m0 = hv.p2m.table(dom)!.mfn(asGfn(0));
    expect(m2).not.toBe(m0);
    hv.decreaseReservation(dom, [2, 3]);
    // Linux: the freed KSM page's node is stale, still counted with its items until pruned.
    expect(ksm.stats()).toMatchObject({ pages_shared: 2, pages_sharing: 2, stable_node_chains: 1, stable_node_dups: 2 });
    expect(ksm.contains(m2)).toBe(false);
    expectClean(hv);
    // The scan frees the items of gfns 2 and 3, pruning the stale dup; no page searches the
    // stable tree (gfns 0 and 1 map their KSM page), so the chain of one dup stays.
    fullScans(hv, ksm, 10);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 1, stable_node_chains: 1, stable_node_dups: 1 });
    // A search that meets the chain would collapse it (Linux 6.11 and later); run = 2 removes it first.
    ksm.setKnob('run', 2);
    expect(ksm.setKnob('max_page_sharing', 3)).toBeUndefined();
    ksm.setKnob('run', 1);
    hv.populatePhysmap(dom, [2, 3]);
    hv.writePage(dom, asGfn(2), 0, pageOf(9), 0, PAGE_SIZE);
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 2, stable_node_chains: 0 });
  });
});

describe('KSM: copy-on-write and counters', () => {
  it('writing to both pages of a merged pair brings the counters back to 0 after the next scan', async () => {
    const { hv, ksm } = await ksmHost();
    const dom = guest(hv, 2, () => 5);
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 1 });
    hv.writePage(dom, asGfn(0), 10, new Uint8Array([1, 2, 3]), 0, 3);
    // KSM learns of the first write at its next scan of the page.
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 1 });
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 0 });
    hv.writePage(dom, asGfn(1), 10, new Uint8Array([4, 5, 6]), 0, 3);
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 0, pages_sharing: 0, stable_node_chains: 0, stable_node_dups: 0 });
    expect(ksm.size).toBe(0);
    expect(sharedFrames(hv)).toBe(0);
    expect(readBack(hv, dom, 0).subarray(10, 13)).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('a page written between every pair of scans stays volatile and never merges', async () => {
    const { hv, ksm } = await ksmHost();
    const dom = guest(hv, 4, (i) => (i < 2 ? 1 : 50 + i));
    hv.setDomainMergeable(dom, true);
    for (let scan = 0; scan < 6; scan++) {
      // Pages 0 and 1 get the same new content each time: equal to each other, never stable.
      hv.writePage(dom, asGfn(0), 0, pageOf(1000 + scan), 0, PAGE_SIZE);
      hv.writePage(dom, asGfn(1), 0, pageOf(1000 + scan), 0, PAGE_SIZE);
      fullScans(hv, ksm, 1);
    }
    expect(ksm.stats()).toMatchObject({ pages_shared: 0, pages_sharing: 0, pages_volatile: 2, pages_unshared: 2 });
    expect(sharedFrames(hv)).toBe(0);
  });

  it('a KSM page freed with its sharers is a KSM page no more at once: its frame can be reused', async () => {
    const { hv, ksm } = await ksmHost();
    const a = guest(hv, 8, () => 3);
    const b = guest(hv, 8, (i) => 20 + i);
    hv.setDomainMergeable(a, true);
    hv.setDomainMergeable(b, true);
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 7, pages_unshared: 8 });
    const kpage = hv.p2m.table(a)!.mfn(asGfn(0));
    hv.destroyDomain(a);
    expect(ksm.contains(kpage)).toBe(false);
    expect(ksm.stats()).toMatchObject({ pages_shared: 0, pages_sharing: 0, pages_unshared: 8, rmap_items: 8 });
    expectClean(hv);
    const c = guest(hv, 8, () => 3);
    hv.setDomainMergeable(c, true);
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 7, pages_unshared: 8 });
  });
});

describe('KSM: domains going away', () => {
  it('a domain destroyed in the middle of a full scan leaves the unstable tree, which the others keep using', async () => {
    const { hv, ksm } = await ksmHost({ pages_to_scan: 5, smart_scan: 0 });
    const a = guest(hv, 10, (i) => 100 + i);
    const b = guest(hv, 10, (i) => 200 + i);
    const c = guest(hv, 10, (i) => 200 + i);
    for (const d of [a, b, c]) hv.setDomainMergeable(d, true);
    fullScans(hv, ksm, 1);
    for (let w = 0; w < 3; w++) ksm.wake(ksm.nextWakeNs()); // a's 10 pages and half of b's go into the tree
    expect(stat(ksm, 'pages_unshared')).toBe(15);
    hv.destroyDomain(a);
    expect(ksm.stats()).toMatchObject({ pages_unshared: 5, rmap_items: 20 });
    expectClean(hv);
    // The rest of the scan: b's other pages join the tree, c's pages find b's.
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 10, pages_sharing: 10, pages_unshared: 0, rmap_items: 20 });
    expect(ksm.domainStats(a)).toEqual({ rmap_items: 0, merging_pages: 0, zero_pages: 0, profit: 0, merge_any: 0, mergeable: 0 });
  });
});

describe('KSM: zero pages', () => {
  it('without use_zero_pages, pages of zeros merge into one KSM page like any content', async () => {
    const { hv, ksm } = await ksmHost();
    const dom = guest(hv, 30, () => undefined);
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 29, ksm_zero_pages: 0 });
    expect(hv.totals().zeroPages).toBe(0);
  });

  it('with use_zero_pages, they map the zero frame and count in ksm_zero_pages only; a write counts one out at once', async () => {
    const { hv, ksm } = await ksmHost({ use_zero_pages: 1 });
    const dom = guest(hv, 30, (i) => (i >= 20 ? 77 : undefined));
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 1);
    expect(stat(ksm, 'ksm_zero_pages')).toBe(0);
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 9, ksm_zero_pages: 20 });
    expect(ksm.domainStats(dom)).toMatchObject({ zero_pages: 20, merging_pages: 10 });
    expect(hv.totals()).toMatchObject({ zeroPages: 20, machineFramesUsed: 2 });
    expect(stat(ksm, 'general_profit')).toBe((9 + 20) * PAGE_SIZE - stat(ksm, 'rmap_items') * KSM_RMAP_ITEM_BYTES);
    // Their rmap items go at the next scan: the zero frame is not scanned.
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ rmap_items: 10, ksm_zero_pages: 20, pages_volatile: 0 });
    // Linux decrements ksm_zero_pages at the write fault, not at the next scan.
    hv.writePage(dom, asGfn(3), 0, new Uint8Array([1]), 0, 1);
    expect(stat(ksm, 'ksm_zero_pages')).toBe(19);
    expect(ksm.domainStats(dom)).toMatchObject({ zero_pages: 19 });
    fullScans(hv, ksm, 1);
    expect(stat(ksm, 'ksm_zero_pages')).toBe(19);
    expect(ksm.domainStats(dom)).toMatchObject({ zero_pages: 19 });
    expect(readBack(hv, dom, 3)[0]).toBe(1);
  });
});

describe('KSM as Linux 6.18 counts it: ksm_zero_pages drops when the page leaves the zero frame', () => {
  it('at the write fault, MADV_DONTNEED, decrease_reservation and MADV_UNMERGEABLE, once each, not at the next scan', async () => {
    const { hv, ksm } = await ksmHost({ use_zero_pages: 1 });
    const dom = guest(hv, 10, () => undefined);
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 2);
    expect([stat(ksm, 'ksm_zero_pages'), ksm.domainStats(dom)['zero_pages'], hv.totals().zeroPages]).toEqual([10, 10, 10]);
    const zeros = (): number[] => [stat(ksm, 'ksm_zero_pages'), ksm.domainStats(dom)['zero_pages']!];
    // wp_page_copy on a KSM zero pte: ksm_might_unmap_zero_page, at the fault.
    hv.writePage(dom, asGfn(0), 100, new Uint8Array([1]), 0, 1);
    expect(zeros()).toEqual([9, 9]);
    // A whole page of zeros written over it is a write fault all the same.
    hv.writePage(dom, asGfn(1), 0, new Uint8Array(PAGE_SIZE), 0, PAGE_SIZE);
    expect(zeros()).toEqual([8, 8]);
    // zap_pte_range: MADV_DONTNEED and giving the page back unmap it.
    hv.madvise(dom, asGfn(2), 2, MADV_DONTNEED);
    expect(zeros()).toEqual([6, 6]);
    hv.decreaseReservation(dom, [4]);
    expect(zeros()).toEqual([5, 5]);
    // MADV_UNMERGEABLE breaks KSM on the zero pte: one fault each, counted once.
    hv.advise(dom, asGfn(5), 2, false);
    expect(zeros()).toEqual([3, 3]);
    // Reading does not.
    readBack(hv, dom, 7);
    expect(zeros()).toEqual([3, 3]);
    expect(hv.totals().zeroPages).toBe(3);
    expectClean(hv);
    expect(stat(ksm, 'general_profit')).toBe(3 * PAGE_SIZE - stat(ksm, 'rmap_items') * KSM_RMAP_ITEM_BYTES);
    // The next scans count nothing out twice; gfn 1, zeros in a frame of its own, merges again.
    fullScans(hv, ksm, 2);
    expect(zeros()).toEqual([4, 4]);
    expect(readBack(hv, dom, 0)[100]).toBe(1);
  });

  it('a page of zeros that KSM did not put on the zero frame counts nothing out', async () => {
    const { hv, ksm } = await ksmHost({ use_zero_pages: 1 });
    const dom = guest(hv, 4, () => undefined);
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 2);
    expect(stat(ksm, 'ksm_zero_pages')).toBe(4);
    // A second domain never advised: its pages are its own, none on the zero frame by KSM.
    const other = guest(hv, 2, () => 3);
    hv.decreaseReservation(other, [0]);
    hv.madvise(other, asGfn(1), 1, MADV_DONTNEED);
    hv.writePage(other, asGfn(1), 0, new Uint8Array([9]), 0, 1);
    expect(stat(ksm, 'ksm_zero_pages')).toBe(4);
    hv.destroyDomain(dom);
    expect(stat(ksm, 'ksm_zero_pages')).toBe(0);
    expectClean(hv);
  });
});

describe('KSM as Linux 6.18 counts it: a KSM page losing its last mapping is pruned lazily', () => {
  async function mergedTriple(): Promise<{ hv: Hypervisor; ksm: KsmDedup; dom: DomId; kpage: number }> {
    const { hv, ksm } = await ksmHost();
    const dom = guest(hv, 4, (i) => (i < 3 ? 5 : 6));
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 2, pages_unshared: 1 });
    return { hv, ksm, dom, kpage: hv.p2m.table(dom)!.mfn(asGfn(0)) };
  }

  const gone = [
    ['written (copy-on-write)', (hv: Hypervisor, dom: DomId) => {
      for (const g of [2, 1, 0]) hv.writePage(dom, asGfn(g), 8, new Uint8Array([g + 1]), 0, 1);
    }],
    ['MADV_UNMERGEABLE', (hv: Hypervisor, dom: DomId) => hv.advise(dom, asGfn(0), 3, false)],
    ['MADV_DONTNEED', (hv: Hypervisor, dom: DomId) => hv.madvise(dom, asGfn(0), 3, MADV_DONTNEED)],
    ['decrease_reservation', (hv: Hypervisor, dom: DomId) => hv.decreaseReservation(dom, [0, 1, 2])],
  ] as const;

  it.each(gone)('%s: pages_shared, pages_sharing and merging_pages keep counting it until the next scan', async (_how, drop) => {
    const { hv, ksm, dom, kpage } = await mergedTriple();
    drop(hv, dom);
    expect(sharedFrames(hv)).toBe(0);
    // The frame is no KSM page now (it may be reused) ...
    expect([ksm.contains(asMfnOf(kpage)), ksm.size]).toEqual([false, 0]);
    // ... but its stable node and rmap items stay until ksmd comes round.
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 2 });
    expect(ksm.domainStats(dom)).toMatchObject({ merging_pages: 3 });
    expect(stat(ksm, 'general_profit')).toBe(2 * PAGE_SIZE - 4 * KSM_RMAP_ITEM_BYTES);
    expectClean(hv);
    // Another domain's page may take the frame meanwhile: the stale node is never compared with it.
    const other = guest(hv, 2, () => 5);
    hv.setDomainMergeable(other, true);
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 0, pages_sharing: 0 });
    expect(ksm.domainStats(dom)).toMatchObject({ merging_pages: 0 });
    fullScans(hv, ksm, 1);
    expectClean(hv);
    // The other domain's two pages of the old content share a KSM page of their own.
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 1 });
  });
});

describe('KSM: run = 0 and run = 2', () => {
  it('run = 2 unmerges everything: every counter back to 0, no two gfns on one frame; run = 1 merges again', async () => {
    const { hv, ksm } = await ksmHost({ use_zero_pages: 1 });
    const dom = guest(hv, 40, (i) => (i < 10 ? undefined : i < 30 ? 4 : 100 + i));
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 19, ksm_zero_pages: 10, pages_unshared: 10 });
    ksm.setKnob('run', 2);
    expect(ksm.stats()).toMatchObject({
      pages_shared: 0,
      pages_sharing: 0,
      pages_unshared: 0,
      pages_volatile: 0,
      ksm_zero_pages: 0,
      general_profit: 0,
      stable_node_chains: 0,
      stable_node_dups: 0,
      rmap_items: 0,
      full_scans: 0,
    });
    // The process stays mergeable (Linux's ksm_stat after run = 2: ksm_merge_any and ksm_mergeable yes).
    expect(ksm.domainStats(dom)).toEqual({ rmap_items: 0, merging_pages: 0, zero_pages: 0, profit: 0, merge_any: 1, mergeable: 1 });
    expect(sharedFrames(hv)).toBe(0);
    expect(hv.totals()).toMatchObject({ pagesShared: 0, zeroPages: 0, machineFramesUsed: 41 });
    expectClean(hv);
    expect(ksm.nextWakeNs()).toBe(Infinity);
    for (const g of [0, 15, 35]) expect(readBack(hv, dom, g)).toEqual(g < 10 ? new Uint8Array(PAGE_SIZE) : pageOf(g < 30 ? 4 : 100 + g));
    ksm.setKnob('run', 1);
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 19, ksm_zero_pages: 10, full_scans: 2 });
  });

  it('run = 2, MADV_UNMERGEABLE and PR_SET_MEMORY_MERGE 0 without enough free frames are refused with ENOMEM, changing nothing', async () => {
    const { hv, ksm } = await ksmHost({ use_zero_pages: 1 }, 96);
    // 25 pages of one content and 5 of zeros.
    const dom = guest(hv, 30, (i) => (i < 5 ? undefined : 8));
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 2);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 24, ksm_zero_pages: 5 });
    // Unmerging all of it needs 24 + 5 frames (the last sharer of the KSM page keeps it): leave 28
    // free, and one more in a domain that can go.
    const spare = guest(hv, 1, () => 600);
    guest(hv, hv.frames.freeFrames - 28, (i) => 500 + i);
    expect(hv.frames.freeFrames).toBe(28);
    const model = new Map([[dom as number, new Map(range(30).map((g) => [g, readBack(hv, dom, g)]))]]);
    const before = snapshot(hv, ksm);
    const refused = (fn: () => void, message: string): void => {
      expect(fn).toThrow(HypervisorError);
      expect(fn).toThrow(message);
      expect(snapshot(hv, ksm)).toEqual(before);
      expectClean(hv);
      checkContents(hv, model, message);
    };
    refused(() => ksm.setKnob('run', 2), 'ksm_run_unmerge: ENOMEM: 29 frames needed to unmerge, 28 free');
    expect(ksm.knobs()['run']).toBe(1);
    refused(() => hv.advise(dom, asGfn(0), 30, false), 'madvise_unmergeable: ENOMEM: 29 frames needed to unmerge, 28 free');
    refused(() => hv.setDomainMergeable(dom, false), 'set_memory_merge: ENOMEM: 29 frames needed to unmerge, 28 free');
    // Not all the sharers: each needs a frame of its own (24 of 25 sharers, 5 zero pages).
    refused(() => hv.advise(dom, asGfn(0), 29, false), 'madvise_unmergeable: ENOMEM: 29 frames needed to unmerge, 28 free');
    // The scanner carries on as before.
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 24, ksm_zero_pages: 5, full_scans: 3 });
    // With exactly the 29 frames needed, run = 2 goes through and uses them all.
    hv.destroyDomain(spare);
    expect(hv.frames.freeFrames).toBe(29);
    ksm.setKnob('run', 2);
    expect(hv.frames.freeFrames).toBe(0);
    expect(ksm.stats()).toMatchObject({ pages_shared: 0, pages_sharing: 0, ksm_zero_pages: 0, rmap_items: 0, full_scans: 0 });
    expect(hv.totals()).toMatchObject({ pagesShared: 0, zeroPages: 0 });
    expectClean(hv);
    checkContents(hv, model, 'after run = 2');
  });

  it('run = 0 stops scanning and keeps the state; run = 1 resumes where it stopped', async () => {
    const { hv, ksm } = await ksmHost({ pages_to_scan: 10 });
    const dom = guest(hv, 30, () => 2);
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 1);
    ksm.wake(ksm.nextWakeNs());
    ksm.setKnob('run', 0);
    expect(ksm.nextWakeNs()).toBe(Infinity);
    const before = ksm.stats();
    ksm.wake(1e12);
    expect(ksm.stats()).toEqual(before);
    expect(before).toMatchObject({ pages_shared: 1, pages_sharing: 9, pages_scanned: 40 });
    ksm.setKnob('run', 1);
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 29, pages_scanned: 60, full_scans: 2 });
  });
});

describe('KSM: mergeable areas', () => {
  it('unmergeable pages never merge; MADV_UNMERGEABLE unmerges at once, the counters follow at the next scan', async () => {
    const { hv, ksm } = await ksmHost();
    const dom = guest(hv, 20, () => 6);
    expect(ksm.nextWakeNs()).toBe(Infinity); // nothing mergeable yet
    hv.advise(dom, asGfn(0), 10, true);
    expect(ksm.nextWakeNs()).toBe(0);
    fullScans(hv, ksm, 3);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 9, rmap_items: 10, pages_scanned: 30 });
    for (let g = 10; g < 20; g++) expect(hv.p2m.table(dom)!.type(asGfn(g))).toBe(P2mType.ram_rw);
    hv.advise(dom, asGfn(0), 4, false);
    for (let g = 0; g < 4; g++) expect(hv.p2m.table(dom)!.type(asGfn(g))).toBe(P2mType.ram_rw);
    expect(hv.totals().pagesSharing).toBe(5);
    expect(ksm.stats()).toMatchObject({ pages_sharing: 9, rmap_items: 10 });
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 5, rmap_items: 6 });
    // Unmergeable and unmerged, whole domain: the scanner has nothing left to do. The KSM page
    // lost its last mapping, but its stable node and items count until the next scan (Linux).
    hv.setDomainMergeable(dom, false);
    expect(sharedFrames(hv)).toBe(0);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 5 });
    expect(ksm.size).toBe(0);
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ rmap_items: 0, pages_shared: 0, pages_sharing: 0 });
    expect(ksm.nextWakeNs()).toBe(Infinity);
  });

  it('PR_SET_MEMORY_MERGE covers pages populated later', async () => {
    const { hv, ksm } = await ksmHost();
    const dom = hv.createDomain({ maxPages: 16 });
    hv.setDomainMergeable(dom, true);
    hv.populatePhysmap(dom, range(8));
    fullScans(hv, ksm, 2);
    hv.populatePhysmap(dom, range(8, 8));
    // As in Linux 6.11 and later, a new page's checksum must hold for a scan before it merges,
    // even into an existing KSM page.
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 7, pages_volatile: 8 });
    fullScans(hv, ksm, 1);
    expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 15 });
  });
});

describe('KSM: simulated time', () => {
  // Linux counts the full scan on the call after the last page: floor(N / 100) + 1 wakes.
  it.each([1000, 250, 100])('a full scan of %i pages at pages_to_scan 100, sleep_millisecs 20 takes (floor(N/100) + 1) x 20 ms', async (n) => {
    const { hv, ksm } = await ksmHost({}, 4096);
    const dom = guest(hv, n, (i) => i);
    hv.setDomainMergeable(dom, true);
    const t0 = ksm.nextWakeNs();
    const wakes = fullScans(hv, ksm, 1);
    expect(wakes).toBe(Math.floor(n / 100) + 1);
    expect(ksm.nextWakeNs() - t0).toBe(wakes * 20 * MS);
    expect(fullScans(hv, ksm, 1)).toBe(wakes);
    expect(ksm.nextWakeNs() - t0).toBe(2 * wakes * 20 * MS);
    expect(stat(ksm, 'pages_scanned')).toBe(2 * n);
    expect(hv.totals().dedupCpuNs).toBeGreaterThan(2 * n * hv.costModel.pageHashNs);
  });

  it('smart_scan skips a page that never merges on the kernel schedule; smart_scan 0 scans it every time', async () => {
    for (const smart of [1, 0]) {
      const { hv, ksm } = await ksmHost({ smart_scan: smart });
      const dom = guest(hv, 1, () => 1);
      hv.setDomainMergeable(dom, true);
      fullScans(hv, ksm, 13);
      // Scans 1-4 scan it, then skip 1, scan, skip 2, scan, skip 4: 6 scanned, 7 skipped.
      expect(ksm.stats()).toMatchObject(smart === 1 ? { pages_scanned: 6, pages_skipped: 7 } : { pages_scanned: 13, pages_skipped: 0 });
    }
  });
});

describe('KSM: NUMA', () => {
  it('merge_across_nodes = 0 keeps every merge within a node; 1 merges across', async () => {
    for (const across of [0, 1]) {
      const { hv, ksm } = await ksmHost({ merge_across_nodes: across }, 256, 2);
      const a = guest(hv, 100, () => 11);
      const b = guest(hv, 100, () => 11);
      const nodeBefore = new Map<string, number>();
      for (const d of [a, b]) for (let g = 0; g < 100; g++) nodeBefore.set(`${d}:${g}`, hv.nodeOf(hv.p2m.table(d)!.mfn(asGfn(g))));
      expect(new Set(nodeBefore.values()).size).toBe(2);
      hv.setDomainMergeable(a, true);
      hv.setDomainMergeable(b, true);
      fullScans(hv, ksm, 2);
      if (across === 0) {
        expect(ksm.stats()).toMatchObject({ pages_shared: 2, pages_sharing: 198 });
        for (const d of [a, b]) {
          for (let g = 0; g < 100; g++) expect(hv.nodeOf(hv.p2m.table(d)!.mfn(asGfn(g)))).toBe(nodeBefore.get(`${d}:${g}`));
        }
      } else {
        expect(ksm.stats()).toMatchObject({ pages_shared: 1, pages_sharing: 199 });
      }
    }
  });

  it('max_page_sharing and merge_across_nodes refuse to change (EBUSY) while KSM pages exist', async () => {
    const { hv, ksm } = await ksmHost({}, 256, 2);
    const dom = guest(hv, 4, () => 1);
    hv.setDomainMergeable(dom, true);
    fullScans(hv, ksm, 2);
    for (const knob of ['max_page_sharing', 'merge_across_nodes']) {
      expect(() => ksm.setKnob(knob, knob === 'max_page_sharing' ? 100 : 0)).toThrow(/EBUSY.*KSM pages exist/);
    }
    ksm.setKnob('max_page_sharing', 256); // unchanged: accepted
    expect(ksm.knobs()).toMatchObject({ max_page_sharing: 256, merge_across_nodes: 1 });
    ksm.setKnob('run', 2);
    ksm.setKnob('max_page_sharing', 100);
    ksm.setKnob('merge_across_nodes', 0);
    expect(ksm.knobs()).toMatchObject({ max_page_sharing: 100, merge_across_nodes: 0, run: 2 });
  });
});

describe('KSM: random operations against a reference model', () => {
  it.each(range(16))('seed %i: every read equals the last write and the audit stays clean', async (seed) => {
    const rng = new Prng(seed);
    const { hv, ksm } = await ksmHost({ pages_to_scan: 1 + rng.nextInt(12), max_page_sharing: 2 + rng.nextInt(4), use_zero_pages: rng.nextInt(2), smart_scan: rng.nextInt(2) }, 96, 1 + rng.nextInt(2));
    const pool = range(4).map((i) => (i === 0 ? new Uint8Array(PAGE_SIZE) : pageOf(i)));
    const model = new Map<number, Map<number, Uint8Array>>();
    let t = 0;
    let maxMerged = 0;
    const doms = (): number[] => [...model.keys()];
    for (let d = 0; d < 3; d++) {
      const id = hv.createDomain({ maxPages: 16 });
      model.set(id, new Map());
      hv.setDomainMergeable(id, true);
    }
    for (let step = 0; step < 500; step++) {
      const op = rng.nextInt(100);
      const ds = doms();
      const dom = ds.length > 0 ? ds[rng.nextInt(ds.length)]! : -1;
      const gfn = rng.nextInt(16);
      try {
        if (op < 3 || ds.length === 0) {
          const d = hv.createDomain({ maxPages: 16 });
          model.set(d, new Map());
          if (rng.nextInt(2) === 0) hv.setDomainMergeable(d, true);
        } else if (op < 14) {
          if (!model.get(dom)!.has(gfn)) {
            hv.populatePhysmap(asDomId(dom), [gfn]);
            model.get(dom)!.set(gfn, new Uint8Array(PAGE_SIZE));
          }
        } else if (op < 30) {
          if (model.get(dom)!.has(gfn)) {
            const p = pool[rng.nextInt(pool.length)]!;
            hv.writePage(asDomId(dom), asGfn(gfn), 0, p, 0, PAGE_SIZE);
            model.get(dom)!.set(gfn, p.slice());
          }
        } else if (op < 36) {
          if (model.get(dom)!.has(gfn)) {
            const off = rng.nextInt(PAGE_SIZE);
            hv.writePage(asDomId(dom), asGfn(gfn), off, new Uint8Array([7]), 0, 1);
            model.get(dom)!.get(gfn)![off] = 7;
          }
        } else if (op < 40) {
          if (model.get(dom)!.has(gfn)) {
            hv.decreaseReservation(asDomId(dom), [gfn]);
            model.get(dom)!.delete(gfn);
          }
        } else if (op < 46) {
          const count = 1 + rng.nextInt(16 - gfn);
          hv.advise(asDomId(dom), asGfn(gfn), count, rng.nextInt(3) !== 0);
        } else if (op < 48) {
          hv.setDomainMergeable(asDomId(dom), rng.nextInt(3) !== 0);
        } else if (op < 49) {
          hv.destroyDomain(asDomId(dom));
          model.delete(dom);
        } else if (op < 51) {
          ksm.setKnob('run', [0, 1, 1, 1, 2][rng.nextInt(5)]!);
        } else if (op < 52) {
          const other = ds[rng.nextInt(ds.length)]!;
          const g2 = rng.nextInt(16);
          if (model.get(dom)!.has(gfn) && model.get(other)!.has(g2)) {
            const h1 = hv.nominateGfn(asDomId(dom), asGfn(gfn));
            const h2 = hv.nominateGfn(asDomId(other), asGfn(g2));
            hv.share(asDomId(dom), asGfn(gfn), h1, asDomId(other), asGfn(g2), h2);
          }
        } else {
          const next = ksm.nextWakeNs();
          if (Number.isFinite(next)) {
            t = Math.max(t, next);
            ksm.wake(t);
          }
        }
      } catch (e) {
        if (!(e instanceof HypervisorError) || !['ENOMEM', 'EINVAL', 'E2BIG'].includes(e.errnoName)) throw e;
      }
      maxMerged = Math.max(maxMerged, ksm.stats()['pages_sharing']! + ksm.stats()['ksm_zero_pages']!);
      const problems = hv.audit();
      if (problems.length > 0) throw new Error(`seed ${seed} step ${step} (op ${op}): ${problems.join('; ')}`);
      if (step % 10 === 9) checkContents(hv, model, `seed ${seed} step ${step}`);
    }
    checkContents(hv, model, `seed ${seed} end`);
    // The sequences must exercise merging, not only bookkeeping.
    expect(maxMerged).toBeGreaterThan(0);
  });
});
