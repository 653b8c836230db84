import { describe, expect, it } from 'vitest';
import { createDedup } from '@pagevisor/dedup';
import {
  decodeResponse,
  encodeRequest,
  GuestShim,
  HYPERCALL_OPS,
  HypercallClient,
  Madvise,
  OP_LAYOUTS,
  REQUEST_HEADER,
  XENMEMF_populate_on_demand,
  type HypercallOp,
  type HypercallRequest,
} from '@pagevisor/hypercall-abi';
import { WriteFault } from '@pagevisor/swap';
import {
  asDomId,
  asGfn,
  DOMID_CONTROL,
  DOMID_SELF,
  Errno,
  HypervisorError,
  P2mType,
  PAGE_SIZE,
  type DedupIndex,
  type DomId,
  type ErrnoName,
  type Gfn,
} from '@pagevisor/types';
import type { Hypervisor } from './hypervisor.js';
import { pageOf, read } from '../tests/pages.js';
import { client, FRAMES, guest, host, NOBODY, pageOut, problems, raw, snapshot, template, type Host, type HostOptions, type Snapshot } from '../tests/abi-cases.js';

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);
const g = (n: number): Gfn => asGfn(n);

/** Ops only the control domain may issue. */
const CONTROL_ONLY: readonly HypercallOp[] = HYPERCALL_OPS.filter((op) => op === 'claim_pages' || op === 'sharing_debug_gfn' || op.startsWith('get_sharing_') || op === 'sharing_audit' || op.startsWith('domctl_'));
/** Ops that name one or two existing domains (every op but the host-wide ones and createdomain). */
const DOMAIN_OPS: readonly HypercallOp[] = HYPERCALL_OPS.filter(
  (op) => !op.startsWith('get_sharing_') && op !== 'sharing_audit' && op !== 'domctl_createdomain',
);
/** Ops naming two domains (source and client, child and parent). */
const TWO_DOMAIN_OPS: readonly HypercallOp[] = ['sharing_share', 'sharing_add_physmap', 'sharing_range_share', 'sharing_fork'];
/**
 * Ops a guest may issue with success: every op not control-only, except those needing two
 * distinct domains (a guest may only name itself, and range_share and fork refuse one domain twice).
 */
const GUEST_SUCCESS_OPS: readonly HypercallOp[] = HYPERCALL_OPS.filter(
  (op) => !CONTROL_ONLY.includes(op) && op !== 'sharing_range_share' && op !== 'sharing_fork',
);

/** Fills every free frame with zeroed pages of a new domain. */
function fillMemory(hv: Hypervisor): DomId {
  const filler = hv.createDomain({ maxPages: FRAMES * 2, gfnCount: FRAMES * 2 });
  const n = hv.frames.freeFrames;
  if (n > 0) hv.populatePhysmap(filler, range(n));
  return filler;
}

/** Wakes the scanning strategy until `n` more full scans are done. */
function fullScans(hv: Hypervisor, n: number): void {
  const target = hv.dedup.stats()['full_scans']! + n;
  for (let wakes = 0; hv.dedup.stats()['full_scans']! < target; wakes++) {
    if (wakes > 10_000) throw new Error('the scanner makes no progress');
    hv.wakeDedup(hv.dedup.nextWakeNs!());
  }
}

function expectErrno(fn: () => unknown, errno: ErrnoName): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error, `expected ${errno}`).toBeInstanceOf(HypervisorError);
  expect((error as HypervisorError).errnoName).toBe(errno);
}

// ---- 1. success paths ------------------------------------------------------------------------------

/** `control:op` and `guest:op` for every op that succeeded through the dispatcher. */
const successes = new Set<string>();

interface Clients {
  readonly h: Host;
  readonly hv: Hypervisor;
  readonly a: DomId;
  readonly b: DomId;
  /** The control domain. */
  readonly dom0: HypercallClient;
  /** Guest A, acting on itself. */
  readonly ga: HypercallClient;
}

/** Hosts the running success test built: each must audit clean at its end. */
const built: Hypervisor[] = [];

async function clients(options: HostOptions = {}): Promise<Clients> {
  const h = await host(options);
  built.push(h.hv);
  return { h, hv: h.hv, a: h.a, b: h.b, dom0: client(h.hv, DOMID_CONTROL, successes), ga: client(h.hv, h.a, successes) };
}

const SUCCESS: { readonly [K in HypercallOp]: () => Promise<void> } = {
  increase_reservation: async () => {
    const { hv, a, dom0, ga } = await clients();
    expect(dom0.increaseReservation(a, 2)).toEqual([4, 5]);
    expect(ga.increaseReservation(DOMID_SELF, 1, 1)).toEqual([6]); // one extent of 2 pages
    expect(hv.currentReservation(a)).toBe(8);
    for (const gfn of [4, 5, 6, 7]) expect(read(hv, a, gfn)).toEqual(new Uint8Array(PAGE_SIZE));
  },
  decrease_reservation: async () => {
    const { hv, a, dom0, ga } = await clients();
    const free = hv.frames.freeFrames;
    expect(dom0.decreaseReservation(a, [3])).toBe(1);
    expect(ga.decreaseReservation(DOMID_SELF, [2])).toBe(1);
    expect(hv.frames.freeFrames).toBe(free + 2);
    expect(hv.currentReservation(a)).toBe(2);
    expectErrno(() => ga.readPage(DOMID_SELF, g(2), 0, 1), 'EINVAL');
    expect(read(hv, a, 1)).toEqual(pageOf(11));
  },
  populate_physmap: async () => {
    const { hv, a, dom0, ga } = await clients();
    const free = hv.frames.freeFrames;
    expect(dom0.populatePhysmap(a, [4])).toBe(1);
    expect(ga.populatePhysmap(DOMID_SELF, [8], 1)).toBe(1); // gfns 8 and 9
    expect(hv.frames.freeFrames).toBe(free - 3);
    // Populate on demand: held, read as zeros, no frame until written.
    expect(ga.populatePhysmap(DOMID_SELF, [6], 0, XENMEMF_populate_on_demand)).toBe(1);
    expect(hv.frames.freeFrames).toBe(free - 3);
    expect(hv.domainStats(a)).toMatchObject({ totPages: 8, podPages: 1 });
    for (const gfn of [4, 6, 8, 9]) expect(ga.readPage(DOMID_SELF, g(gfn), 0, PAGE_SIZE)).toEqual(new Uint8Array(PAGE_SIZE));
  },
  current_reservation: async () => {
    const { hv, a, b, dom0, ga } = await clients();
    hv.populatePhysmap(b, [4]);
    expect(dom0.currentReservation(b)).toBe(5);
    expect(ga.currentReservation(DOMID_SELF)).toBe(4);
    expect(ga.currentReservation(a)).toBe(hv.currentReservation(a));
  },
  maximum_reservation: async () => {
    const { hv, a, dom0, ga } = await clients();
    hv.setMaxPages(a, 6);
    expect(dom0.maximumReservation(a)).toBe(6);
    expect(ga.maximumReservation(DOMID_SELF)).toBe(6);
  },
  maximum_gpfn: async () => {
    const { hv, a, b, dom0, ga } = await clients();
    hv.populatePhysmap(b, [12]);
    expect(dom0.maximumGpfn(b)).toBe(12);
    expect(ga.maximumGpfn(DOMID_SELF)).toBe(3);
    expect(ga.maximumGpfn(a)).toBe(hv.maximumGpfn(a));
    const empty = hv.createDomain({ maxPages: 2 });
    expect(dom0.maximumGpfn(empty)).toBe(0);
  },
  claim_pages: async () => {
    const { hv, a, dom0 } = await clients();
    const other = hv.createDomain({ maxPages: 64, gfnCount: 64 });
    const free = hv.frames.freeFrames;
    dom0.claimPages(a, 8); // A holds 4: 4 frames claimed
    expect(hv.claimOf(a)).toBe(4);
    // Another domain can no longer take the claimed frames...
    expectErrno(() => dom0.populatePhysmap(other, range(free - 3)), 'ENOMEM');
    expect(dom0.populatePhysmap(other, range(free - 4))).toBe(free - 4);
    expect(hv.frames.freeFrames).toBe(4);
    // ...while the claimant grows into them, using its claim up.
    expect(dom0.populatePhysmap(a, [4, 5, 6, 7])).toBe(4);
    expect(hv.claimOf(a)).toBe(0);
    // 0 cancels a claim.
    dom0.decreaseReservation(a, [7]);
    dom0.claimPages(a, 8);
    expect(hv.claimOf(a)).toBe(1);
    dom0.claimPages(a, 0);
    expect(hv.claimOf(a)).toBe(0);
    expect(dom0.populatePhysmap(other, [60])).toBe(1);
  },
  get_sharing_freed_pages: async () => {
    // Inline dedup: equal pages merge on write, new pages map the zero frame.
    const { hv, a, b, dom0 } = await clients({ dedup: createDedup('inline') });
    for (const gfn of [0, 1]) hv.writePage(b, g(gfn), 0, pageOf(10 + gfn), 0, PAGE_SIZE);
    hv.populatePhysmap(a, [4, 5]);
    const t = hv.totals();
    expect(t).toMatchObject({ pagesShared: 2, pagesSharing: 2, zeroPages: 2 });
    const freed = dom0.sharingFreedPages();
    expect(freed).toBe(t.pagesSharing + t.zeroPages);
    // What sharing saves: pages resident minus the frames they use (the zero frame aside).
    expect(freed).toBe(t.guestPages - t.pagedPages - (t.machineFramesUsed - 1));
  },
  get_sharing_shared_pages: async () => {
    const { hv, a, b, dom0 } = await clients({ dedup: createDedup('inline') });
    for (const gfn of [0, 1]) hv.writePage(b, g(gfn), 0, pageOf(10 + gfn), 0, PAGE_SIZE);
    expect(dom0.sharingSharedPages()).toBe(hv.totals().pagesShared);
    hv.populatePhysmap(a, [4, 5]);
    const t = hv.totals();
    expect(dom0.sharingSharedPages()).toBe(t.pagesShared + 1); // the zero frame counts once mapped
  },
  read_page: async () => {
    const { hv, a, b, dom0, ga } = await clients();
    expect(ga.readPage(DOMID_SELF, g(1), 0, PAGE_SIZE)).toEqual(pageOf(11));
    expect(ga.readPage(a, g(2), 100, 8)).toEqual(pageOf(12).subarray(100, 108));
    expect(dom0.readPage(b, g(3), 0, PAGE_SIZE)).toEqual(pageOf(23));
    expect(dom0.readPage(b, g(3), PAGE_SIZE, 0)).toEqual(new Uint8Array(0));
    expect(hv.audit()).toEqual([]);
  },
  write_page: async () => {
    const { hv, a, b, dom0, ga } = await clients();
    ga.writePage(DOMID_SELF, g(1), 100, Uint8Array.of(1, 2, 3));
    const want = pageOf(11);
    want.set([1, 2, 3], 100);
    expect(read(hv, a, 1)).toEqual(want);
    dom0.writePage(b, g(0), 0, pageOf(99));
    expect(read(hv, b, 0)).toEqual(pageOf(99));
    expect(read(hv, a, 0)).toEqual(pageOf(10));
  },
  madvise: async () => {
    // MADV_DONTNEED: the pages read as zeros and give their frames back, still held.
    {
      const { hv, a, ga } = await clients();
      const free = hv.frames.freeFrames;
      ga.madvise(DOMID_SELF, g(1), 2, Madvise.dontneed);
      expect(hv.frames.freeFrames).toBe(free + 2);
      expect(hv.domainStats(a)).toMatchObject({ totPages: 4, podPages: 2, privatePages: 2 });
      for (const gfn of [1, 2]) expect(ga.readPage(DOMID_SELF, g(gfn), 0, PAGE_SIZE)).toEqual(new Uint8Array(PAGE_SIZE));
      expect(read(hv, a, 3)).toEqual(pageOf(13));
      ga.writePage(DOMID_SELF, g(1), 0, Uint8Array.of(5)); // backed again on write
      expect(hv.frames.freeFrames).toBe(free + 1);
    }
    // MADV_MERGEABLE / MADV_UNMERGEABLE reach the strategy: KSM scans and merges, then unmerges.
    {
      const ksm = createDedup('ksm');
      const { hv, dom0 } = await clients({ dedup: ksm });
      const d = guest(hv, 8, 8, [7, 7, 7, 7, 7, 7]);
      const gd = client(hv, d, successes);
      gd.madvise(DOMID_SELF, g(0), 6, Madvise.mergeable);
      expect(range(8).map((gfn) => ksm.isMergeable!(d, g(gfn)))).toEqual([true, true, true, true, true, true, false, false]);
      fullScans(hv, 3);
      expect(dom0.debugGfn(d, g(0))).toBe(6);
      const free = hv.frames.freeFrames;
      dom0.madvise(d, g(0), 6, Madvise.unmergeable);
      expect(ksm.isMergeable!(d, g(0))).toBe(false);
      for (const gfn of range(6)) expect(dom0.debugGfn(d, g(gfn))).toBe(1);
      expect(hv.frames.freeFrames).toBe(free - 5);
      for (const gfn of range(6)) expect(read(hv, d, gfn)).toEqual(pageOf(7));
      expect(hv.audit()).toEqual([]);
    }
  },
  sharing_nominate_gfn: async () => {
    const { hv, a, dom0, ga } = await clients();
    const h0 = dom0.nominateGfn(a, g(0));
    const h1 = ga.nominateGfn(DOMID_SELF, g(1));
    expect(h0).toBeGreaterThan(0);
    expect(h1).not.toBe(h0);
    expect(ga.nominateGfn(DOMID_SELF, g(1))).toBe(h1); // still current
    expect(hv.p2m.table(a)!.type(g(0))).toBe(P2mType.ram_shared);
    expect(dom0.debugGfn(a, g(0))).toBe(1);
    expect(read(hv, a, 0)).toEqual(pageOf(10));
  },
  sharing_share: async () => {
    const { hv, a, b, dom0, ga } = await clients();
    hv.writePage(b, g(0), 0, pageOf(10), 0, PAGE_SIZE);
    const free = hv.frames.freeFrames;
    dom0.share(a, g(0), dom0.nominateGfn(a, g(0)), b, g(0), dom0.nominateGfn(b, g(0)));
    expect(hv.frames.freeFrames).toBe(free + 1);
    expect(dom0.debugGfn(a, g(0))).toBe(2);
    expect(dom0.debugGfn(b, g(0))).toBe(2);
    // A write by one sharer copies; the other keeps the content.
    dom0.writePage(b, g(0), 0, Uint8Array.of(1));
    expect(read(hv, a, 0)).toEqual(pageOf(10));
    // A guest may share its own pages with each other.
    hv.writePage(a, g(3), 0, pageOf(12), 0, PAGE_SIZE);
    ga.share(DOMID_SELF, g(2), ga.nominateGfn(DOMID_SELF, g(2)), DOMID_SELF, g(3), ga.nominateGfn(DOMID_SELF, g(3)));
    expect(dom0.debugGfn(a, g(3))).toBe(2);
    expect(read(hv, a, 3)).toEqual(pageOf(12));
  },
  sharing_debug_gfn: async () => {
    const { hv, a, b, dom0 } = await clients();
    expect(dom0.debugGfn(a, g(0))).toBe(1);
    hv.writePage(b, g(1), 0, pageOf(11), 0, PAGE_SIZE);
    hv.share(a, g(1), hv.nominateGfn(a, g(1)), b, g(1), hv.nominateGfn(b, g(1)));
    expect(dom0.debugGfn(a, g(1))).toBe(2);
    expect(dom0.debugGfn(b, g(1))).toBe(2);
  },
  sharing_add_physmap: async () => {
    const { hv, a, b, dom0, ga } = await clients();
    dom0.addPhysmap(a, g(0), dom0.nominateGfn(a, g(0)), b, g(8));
    expect(read(hv, b, 8)).toEqual(pageOf(10));
    expect(hv.currentReservation(b)).toBe(5);
    expect(dom0.debugGfn(b, g(8))).toBe(2);
    ga.addPhysmap(DOMID_SELF, g(1), ga.nominateGfn(DOMID_SELF, g(1)), DOMID_SELF, g(9));
    expect(ga.readPage(DOMID_SELF, g(9), 0, PAGE_SIZE)).toEqual(pageOf(11));
    expect(hv.currentReservation(a)).toBe(5);
  },
  sharing_audit: async () => {
    const { hv, a, b, dom0 } = await clients();
    hv.addPhysmap(a, g(0), hv.nominateGfn(a, g(0)), b, g(8));
    expect(dom0.sharingAudit()).toBe(0);
    expect(hv.audit()).toEqual([]);
  },
  sharing_range_share: async () => {
    const { hv, a, b, dom0 } = await clients();
    for (const gfn of [0, 1]) hv.writePage(b, g(gfn), 0, pageOf(10 + gfn), 0, PAGE_SIZE);
    const free = hv.frames.freeFrames;
    expect(dom0.rangeShare(a, b, g(0), g(3))).toBe(2);
    expect(hv.frames.freeFrames).toBe(free + 2);
    expect([0, 1, 2, 3].map((gfn) => dom0.debugGfn(b, g(gfn)))).toEqual([2, 2, 1, 1]);
    expect(dom0.rangeShare(a, b, g(0), g(15))).toBe(0); // shared already, the rest differ
    expect(read(hv, b, 1)).toEqual(pageOf(11));
  },
  sharing_fork: async () => {
    const { hv, a, dom0 } = await clients();
    const child = dom0.createDomain(8, 16);
    dom0.fork(child, a);
    for (const gfn of range(4)) expect(read(hv, child, gfn)).toEqual(pageOf(10 + gfn));
    expect(hv.currentReservation(child)).toBe(4);
    expect(dom0.debugGfn(a, g(1))).toBe(2);
    const gc = client(hv, child, successes);
    gc.writePage(DOMID_SELF, g(0), 0, pageOf(77));
    expect(read(hv, child, 0)).toEqual(pageOf(77));
    expect(read(hv, a, 0)).toEqual(pageOf(10)); // the parent is untouched
  },
  sharing_fork_reset: async () => {
    const { hv, a, dom0 } = await clients();
    const child = dom0.createDomain(8, 16);
    dom0.fork(child, a);
    const gc = client(hv, child, successes);
    gc.writePage(DOMID_SELF, g(0), 0, pageOf(77));
    gc.populatePhysmap(DOMID_SELF, [9]);
    gc.forkReset(DOMID_SELF);
    expect(read(hv, child, 0)).toEqual(pageOf(10));
    expect(hv.currentReservation(child)).toBe(4);
    expectErrno(() => gc.readPage(DOMID_SELF, g(9), 0, 1), 'EINVAL');
    gc.writePage(DOMID_SELF, g(2), 0, Uint8Array.of(9));
    dom0.forkReset(child);
    expect(read(hv, child, 2)).toEqual(pageOf(12));
  },
  paging_nominate: async () => {
    const { hv, a, b, dom0, ga } = await clients({ swap: { mode: 'shared' } });
    ga.pagingNominate(DOMID_SELF, g(1));
    dom0.pagingNominate(b, g(2));
    expect(hv.p2m.table(a)!.type(g(1))).toBe(P2mType.paging_out);
    expect(hv.p2m.table(b)!.type(g(2))).toBe(P2mType.paging_out);
    expect(read(hv, a, 1)).toEqual(pageOf(11)); // still in RAM
  },
  paging_evict: async () => {
    const { hv, a, b, dom0, ga } = await clients({ swap: { mode: 'shared' } });
    const free = hv.frames.freeFrames;
    ga.pagingNominate(DOMID_SELF, g(1));
    ga.pagingEvict(DOMID_SELF, g(1));
    dom0.pagingNominate(b, g(2));
    dom0.pagingEvict(b, g(2));
    expect(hv.frames.freeFrames).toBe(free + 2);
    expect(hv.domainStats(a).pagedPages).toBe(1);
    expect(hv.totals().pagedPages).toBe(2);
    expect(read(hv, a, 1)).toEqual(pageOf(11)); // faulted back in
  },
  paging_prep: async () => {
    const { hv, a, b, dom0, ga } = await clients({ swap: { mode: 'shared' } });
    pageOut(hv, a, [1]);
    pageOut(hv, b, [2]);
    ga.pagingPrep(DOMID_SELF, g(1));
    expect(hv.p2m.table(a)!.type(g(1))).toBe(P2mType.ram_rw);
    expect(read(hv, a, 1)).toEqual(pageOf(11));
    dom0.pagingPrep(b, g(2), pageOf(99)); // prep + load
    expect(read(hv, b, 2)).toEqual(pageOf(99));
    expect(hv.totals().pagedPages).toBe(0);
  },
  tmem_new_pool: async () => {
    const { hv, a, dom0, ga } = await clients({ tmem: 8 });
    expect(ga.tmemNewPool(DOMID_SELF, true)).toBe(0);
    expect(dom0.tmemNewPool(a, false)).toBe(1);
    expect(hv.tmem!.domainPools(a)).toEqual([0, 1]);
  },
  tmem_destroy_pool: async () => {
    const { hv, a, dom0, ga } = await clients({ tmem: 8 });
    const p = ga.tmemNewPool(DOMID_SELF, true);
    ga.tmemPutPage(DOMID_SELF, p, [1, 2, 3], 0, pageOf(5));
    ga.tmemDestroyPool(DOMID_SELF, p);
    expectErrno(() => ga.tmemGetPage(DOMID_SELF, p, [1, 2, 3], 0), 'ENOENT');
    expect(hv.tmem!.stats()).toMatchObject({ pools: 0, persistentPages: 0, slotsUsed: 0 });
    dom0.tmemDestroyPool(a, dom0.tmemNewPool(a, false));
    expect(hv.tmem!.domainPools(a)).toEqual([]);
  },
  tmem_put_page: async () => {
    const { hv, a, dom0, ga } = await clients({ tmem: 8 });
    const p = ga.tmemNewPool(DOMID_SELF, true);
    expect(ga.tmemPutPage(DOMID_SELF, p, [1, 2, 3], 0, pageOf(5))).toBe(true);
    expect(dom0.tmemPutPage(a, p, [1, 2, 3], 1, pageOf(6))).toBe(true);
    expect(hv.tmem!.domainPages(a)).toBe(2);
  },
  tmem_get_page: async () => {
    const { a, dom0, ga } = await clients({ tmem: 8 });
    const persistent = ga.tmemNewPool(DOMID_SELF, true);
    const ephemeral = ga.tmemNewPool(DOMID_SELF, false);
    ga.tmemPutPage(DOMID_SELF, persistent, [1, 2, 3], 7, pageOf(5));
    ga.tmemPutPage(DOMID_SELF, ephemeral, [4, 5, 6], 0, pageOf(6));
    // The bytes round-trip; a persistent pool keeps the page, an ephemeral one gives it once.
    expect(ga.tmemGetPage(DOMID_SELF, persistent, [1, 2, 3], 7)).toEqual(pageOf(5));
    expect(dom0.tmemGetPage(a, persistent, [1, 2, 3], 7)).toEqual(pageOf(5));
    expect(ga.tmemGetPage(DOMID_SELF, ephemeral, [4, 5, 6], 0)).toEqual(pageOf(6));
    expect(ga.tmemGetPage(DOMID_SELF, ephemeral, [4, 5, 6], 0)).toBeUndefined();
    expect(ga.tmemGetPage(DOMID_SELF, persistent, [1, 2, 3], 8)).toBeUndefined();
  },
  tmem_flush_page: async () => {
    const { a, dom0, ga } = await clients({ tmem: 8 });
    const p = ga.tmemNewPool(DOMID_SELF, true);
    ga.tmemPutPage(DOMID_SELF, p, [1, 2, 3], 0, pageOf(5));
    ga.tmemPutPage(DOMID_SELF, p, [1, 2, 3], 1, pageOf(6));
    expect(ga.tmemFlushPage(DOMID_SELF, p, [1, 2, 3], 0)).toBe(true);
    expect(ga.tmemFlushPage(DOMID_SELF, p, [1, 2, 3], 0)).toBe(false);
    expect(dom0.tmemFlushPage(a, p, [1, 2, 3], 1)).toBe(true);
    expect(ga.tmemGetPage(DOMID_SELF, p, [1, 2, 3], 1)).toBeUndefined();
  },
  tmem_flush_object: async () => {
    const { a, dom0, ga } = await clients({ tmem: 8 });
    const p = ga.tmemNewPool(DOMID_SELF, true);
    for (const i of [0, 1, 2]) ga.tmemPutPage(DOMID_SELF, p, [1, 2, 3], i, pageOf(i));
    ga.tmemPutPage(DOMID_SELF, p, [9, 9, 9], 0, pageOf(9));
    expect(ga.tmemFlushObject(DOMID_SELF, p, [1, 2, 3])).toBe(3);
    expect(ga.tmemGetPage(DOMID_SELF, p, [1, 2, 3], 1)).toBeUndefined();
    expect(ga.tmemGetPage(DOMID_SELF, p, [9, 9, 9], 0)).toEqual(pageOf(9));
    expect(dom0.tmemFlushObject(a, p, [9, 9, 9])).toBe(1);
    expect(dom0.tmemFlushObject(a, p, [9, 9, 9])).toBe(0);
  },
  domctl_createdomain: async () => {
    const { hv, dom0 } = await clients();
    const d = dom0.createDomain(6, 12, 3);
    const rec = hv.domains().find((x) => x.id === d)!;
    expect(rec).toMatchObject({ trustGroup: 3, sharing: true, paused: false });
    expect(rec.table.size).toBe(12);
    expect(dom0.maximumReservation(d)).toBe(6);
    expect(dom0.currentReservation(d)).toBe(0);
    expect(dom0.populatePhysmap(d, [11])).toBe(1);
  },
  domctl_destroydomain: async () => {
    const { hv, b, dom0 } = await clients();
    const free = hv.frames.freeFrames;
    dom0.destroyDomain(b);
    expect(hv.frames.freeFrames).toBe(free + 4);
    expect(hv.domains().map((d) => d.id)).not.toContain(b);
    expectErrno(() => dom0.currentReservation(b), 'ESRCH');
  },
  domctl_pausedomain: async () => {
    const { hv, a, dom0, ga } = await clients();
    dom0.pauseDomain(a);
    expect(hv.isPaused(a)).toBe(true);
    expectErrno(() => ga.readPage(DOMID_SELF, g(0), 0, 8), 'EAGAIN');
    expectErrno(() => ga.writePage(DOMID_SELF, g(0), 0, Uint8Array.of(1)), 'EAGAIN');
    expect(read(hv, asDomId(2), 0)).toEqual(pageOf(20)); // the others run
  },
  domctl_unpausedomain: async () => {
    const { hv, a, dom0, ga } = await clients();
    dom0.pauseDomain(a);
    dom0.unpauseDomain(a);
    expect(hv.isPaused(a)).toBe(false);
    expect(ga.readPage(DOMID_SELF, g(0), 0, PAGE_SIZE)).toEqual(pageOf(10));
  },
  domctl_max_mem: async () => {
    const { a, dom0, ga } = await clients();
    dom0.setMaxPages(a, 2); // below the 4 pages held: growth stops, nothing is taken away
    expect(ga.maximumReservation(DOMID_SELF)).toBe(2);
    expect(ga.currentReservation(DOMID_SELF)).toBe(4);
    expectErrno(() => ga.populatePhysmap(DOMID_SELF, [4]), 'E2BIG');
    dom0.setMaxPages(a, 5);
    expect(ga.populatePhysmap(DOMID_SELF, [4])).toBe(1);
  },
  domctl_sharing_control: async () => {
    const { a, dom0, ga } = await clients();
    dom0.setSharing(a, false);
    expectErrno(() => ga.nominateGfn(DOMID_SELF, g(0)), 'EOPNOTSUPP');
    dom0.setSharing(a, true);
    expect(ga.nominateGfn(DOMID_SELF, g(0))).toBeGreaterThan(0);
  },
};

describe('1. every op succeeds through the dispatcher, with its effect', () => {
  for (const op of HYPERCALL_OPS) {
    it(op, async () => {
      built.length = 0;
      await SUCCESS[op]();
      expect(built.length).toBeGreaterThan(0);
      for (const hv of built) expect(problems(hv)).toEqual([]);
    });
  }

  it('each op succeeded for the control domain, and for a guest where a guest may issue it', () => {
    expect(HYPERCALL_OPS.filter((op) => !successes.has(`control:${op}`))).toEqual([]);
    expect(GUEST_SUCCESS_OPS.filter((op) => !successes.has(`guest:${op}`))).toEqual([]);
    // Control-only ops never succeed for a guest.
    expect(CONTROL_ONLY.filter((op) => successes.has(`guest:${op}`))).toEqual([]);
  });
});

// ---- 2. every declared errno, provoked ---------------------------------------------------------

/** A hypercall about to be refused, on a host set up for it. */
interface Provoke {
  readonly h: Host;
  readonly caller: DomId;
  readonly req: HypercallRequest;
  /** Turns the snapshot taken before into the one expected after (documented effects of the refusal). */
  readonly after?: (s: Snapshot) => void;
  /** Further checks once the refusal is shown to have changed nothing. */
  readonly verify?: () => void;
}

interface Variant {
  readonly what: string;
  readonly setup: () => Promise<Provoke>;
}

/** `${op}:${errno}` → ways of provoking it. */
const ERRNO_CASES = new Map<string, Variant[]>();

function provoke(op: HypercallOp, errno: ErrnoName, what: string, setup: () => Promise<Provoke>): void {
  const key = `${op}:${errno}`;
  const list = ERRNO_CASES.get(key) ?? [];
  list.push({ what, setup });
  ERRNO_CASES.set(key, list);
}

const swapped = (mode: 'shared' | 'per-domain' = 'shared', slots?: number | ((dom: DomId) => number)): Promise<Host> =>
  host({ swap: slots === undefined ? { mode } : { mode, slots } });

/** Marks `dom` paused in a snapshot (a failed swap-in pauses the domain, as documented). */
const paused = (dom: DomId) => (s: Snapshot) => {
  s.domains.find((d) => d.id === dom)!.paused = true;
};

// ESRCH: the control domain names a domain that does not exist (each domain argument in turn).
for (const op of DOMAIN_OPS) {
  provoke(op, 'ESRCH', 'the control domain names no domain', async () => {
    const h = await host({ tmem: 4, swap: { mode: 'shared' } });
    return { h, caller: DOMID_CONTROL, req: template(op, NOBODY, h.a) };
  });
  if (TWO_DOMAIN_OPS.includes(op)) {
    provoke(op, 'ESRCH', 'the second domain does not exist', async () => {
      const h = await host({ tmem: 4, swap: { mode: 'shared' } });
      hostNominate(h);
      return { h, caller: DOMID_CONTROL, req: template(op, h.a, NOBODY) };
    });
  }
}

/** Nominates gfn 0 of A (handle 1) and of B (handle 2), as the templates' handles assume. */
function hostNominate(h: Host): void {
  expect(h.hv.nominateGfn(h.a, g(0))).toBe(1);
  expect(h.hv.nominateGfn(h.b, g(0))).toBe(2);
}

// EPERM: a guest names another guest; a guest issues a control-only op, even naming itself.
for (const op of HYPERCALL_OPS) {
  if (CONTROL_ONLY.includes(op)) {
    provoke(op, 'EPERM', 'a guest issues a control-only op on itself', async () => {
      const h = await host({ tmem: 4, swap: { mode: 'shared' } });
      return { h, caller: h.a, req: template(op, h.a, h.a) };
    });
  } else {
    provoke(op, 'EPERM', 'guest A names guest B', async () => {
      const h = await host({ tmem: 4, swap: { mode: 'shared' } });
      h.hv.tmemNewPool(h.b, true);
      return { h, caller: h.a, req: template(op, h.b, h.a) };
    });
  }
  if (TWO_DOMAIN_OPS.includes(op)) {
    provoke(op, 'EPERM', 'guest A names itself and guest B', async () => {
      const h = await host();
      hostNominate(h);
      return { h, caller: h.a, req: template(op, h.a, h.b) };
    });
    provoke(op, 'EPERM', 'the control domain joins two trust groups', async () => {
      const h = await host();
      hostNominate(h);
      // C is in trust group 1; it holds gfn 0 (nominated, handle 3) unless it is to be a fork.
      const c = guest(h.hv, 8, 16, op === 'sharing_fork' ? [] : [10], 1);
      if (op !== 'sharing_fork') expect(h.hv.nominateGfn(c, g(0))).toBe(3);
      const req: HypercallRequest =
        op === 'sharing_share'
          ? { op, sourceDomid: h.a, sourceGfn: 0, sourceHandle: 1, clientDomid: c, clientGfn: 0, clientHandle: 3 }
          : op === 'sharing_add_physmap'
            ? { op, sourceDomid: h.a, sourceGfn: 0, sourceHandle: 1, clientDomid: c, clientGfn: 8 }
            : op === 'sharing_range_share'
              ? { op, sourceDomid: h.a, clientDomid: c, firstGfn: 0, lastGfn: 3 }
              : { op: 'sharing_fork', domid: c, parentDomid: h.a };
      return { h, caller: DOMID_CONTROL, req };
    });
  }
}

// -- reservations
provoke('increase_reservation', 'E2BIG', 'A holds 4 of 8 pages and asks for 5', async () => {
  const h = await host();
  return { h, caller: h.a, req: { op: 'increase_reservation', domid: DOMID_SELF, nrExtents: 5, extentOrder: 0, memFlags: 0 } };
});
provoke('increase_reservation', 'ENOMEM', 'no unpopulated gfn left', async () => {
  const h = await host();
  const c = guest(h.hv, 8, 4, [1, 2, 3, 4]);
  return { h, caller: c, req: { op: 'increase_reservation', domid: DOMID_SELF, nrExtents: 1, extentOrder: 0, memFlags: 0 } };
});
provoke('increase_reservation', 'ENOMEM', 'one frame more than are free', async () => {
  const h = await host();
  const c = h.hv.createDomain({ maxPages: 64, gfnCount: 64 });
  return { h, caller: c, req: { op: 'increase_reservation', domid: c, nrExtents: h.hv.frames.freeFrames + 1, extentOrder: 0, memFlags: 0 } };
});
provoke('increase_reservation', 'ENOMEM', 'the free frames are claimed by another domain', async () => {
  const h = await host();
  h.hv.claimPages(h.a, 8);
  const c = h.hv.createDomain({ maxPages: 64, gfnCount: 64 });
  return { h, caller: c, req: { op: 'increase_reservation', domid: c, nrExtents: h.hv.frames.freeFrames - 3, extentOrder: 0, memFlags: 0 } };
});
provoke('decrease_reservation', 'EINVAL', 'an extent is not populated', async () => {
  const h = await host();
  return { h, caller: h.a, req: { op: 'decrease_reservation', domid: DOMID_SELF, extentOrder: 0, gfns: [0, 5] } };
});
provoke('decrease_reservation', 'EINVAL', 'an extent is named twice', async () => {
  const h = await host();
  return { h, caller: h.a, req: { op: 'decrease_reservation', domid: DOMID_SELF, extentOrder: 0, gfns: [1, 1] } };
});
provoke('decrease_reservation', 'EINVAL', 'an extent is outside the domain', async () => {
  const h = await host();
  return { h, caller: DOMID_CONTROL, req: { op: 'decrease_reservation', domid: h.a, extentOrder: 0, gfns: [16] } };
});
provoke('populate_physmap', 'EINVAL', 'an extent is outside the domain', async () => {
  const h = await host();
  return { h, caller: h.a, req: { op: 'populate_physmap', domid: DOMID_SELF, extentOrder: 0, memFlags: 0, gfns: [4, 16] } };
});
provoke('populate_physmap', 'EINVAL', 'an extent is unaligned', async () => {
  const h = await host();
  return { h, caller: h.a, req: { op: 'populate_physmap', domid: DOMID_SELF, extentOrder: 1, memFlags: 0, gfns: [5] } };
});
provoke('populate_physmap', 'EEXIST', 'a page is populated already', async () => {
  const h = await host();
  return { h, caller: h.a, req: { op: 'populate_physmap', domid: DOMID_SELF, extentOrder: 0, memFlags: 0, gfns: [4, 2] } };
});
provoke('populate_physmap', 'E2BIG', 'A holds 4 of 8 pages and asks for 5', async () => {
  const h = await host();
  return { h, caller: h.a, req: { op: 'populate_physmap', domid: DOMID_SELF, extentOrder: 0, memFlags: 0, gfns: range(5, 4) } };
});
provoke('populate_physmap', 'ENOMEM', 'one frame more than are free', async () => {
  const h = await host();
  const c = h.hv.createDomain({ maxPages: 64, gfnCount: 64 });
  return { h, caller: c, req: { op: 'populate_physmap', domid: c, extentOrder: 0, memFlags: 0, gfns: range(h.hv.frames.freeFrames + 1) } };
});
provoke(
  'populate_physmap',
  'ENOMEM',
  'with swap: more frames than free and evictable',
  async () => {
    // More pages than RAM has frames: no eviction could make room, so none is tried.
    const h = await swapped('shared', 8);
    const c = fillMemory(h.hv);
    expect(h.hv.totals().pagedPages).toBe(4);
    const total = h.hv.frames.totalFrames;
    return { h, caller: c, req: { op: 'populate_physmap', domid: c, extentOrder: 0, memFlags: 0, gfns: range(total).map((i) => total + i) } };
  },
);
provoke(
  'increase_reservation',
  'ENOMEM',
  'with swap: more frames than free and evictable',
  async () => {
    const h = await swapped('shared', 8);
    const c = fillMemory(h.hv);
    return { h, caller: c, req: { op: 'increase_reservation', domid: c, nrExtents: h.hv.frames.totalFrames, extentOrder: 0, memFlags: 0 } };
  },
);
provoke('claim_pages', 'EINVAL', 'the claim is not above the pages held', async () => {
  const h = await host();
  return { h, caller: DOMID_CONTROL, req: { op: 'claim_pages', domid: h.a, nrPages: 4 } };
});
provoke('claim_pages', 'EINVAL', 'the claim is above max_pages', async () => {
  const h = await host();
  return { h, caller: DOMID_CONTROL, req: { op: 'claim_pages', domid: h.a, nrPages: 9 } };
});
provoke('claim_pages', 'EINVAL', 'a claim is held already', async () => {
  const h = await host();
  h.hv.claimPages(h.a, 6);
  return { h, caller: DOMID_CONTROL, req: { op: 'claim_pages', domid: h.a, nrPages: 7 } };
});
provoke('claim_pages', 'ENOMEM', 'one frame more than are free', async () => {
  const h = await host();
  const c = h.hv.createDomain({ maxPages: 64, gfnCount: 64 });
  return { h, caller: DOMID_CONTROL, req: { op: 'claim_pages', domid: c, nrPages: h.hv.frames.freeFrames + 1 } };
});
provoke('claim_pages', 'ENOMEM', 'the free frames are claimed by another domain', async () => {
  const h = await host();
  h.hv.claimPages(h.a, 8);
  const c = h.hv.createDomain({ maxPages: 64, gfnCount: 64 });
  return { h, caller: DOMID_CONTROL, req: { op: 'claim_pages', domid: c, nrPages: h.hv.frames.freeFrames - 3 } };
});

// -- page access
for (const op of ['read_page', 'write_page'] as const) {
  const access = (domid: number, gfn: number): HypercallRequest =>
    op === 'read_page' ? { op, domid, gfn, offset: 0, length: 16 } : { op, domid, gfn, offset: 8, data: Uint8Array.of(1, 2, 3) };
  provoke(op, 'EINVAL', 'the page is not populated', async () => {
    const h = await host();
    return { h, caller: h.a, req: access(DOMID_SELF, 5) };
  });
  provoke(op, 'EINVAL', 'the gfn is outside the domain', async () => {
    const h = await host();
    return { h, caller: h.a, req: access(DOMID_SELF, 16) };
  });
  provoke(op, 'EAGAIN', 'the domain is paused', async () => {
    const h = await host();
    h.hv.pauseDomain(h.a);
    return { h, caller: h.a, req: access(DOMID_SELF, 0) };
  });
  provoke(op, 'EIO', 'the swap-in fails: the domain is paused', async () => {
    const h = await swapped();
    pageOut(h.hv, h.a, [1]);
    h.faultsOf(h.a).failReads = true;
    return {
      h,
      caller: h.a,
      req: access(DOMID_SELF, 1),
      after: paused(h.a),
      verify: () => {
        h.faultsOf(h.a).heal();
        expectErrno(() => read(h.hv, h.a, 0), 'EAGAIN');
        h.hv.unpauseDomain(h.a);
        expect(read(h.hv, h.a, 1)).toEqual(pageOf(11));
      },
    };
  });
  provoke(op, 'ENOMEM', 'the page is out on swap and no frame can be freed', async () => {
    const h = await swapped();
    pageOut(h.hv, h.a, [1]);
    h.faultsOf(h.a).failWrites = WriteFault.eio; // every eviction fails
    fillMemory(h.hv);
    expect(h.hv.frames.freeFrames).toBe(0);
    return {
      h,
      caller: h.a,
      req: access(DOMID_SELF, 1),
      verify: () => {
        h.faultsOf(h.a).heal();
        expect(read(h.hv, h.a, 1)).toEqual(pageOf(11));
      },
    };
  });
}
provoke('write_page', 'ENOMEM', 'a copy-on-write copy finds no free frame', async () => {
  const h = await host();
  h.hv.writePage(h.b, g(0), 0, pageOf(10), 0, PAGE_SIZE);
  h.hv.share(h.a, g(0), h.hv.nominateGfn(h.a, g(0)), h.b, g(0), h.hv.nominateGfn(h.b, g(0)));
  fillMemory(h.hv);
  return { h, caller: h.a, req: { op: 'write_page', domid: DOMID_SELF, gfn: 0, offset: 5, data: Uint8Array.of(1) } };
});
provoke('write_page', 'ENOMEM', 'an on-demand page finds no free frame', async () => {
  const h = await host();
  h.hv.madvise(h.a, g(1), 1, Madvise.dontneed);
  fillMemory(h.hv);
  return { h, caller: h.a, req: { op: 'write_page', domid: DOMID_SELF, gfn: 1, offset: 0, data: Uint8Array.of(1) } };
});

// -- madvise
provoke('madvise', 'EINVAL', 'MADV_DONTNEED past the end of the domain', async () => {
  const h = await host();
  return { h, caller: h.a, req: { op: 'madvise', domid: DOMID_SELF, gfn: 10, count: 7, advice: Madvise.dontneed } };
});
provoke('madvise', 'EINVAL', 'MADV_MERGEABLE past the end of the domain', async () => {
  const h = await host({ dedup: createDedup('ksm') });
  return { h, caller: h.a, req: { op: 'madvise', domid: DOMID_SELF, gfn: 0, count: 17, advice: Madvise.mergeable } };
});
/** A KSM host where dom D has 6 identical pages merged onto one KSM page. */
async function mergedHost(dedup: DedupIndex): Promise<{ h: Host; d: DomId }> {
  const h = await host({ dedup });
  const d = guest(h.hv, 8, 8, [7, 7, 7, 7, 7, 7]);
  h.hv.madvise(d, g(0), 6, Madvise.mergeable);
  fullScans(h.hv, 3);
  expect(h.hv.debugGfn(d, g(0))).toBe(6);
  return { h, d };
}
provoke('madvise', 'ENOMEM', 'MADV_UNMERGEABLE needs 5 frames, none is free', async () => {
  const { h, d } = await mergedHost(createDedup('ksm'));
  fillMemory(h.hv);
  return { h, caller: d, req: { op: 'madvise', domid: DOMID_SELF, gfn: 0, count: 6, advice: Madvise.unmergeable } };
});
// -- sharing
provoke('sharing_nominate_gfn', 'EOPNOTSUPP', 'sharing is disabled for the domain', async () => {
  const h = await host();
  h.hv.setSharing(h.a, false);
  return { h, caller: h.a, req: { op: 'sharing_nominate_gfn', domid: DOMID_SELF, gfn: 0 } };
});
provoke('sharing_nominate_gfn', 'EINVAL', 'the page is not populated', async () => {
  const h = await host();
  return { h, caller: h.a, req: { op: 'sharing_nominate_gfn', domid: DOMID_SELF, gfn: 5 } };
});
provoke('sharing_nominate_gfn', 'EINVAL', 'the page maps the zero frame', async () => {
  const h = await host({ dedup: createDedup('inline') });
  h.hv.populatePhysmap(h.a, [4]);
  return { h, caller: h.a, req: { op: 'sharing_nominate_gfn', domid: DOMID_SELF, gfn: 4 } };
});
provoke('sharing_nominate_gfn', 'EINVAL', 'the page is out on swap', async () => {
  const h = await swapped();
  pageOut(h.hv, h.a, [1]);
  return { h, caller: h.a, req: { op: 'sharing_nominate_gfn', domid: DOMID_SELF, gfn: 1 } };
});
provoke('sharing_share', 'EOPNOTSUPP', 'sharing is disabled for the client', async () => {
  const h = await host();
  hostNominate(h);
  h.hv.setSharing(h.b, false);
  return { h, caller: DOMID_CONTROL, req: template('sharing_share', h.a, h.b) };
});
provoke('sharing_share', 'ENOENT', 'the source handle is not current', async () => {
  const h = await host();
  hostNominate(h);
  return { h, caller: DOMID_CONTROL, req: { ...(template('sharing_share', h.a, h.b) as Extract<HypercallRequest, { op: 'sharing_share' }>), sourceHandle: 77 } };
});
provoke('sharing_share', 'ENOENT', 'the client handle went stale when the page was written', async () => {
  const h = await host();
  hostNominate(h);
  h.hv.writePage(h.b, g(0), 0, pageOf(10), 0, PAGE_SIZE);
  return { h, caller: DOMID_CONTROL, req: template('sharing_share', h.a, h.b) };
});
provoke('sharing_share', 'EINVAL', 'the two pages differ', async () => {
  const h = await host();
  hostNominate(h);
  return { h, caller: DOMID_CONTROL, req: template('sharing_share', h.a, h.b) };
});
provoke('sharing_share', 'EINVAL', 'the client gfn is outside its domain', async () => {
  const h = await host();
  hostNominate(h);
  return { h, caller: DOMID_CONTROL, req: { ...(template('sharing_share', h.a, h.b) as Extract<HypercallRequest, { op: 'sharing_share' }>), clientGfn: 16 } };
});
provoke('sharing_debug_gfn', 'EINVAL', 'the page is not populated', async () => {
  const h = await host();
  return { h, caller: DOMID_CONTROL, req: { op: 'sharing_debug_gfn', domid: h.a, gfn: 5 } };
});
provoke('sharing_debug_gfn', 'EINVAL', 'the page has no frame (after MADV_DONTNEED)', async () => {
  const h = await host();
  h.hv.madvise(h.a, g(1), 1, Madvise.dontneed);
  return { h, caller: DOMID_CONTROL, req: { op: 'sharing_debug_gfn', domid: h.a, gfn: 1 } };
});
provoke('sharing_debug_gfn', 'EINVAL', 'the gfn is outside the domain', async () => {
  const h = await host();
  return { h, caller: DOMID_CONTROL, req: { op: 'sharing_debug_gfn', domid: h.a, gfn: 16 } };
});
const addPhysmap = (h: Host, patch: Partial<Extract<HypercallRequest, { op: 'sharing_add_physmap' }>> = {}): HypercallRequest => ({
  ...(template('sharing_add_physmap', h.a, h.b) as Extract<HypercallRequest, { op: 'sharing_add_physmap' }>),
  ...patch,
});
provoke('sharing_add_physmap', 'EOPNOTSUPP', 'sharing is disabled for the client', async () => {
  const h = await host();
  hostNominate(h);
  h.hv.setSharing(h.b, false);
  return { h, caller: DOMID_CONTROL, req: addPhysmap(h) };
});
provoke('sharing_add_physmap', 'ENOENT', 'the source handle is not current', async () => {
  const h = await host();
  hostNominate(h);
  return { h, caller: DOMID_CONTROL, req: addPhysmap(h, { sourceHandle: 77 }) };
});
provoke('sharing_add_physmap', 'EINVAL', 'the client gfn is outside its domain', async () => {
  const h = await host();
  hostNominate(h);
  return { h, caller: DOMID_CONTROL, req: addPhysmap(h, { clientGfn: 16 }) };
});
provoke('sharing_add_physmap', 'EEXIST', 'the client gfn is populated', async () => {
  const h = await host();
  hostNominate(h);
  return { h, caller: DOMID_CONTROL, req: addPhysmap(h, { clientGfn: 1 }) };
});
provoke('sharing_add_physmap', 'E2BIG', 'the client holds its max_pages', async () => {
  const h = await host();
  hostNominate(h);
  h.hv.setMaxPages(h.b, 4);
  return { h, caller: DOMID_CONTROL, req: addPhysmap(h) };
});
provoke('sharing_range_share', 'EOPNOTSUPP', 'sharing is disabled for the client', async () => {
  const h = await host();
  h.hv.setSharing(h.b, false);
  return { h, caller: DOMID_CONTROL, req: template('sharing_range_share', h.a, h.b) };
});
provoke('sharing_range_share', 'EINVAL', 'source and client are the same domain', async () => {
  const h = await host();
  return { h, caller: h.a, req: template('sharing_range_share', DOMID_SELF, DOMID_SELF) };
});
provoke('sharing_range_share', 'EINVAL', 'the range is outside the domains', async () => {
  const h = await host();
  return { h, caller: DOMID_CONTROL, req: { op: 'sharing_range_share', sourceDomid: h.a, clientDomid: h.b, firstGfn: 0, lastGfn: 16 } };
});

// -- forks
const fork = (child: number, parent: number): HypercallRequest => ({ op: 'sharing_fork', domid: child, parentDomid: parent });
provoke('sharing_fork', 'EOPNOTSUPP', 'sharing is disabled for the parent', async () => {
  const h = await host();
  const c = h.hv.createDomain({ maxPages: 8, gfnCount: 16 });
  h.hv.setSharing(h.a, false);
  return { h, caller: DOMID_CONTROL, req: fork(c, h.a) };
});
provoke('sharing_fork', 'EINVAL', 'the child is the parent', async () => {
  const h = await host();
  return { h, caller: h.a, req: fork(DOMID_SELF, DOMID_SELF) };
});
provoke('sharing_fork', 'EINVAL', "the child's guest-physical space is smaller than the parent's populated range", async () => {
  const h = await host();
  const c = h.hv.createDomain({ maxPages: 8, gfnCount: 3 });
  return { h, caller: DOMID_CONTROL, req: fork(c, h.a) };
});
provoke('sharing_fork', 'EBUSY', 'the child holds pages', async () => {
  const h = await host();
  return { h, caller: DOMID_CONTROL, req: fork(h.b, h.a) };
});
provoke('sharing_fork', 'EBUSY', 'the child is a fork already', async () => {
  const h = await host();
  const c = h.hv.createDomain({ maxPages: 8, gfnCount: 16 });
  h.hv.fork(c, h.a);
  h.hv.decreaseReservation(c, range(4));
  return { h, caller: DOMID_CONTROL, req: fork(c, h.b) };
});
provoke('sharing_fork', 'E2BIG', "the child's max_pages is below the parent's pages", async () => {
  const h = await host();
  const c = h.hv.createDomain({ maxPages: 3, gfnCount: 16 });
  return { h, caller: DOMID_CONTROL, req: fork(c, h.a) };
});
/** Per-domain swap areas of 64 slots, the child's (dom 3) of `childSlots`; A has gfns 1 and 2 paged out. */
async function forkHost(childSlots = 64): Promise<{ h: Host; c: DomId }> {
  const h = await swapped('per-domain', (dom) => (dom === 3 ? childSlots : 64));
  pageOut(h.hv, h.a, [1, 2]);
  const c = h.hv.createDomain({ maxPages: 8, gfnCount: 16 });
  expect(c).toBe(3);
  return { h, c };
}
provoke('sharing_fork', 'ENOSPC', "the child's swap area has room for one of the parent's two paged-out pages", async () => {
  const { h, c } = await forkHost(1);
  return { h, caller: DOMID_CONTROL, req: fork(c, h.a), verify: () => expect(h.hv.currentReservation(c)).toBe(0) };
});
provoke('sharing_fork', 'EIO', "reading the parent's paged-out page fails", async () => {
  const { h, c } = await forkHost();
  h.faultsOf(h.a).failReads = true;
  return {
    h,
    caller: DOMID_CONTROL,
    req: fork(c, h.a),
    verify: () => {
      h.faultsOf(h.a).heal();
      h.hv.fork(c, h.a);
      expect(read(h.hv, c, 2)).toEqual(pageOf(12));
    },
  };
});
provoke('sharing_fork_reset', 'EINVAL', 'the domain is not a fork', async () => {
  const h = await host();
  return { h, caller: h.a, req: { op: 'sharing_fork_reset', domid: DOMID_SELF } };
});
provoke('sharing_fork_reset', 'EOPNOTSUPP', 'the parent has sharing disabled', async () => {
  const h = await host();
  const c = h.hv.createDomain({ maxPages: 8, gfnCount: 16 });
  h.hv.fork(c, h.a);
  h.hv.writePage(c, g(0), 0, pageOf(55), 0, PAGE_SIZE);
  h.hv.setSharing(h.a, false);
  return { h, caller: c, req: { op: 'sharing_fork_reset', domid: DOMID_SELF }, verify: () => expect(read(h.hv, c, 0)).toEqual(pageOf(55)) };
});
provoke('sharing_fork_reset', 'E2BIG', "the parent has grown past the fork's max_pages", async () => {
  const h = await host();
  const c = h.hv.createDomain({ maxPages: h.hv.currentReservation(h.a), gfnCount: 16 });
  h.hv.fork(c, h.a);
  h.hv.writePage(c, g(0), 0, pageOf(55), 0, PAGE_SIZE);
  h.hv.populatePhysmap(h.a, [12]);
  return { h, caller: c, req: { op: 'sharing_fork_reset', domid: DOMID_SELF }, verify: () => expect(read(h.hv, c, 0)).toEqual(pageOf(55)) };
});
provoke('sharing_fork_reset', 'ENOSPC', "the fork's swap area has no room for fresh copies of the parent's paged-out pages", async () => {
  const { h, c } = await forkHost(2);
  h.hv.fork(c, h.a);
  h.hv.writePage(c, g(0), 0, pageOf(55), 0, PAGE_SIZE);
  return { h, caller: c, req: { op: 'sharing_fork_reset', domid: DOMID_SELF }, verify: () => expect(read(h.hv, c, 0)).toEqual(pageOf(55)) };
});
provoke('sharing_fork_reset', 'EIO', "reading the parent's paged-out page fails", async () => {
  const { h, c } = await forkHost();
  h.hv.fork(c, h.a);
  h.hv.writePage(c, g(0), 0, pageOf(55), 0, PAGE_SIZE);
  h.faultsOf(h.a).failReads = true;
  return { h, caller: c, req: { op: 'sharing_fork_reset', domid: DOMID_SELF }, verify: () => expect(read(h.hv, c, 0)).toEqual(pageOf(55)) };
});

// -- paging
for (const op of ['paging_nominate', 'paging_evict', 'paging_prep'] as const) {
  provoke(op, 'EOPNOTSUPP', 'the hypervisor has no swap', async () => {
    const h = await host();
    return { h, caller: h.a, req: { op, domid: DOMID_SELF, gfn: 0 } };
  });
}
provoke('paging_nominate', 'EINVAL', 'the page is not populated', async () => {
  const h = await swapped();
  return { h, caller: h.a, req: { op: 'paging_nominate', domid: DOMID_SELF, gfn: 5 } };
});
provoke('paging_nominate', 'EINVAL', 'the page is nominated already', async () => {
  const h = await swapped();
  h.hv.pagingNominate(h.a, g(0));
  return { h, caller: h.a, req: { op: 'paging_nominate', domid: DOMID_SELF, gfn: 0 } };
});
provoke('paging_nominate', 'EINVAL', 'the page is shared', async () => {
  const h = await swapped();
  h.hv.nominateGfn(h.a, g(0));
  return { h, caller: h.a, req: { op: 'paging_nominate', domid: DOMID_SELF, gfn: 0 } };
});
provoke('paging_evict', 'EINVAL', 'the page is not nominated', async () => {
  const h = await swapped();
  return { h, caller: h.a, req: { op: 'paging_evict', domid: DOMID_SELF, gfn: 0 } };
});
provoke('paging_evict', 'EINVAL', 'the gfn is outside the domain', async () => {
  const h = await swapped();
  return { h, caller: h.a, req: { op: 'paging_evict', domid: DOMID_SELF, gfn: 16 } };
});
provoke('paging_evict', 'ENOSPC', 'the swap area is full', async () => {
  const h = await swapped('shared', 1);
  pageOut(h.hv, h.a, [1]);
  h.hv.pagingNominate(h.a, g(2));
  return { h, caller: h.a, req: { op: 'paging_evict', domid: DOMID_SELF, gfn: 2 } };
});
provoke('paging_evict', 'EIO', 'the swap device fails the write', async () => {
  const h = await swapped();
  h.hv.pagingNominate(h.a, g(2));
  h.faultsOf(h.a).failWrites = WriteFault.eio;
  return { h, caller: h.a, req: { op: 'paging_evict', domid: DOMID_SELF, gfn: 2 } };
});
provoke('paging_prep', 'EINVAL', 'the page is not paged out', async () => {
  const h = await swapped();
  return { h, caller: h.a, req: { op: 'paging_prep', domid: DOMID_SELF, gfn: 0 } };
});
provoke('paging_prep', 'ENOMEM', 'no frame can be freed for the page', async () => {
  const h = await swapped();
  pageOut(h.hv, h.a, [1]);
  h.faultsOf(h.a).failWrites = WriteFault.eio;
  fillMemory(h.hv);
  return { h, caller: h.a, req: { op: 'paging_prep', domid: DOMID_SELF, gfn: 1, data: pageOf(3) } };
});
provoke('paging_prep', 'EIO', 'reading the page from swap fails', async () => {
  const h = await swapped();
  pageOut(h.hv, h.a, [1]);
  h.faultsOf(h.a).failReads = true;
  return {
    h,
    caller: h.a,
    req: { op: 'paging_prep', domid: DOMID_SELF, gfn: 1 },
    verify: () => {
      h.faultsOf(h.a).heal();
      expect(read(h.hv, h.a, 1)).toEqual(pageOf(11));
    },
  };
});

// -- tmem
for (const op of ['tmem_new_pool', 'tmem_destroy_pool', 'tmem_put_page', 'tmem_get_page', 'tmem_flush_page', 'tmem_flush_object'] as const) {
  provoke(op, 'EOPNOTSUPP', 'the hypervisor has no tmem', async () => {
    const h = await host();
    return { h, caller: h.a, req: template(op, DOMID_SELF, DOMID_SELF) };
  });
  if (op === 'tmem_new_pool') continue;
  provoke(op, 'ENOENT', 'the domain has no pool 0', async () => {
    const h = await host({ tmem: 4 });
    h.hv.tmemNewPool(h.b, true); // B's pool 0 is no pool of A's
    return { h, caller: h.a, req: template(op, DOMID_SELF, DOMID_SELF) };
  });
  provoke(op, 'ENOENT', 'the pool id is above the 16 a domain may have', async () => {
    const h = await host({ tmem: 4 });
    return { h, caller: h.a, req: { ...(template(op, DOMID_SELF, DOMID_SELF) as { op: typeof op; poolId: number }), poolId: 99 } as HypercallRequest };
  });
}
provoke('tmem_new_pool', 'ENOSPC', 'the domain has 16 pools', async () => {
  const h = await host({ tmem: 4 });
  for (let i = 0; i < 16; i++) h.hv.tmemNewPool(h.a, i % 2 === 0);
  return { h, caller: h.a, req: template('tmem_new_pool', DOMID_SELF, DOMID_SELF) };
});
provoke('tmem_put_page', 'ENOSPC', 'a persistent pool and the store is full', async () => {
  const h = await host({ tmem: 2 });
  const p = h.hv.tmemNewPool(h.a, true);
  h.hv.tmemPutPage(h.a, p, [1, 2, 3], 0, pageOf(1));
  h.hv.tmemPutPage(h.a, p, [1, 2, 3], 1, pageOf(2));
  return {
    h,
    caller: h.a,
    req: { op: 'tmem_put_page', domid: DOMID_SELF, poolId: p, oid0: 1, oid1: 2, oid2: 3, index: 2, data: pageOf(3) },
    verify: () => {
      const out = new Uint8Array(PAGE_SIZE);
      expect(h.hv.tmemGetPage(h.a, p, [1, 2, 3], 1, out)).toBe(true);
      expect(out).toEqual(pageOf(2));
      expect(h.hv.tmemGetPage(h.a, p, [1, 2, 3], 2, out)).toBe(false);
    },
  };
});

// -- domain control
provoke('domctl_createdomain', 'EINVAL', 'the guest-physical space is above 16 x machine frames', async () => {
  const h = await host();
  return { h, caller: DOMID_CONTROL, req: { op: 'domctl_createdomain', domid: 0, maxPages: 4, gfnCount: FRAMES * 16 + 1, trustGroup: 0 } };
});
provoke('domctl_createdomain', 'ENOSPC', 'no room for a per-domain swap area', async () => {
  const h = await swapped('per-domain');
  h.refuseAreas = true;
  return {
    h,
    caller: DOMID_CONTROL,
    req: template('domctl_createdomain', 0, 0),
    verify: () => {
      // The refused id was not used up.
      h.refuseAreas = false;
      expect(h.hv.createDomain({ maxPages: 1 })).toBe(3);
    },
  };
});
provoke('domctl_createdomain', 'ENOSPC', 'no domain ids left', async () => {
  const h = await host({ frames: 16, guests: false });
  // Ids 1 .. 0x7fef: the last real one is taken, the next would be reserved.
  for (let id = 1; id < DOMID_SELF; id++) h.hv.createDomain({ maxPages: 0, gfnCount: 0 });
  return { h, caller: DOMID_CONTROL, req: template('domctl_createdomain', 0, 0) };
});
provoke('domctl_destroydomain', 'EBUSY', 'the domain is the parent of a live fork', async () => {
  const h = await host();
  const c = h.hv.createDomain({ maxPages: 8, gfnCount: 16 });
  h.hv.fork(c, h.a);
  return { h, caller: DOMID_CONTROL, req: { op: 'domctl_destroydomain', domid: h.a } };
});

/** (op, errno) pairs provoked so far (the final test compares them with OP_LAYOUTS). */
const provoked = new Set<string>();

/** Runs `req` and expects rc = -errno, a message, and nothing changed. */
async function runRefusal(op: HypercallOp, errno: ErrnoName, variant: Variant): Promise<void> {
  const p = await variant.setup();
  expect(p.req.op).toBe(op);
  const hv = p.h.hv;
  expect(problems(hv)).toEqual([]);
  const before = snapshot(hv);
  const res = raw(hv, p.caller, p.req);
  expect({ rc: res.rc, message: res.message }, res.message).toEqual({ rc: -Errno[errno], message: expect.any(String) });
  provoked.add(`${op}:${errno}`);
  p.after?.(before);
  expect(snapshot(hv)).toEqual(before);
  expect(problems(hv)).toEqual([]);
  p.verify?.();
  expect(problems(hv)).toEqual([]);
}

/** Every (op, errno) pair OP_LAYOUTS declares. */
function declaredPairs(): string[] {
  return HYPERCALL_OPS.flatMap((op) => Object.keys(OP_LAYOUTS[op].errors).map((e) => `${op}:${e}`)).sort();
}

describe('2. every errno an op declares is provoked through the dispatcher and changes nothing', () => {
  for (const [key, variants] of ERRNO_CASES) {
    const [op, errno] = key.split(':') as [HypercallOp, ErrnoName];
    for (const variant of variants) {
      const name = `${key}: ${variant.what}`;
      it(name, () => runRefusal(op, errno, variant));
    }
  }

  it('the table covers exactly the (op, errno) pairs OP_LAYOUTS declares, and each was provoked', () => {
    expect([...ERRNO_CASES.keys()].sort()).toEqual(declaredPairs());
    expect([...provoked].sort()).toEqual(declaredPairs());
  });
});

// ---- 2b. decode errors ---------------------------------------------------------------------------

/** A copy of `buf` with `edit` applied through a DataView. */
function edited(buf: Uint8Array, edit: (view: DataView, bytes: Uint8Array) => void): Uint8Array {
  const out = buf.slice();
  edit(new DataView(out.buffer), out);
  return out;
}

/** Expects `bytes` from guest A (and from the control domain) to be refused with `errno`, changing nothing. */
function expectDecodeRefusal(h: Host, op: HypercallOp, bytes: Uint8Array, errno: ErrnoName): void {
  const before = snapshot(h.hv);
  for (const caller of [h.a, DOMID_CONTROL]) {
    const res = decodeResponse(op, h.hv.hypercall(caller, bytes));
    expect({ rc: res.rc, message: res.message }).toEqual({ rc: -Errno[errno], message: expect.any(String) });
  }
  expect(snapshot(h.hv)).toEqual(before);
  expect(problems(h.hv)).toEqual([]);
}

describe('2b. every op: malformed requests are refused by the decoder (EFAULT, EINVAL, ENOSYS), changing nothing', () => {
  for (const op of HYPERCALL_OPS) {
    it(op, async () => {
      const h = await host({ tmem: 4, swap: { mode: 'shared' } });
      const layout = OP_LAYOUTS[op];
      const good = encodeRequest(template(op, op === 'domctl_createdomain' ? 0 : h.a, h.b));
      const H = REQUEST_HEADER.size;
      // EFAULT: truncated by one byte, or one byte of trailing garbage.
      expectDecodeRefusal(h, op, good.subarray(0, good.length - 1), 'EFAULT');
      expectDecodeRefusal(h, op, good.subarray(0, H - 1), 'EFAULT');
      const longer = new Uint8Array(good.length + 1);
      longer.set(good);
      expectDecodeRefusal(h, op, longer, 'EFAULT');
      // EINVAL: the header's reserved pad, a domid beyond DOMID_SELF, each reserved payload field,
      // each 64-bit field above 2^53 - 1.
      expectDecodeRefusal(h, op, edited(good, (v) => v.setUint16(10, 1, true)), 'EINVAL');
      expectDecodeRefusal(h, op, edited(good, (v) => v.setUint16(8, DOMID_SELF + 1, true)), 'EINVAL');
      for (const f of layout.request.fields) {
        if (f.role === 'zero') expectDecodeRefusal(h, op, edited(good, (v) => v.setUint8(H + f.offset, 1)), 'EINVAL');
        if (f.type === 'u64' && f.role === 'value') expectDecodeRefusal(h, op, edited(good, (v) => v.setUint32(H + f.offset + 4, 0x20_0000, true)), 'EINVAL');
      }
      // ENOSYS: an unknown hypercall, an unknown subop, an unknown selector.
      expectDecodeRefusal(h, op, edited(good, (v) => v.setUint32(0, 0x7777, true)), 'ENOSYS');
      expectDecodeRefusal(h, op, edited(good, (v) => v.setUint32(4, 0x7777, true)), 'ENOSYS');
      for (const f of layout.request.fields) {
        if (f.role === 'selector') expectDecodeRefusal(h, op, edited(good, (v) => v.setUint32(H + f.offset, 0x77, true)), 'ENOSYS');
      }
    });
  }
});

// ---- 3. isolation --------------------------------------------------------------------------------

/** Expects `req` from `caller` to be refused with `errno` and change nothing. */
function expectRefused(h: Host, caller: DomId, req: HypercallRequest, errno: ErrnoName): void {
  const before = snapshot(h.hv);
  const res = raw(h.hv, caller, req);
  expect({ op: req.op, rc: res.rc }, res.message).toEqual({ op: req.op, rc: -Errno[errno] });
  expect(snapshot(h.hv)).toEqual(before);
  expect(problems(h.hv)).toEqual([]);
}

describe('3. isolation: a guest acts only on itself', () => {
  it('a guest naming another guest is refused with EPERM by every op that names a domain; control-only ops refuse a guest naming itself', async () => {
    const h = await host({ tmem: 4, swap: { mode: 'shared' } });
    h.hv.tmemNewPool(h.b, true);
    hostNominate(h);
    let checked = 0;
    for (const op of HYPERCALL_OPS) {
      if (CONTROL_ONLY.includes(op)) {
        expectRefused(h, h.a, template(op, h.a, h.a), 'EPERM');
        expectRefused(h, h.a, template(op, DOMID_SELF, DOMID_SELF), 'EPERM');
      } else {
        expectRefused(h, h.a, template(op, h.b, h.a), 'EPERM');
        if (TWO_DOMAIN_OPS.includes(op)) {
          expectRefused(h, h.a, template(op, h.a, h.b), 'EPERM');
          expectRefused(h, h.a, template(op, DOMID_SELF, h.b), 'EPERM');
          expectRefused(h, h.a, template(op, h.b, DOMID_SELF), 'EPERM');
        }
      }
      checked++;
    }
    expect(checked).toBe(HYPERCALL_OPS.length);
  });

  it("no op lets guest A read guest B's memory, and every attempt leaves everything as it was", async () => {
    const h = await host({ tmem: 4, swap: { mode: 'shared' } });
    const { hv, a, b } = h;
    // B's secrets: its pages, a page in its tmem pool 0, a page out on swap, a page nominated for sharing.
    const pool = hv.tmemNewPool(b, true);
    expect(pool).toBe(0);
    hv.tmemPutPage(b, pool, [1, 2, 3], 0, pageOf(29));
    pageOut(hv, b, [3]);
    const hB = hv.nominateGfn(b, g(0));
    const hA = hv.nominateGfn(a, g(0));
    hv.pagingNominate(b, g(2));
    const attempts: HypercallRequest[] = [
      { op: 'read_page', domid: b, gfn: 0, offset: 0, length: PAGE_SIZE },
      { op: 'sharing_debug_gfn', domid: b, gfn: 0 },
      { op: 'tmem_get_page', domid: b, poolId: pool, oid0: 1, oid1: 2, oid2: 3, index: 0 },
      { op: 'sharing_share', sourceDomid: b, sourceGfn: 0, sourceHandle: hB, clientDomid: DOMID_SELF, clientGfn: 0, clientHandle: hA },
      { op: 'sharing_share', sourceDomid: DOMID_SELF, sourceGfn: 0, sourceHandle: hA, clientDomid: b, clientGfn: 0, clientHandle: hB },
      { op: 'sharing_add_physmap', sourceDomid: b, sourceGfn: 0, sourceHandle: hB, clientDomid: DOMID_SELF, clientGfn: 8 },
      { op: 'sharing_range_share', sourceDomid: b, clientDomid: DOMID_SELF, firstGfn: 0, lastGfn: 3 },
      { op: 'sharing_range_share', sourceDomid: DOMID_SELF, clientDomid: b, firstGfn: 0, lastGfn: 3 },
      { op: 'sharing_fork', domid: DOMID_SELF, parentDomid: b },
      { op: 'paging_nominate', domid: b, gfn: 1 },
      { op: 'paging_evict', domid: b, gfn: 2 },
      { op: 'paging_prep', domid: b, gfn: 3 },
      { op: 'paging_prep', domid: b, gfn: 3, data: pageOf(1) },
      { op: 'madvise', domid: b, gfn: 0, count: 4, advice: Madvise.dontneed },
      { op: 'sharing_fork_reset', domid: b },
    ];
    for (const req of attempts) expectRefused(h, a, req, 'EPERM');
    // Naming its own pool 0 gives A nothing of B's: no pool, then its own empty pool.
    expectRefused(h, a, { op: 'tmem_get_page', domid: DOMID_SELF, poolId: pool, oid0: 1, oid1: 2, oid2: 3, index: 0 }, 'ENOENT');
    const ga = new HypercallClient(hv, a);
    expect(ga.tmemNewPool(DOMID_SELF, true)).toBe(0);
    expect(ga.tmemGetPage(DOMID_SELF, 0, [1, 2, 3], 0)).toBeUndefined();
    // B's content is still all there.
    const out = new Uint8Array(PAGE_SIZE);
    expect(hv.tmemGetPage(b, pool, [1, 2, 3], 0, out)).toBe(true);
    expect(out).toEqual(pageOf(29));
    for (const gfn of range(4)) expect(read(hv, b, gfn)).toEqual(pageOf(20 + gfn));
    expect(problems(hv)).toEqual([]);
  });

  it("a guest reads another's content only through a share the control domain made", async () => {
    const { hv, a, b } = await host();
    const ga = new HypercallClient(hv, a);
    const dom0 = new HypercallClient(hv, DOMID_CONTROL);
    const hB = dom0.nominateGfn(b, g(1));
    expectErrno(() => ga.addPhysmap(b, g(1), hB, DOMID_SELF, g(8)), 'EPERM');
    dom0.addPhysmap(b, g(1), hB, a, g(8));
    expect(ga.readPage(DOMID_SELF, g(8), 0, PAGE_SIZE)).toEqual(pageOf(21));
    expect(dom0.debugGfn(a, g(8))).toBe(2);
    // A's write gets a copy of its own: B's page is untouched.
    ga.writePage(DOMID_SELF, g(8), 0, Uint8Array.of(1, 2, 3));
    expect(read(hv, b, 1)).toEqual(pageOf(21));
    expect(dom0.debugGfn(a, g(8))).toBe(1);
    // A fork made by the control domain reads its parent's pages, and only those.
    const child = dom0.createDomain(8, 16);
    dom0.fork(child, b);
    const gc = new HypercallClient(hv, child);
    expect(gc.readPage(DOMID_SELF, g(2), 0, PAGE_SIZE)).toEqual(pageOf(22));
    expectErrno(() => gc.readPage(b, g(2), 0, 16), 'EPERM');
    expectErrno(() => gc.readPage(a, g(0), 0, 16), 'EPERM');
    expect(hv.audit()).toEqual([]);
  });
});

// ---- 4. regressions: refusals once found by these tests ---------------------------------------------

describe('4. regressions', () => {
  /** A fork C (dom 3) of A; `change` then alters what the fork was made from. */
  async function forked(change: (h: Host, c: DomId) => void, childMax = 8, childGfns = 16): Promise<{ h: Host; c: DomId }> {
    const h = await host();
    const c = h.hv.createDomain({ maxPages: childMax, gfnCount: childGfns });
    h.hv.fork(c, h.a);
    h.hv.writePage(c, g(0), 0, pageOf(55), 0, PAGE_SIZE);
    change(h, c);
    return { h, c };
  }

  it("fork_reset after the parent grew past the fork's max_pages is refused (E2BIG, as fork), changing nothing", async () => {
    const { h, c } = await forked((x) => x.hv.populatePhysmap(x.a, [4, 5]), 4);
    expectRefused(h, c, { op: 'sharing_fork_reset', domid: DOMID_SELF }, 'E2BIG');
    expect(read(h.hv, c, 0)).toEqual(pageOf(55));
  });

  it("fork_reset after the fork's max_pages was lowered below the parent's pages is refused (E2BIG), changing nothing", async () => {
    const { h, c } = await forked((x, child) => x.hv.setMaxPages(child, 2));
    expectRefused(h, c, { op: 'sharing_fork_reset', domid: DOMID_SELF }, 'E2BIG');
  });

  it("fork_reset after the parent populated a gfn beyond the fork's guest-physical space is refused (EINVAL, as fork), changing nothing", async () => {
    const { h, c } = await forked((x) => x.hv.populatePhysmap(x.a, [12]), 8, 4);
    expectRefused(h, c, { op: 'sharing_fork_reset', domid: DOMID_SELF }, 'EINVAL');
  });

  it('domctl_max_mem below the pages held is legal: the audit finds nothing', async () => {
    const { hv, a } = await host();
    const dom0 = new HypercallClient(hv, DOMID_CONTROL);
    dom0.setMaxPages(a, 2);
    expect(dom0.sharingAudit()).toBe(0);
    expect(hv.audit()).toEqual([]);
  });

  it('a fork cannot be forked from its own fork: the two would be forks of each other and never be destroyed', async () => {
    const { hv } = await host({ guests: false });
    const a = hv.createDomain({ maxPages: 8 });
    const b = hv.createDomain({ maxPages: 8 });
    const c = hv.createDomain({ maxPages: 8 });
    const dom0 = new HypercallClient(hv, DOMID_CONTROL);
    dom0.fork(b, a);
    dom0.fork(c, b);
    const h = { hv } as Host;
    expectRefused(h, DOMID_CONTROL, { op: 'sharing_fork', domid: a, parentDomid: b }, 'EBUSY');
    expectRefused(h, DOMID_CONTROL, { op: 'sharing_fork', domid: a, parentDomid: c }, 'EBUSY');
    dom0.destroyDomain(c);
    dom0.destroyDomain(b);
    dom0.destroyDomain(a);
    expect(hv.domains()).toEqual([]);
    expect(hv.frames.freeFrames).toBe(hv.frames.totalFrames - 1); // all but the zero frame
  });

  it('the audit finds a fork cycle and a fork count that no parent link matches', async () => {
    const { hv } = await host({ guests: false });
    const a = hv.createDomain({ maxPages: 8 });
    const b = hv.createDomain({ maxPages: 8 });
    hv.fork(b, a);
    expect(hv.audit()).toEqual([]);
    const da = hv.domains().find((d) => d.id === a)!;
    da.parent = b; // what the refused fork(a, b) used to do, without the count
    expect(hv.audit()).toEqual([`dom ${a}: its chain of parents comes back to it (a fork cycle: none of them can be destroyed)`, `dom ${b}: counts 0 live fork(s), 1 name it their parent`, `dom ${b}: its chain of parents comes back to it (a fork cycle: none of them can be destroyed)`]);
    da.parent = undefined;
    da.forks = 2;
    expect(hv.audit()).toEqual([`dom ${a}: counts 2 live fork(s), 1 name it their parent`]);
  });

  it('a GuestShim mmap (MAP_POPULATE) refused part-way keeps the claim its earlier pages would have consumed', async () => {
    const { hv } = await host({ guests: false });
    const d = hv.createDomain({ maxPages: 8, gfnCount: 16 });
    new HypercallClient(hv, DOMID_CONTROL).claimPages(d, 8);
    const shim = new GuestShim(new HypercallClient(hv, d), d, { gfnCount: 16, batchPages: 4 });
    const before = snapshot(hv);
    expectErrno(() => shim.mmap(12, { populate: true }), 'E2BIG');
    expect(snapshot(hv)).toEqual(before);
    expect(hv.claimOf(d)).toBe(8);
    // Out of frames rather than over max_pages: a claim of 4 and 2 frames more free. Batches of 4
    // would take the claimed 4, then find 2 frames for the next 4 and undo the first: claim gone.
    const dom0 = new HypercallClient(hv, DOMID_CONTROL);
    dom0.claimPages(d, 0);
    dom0.claimPages(d, 4);
    const other = hv.createDomain({ maxPages: 64, gfnCount: 64 });
    hv.populatePhysmap(other, Array.from({ length: hv.frames.freeFrames - 6 }, (_, i) => i));
    expect(hv.frames.freeFrames).toBe(6);
    const again = snapshot(hv);
    expectErrno(() => shim.mmap(8, { populate: true }), 'ENOMEM');
    expect(snapshot(hv)).toEqual(again);
    expect(hv.claimOf(d)).toBe(4);
    expect(problems(hv)).toEqual([]);
  });

  it('a whole-page store refused with ENOMEM moves no counter of the inline strategy', async () => {
    // Zero frame + 8 guest frames: none free. A store to a page on the zero frame needs one.
    const h = await host({ frames: 9, dedup: createDedup('inline') });
    h.hv.populatePhysmap(h.a, [4]);
    expect(h.hv.frames.freeFrames).toBe(0);
    const before = { ...h.hv.dedup.stats() };
    expectRefused(h, h.a, { op: 'write_page', domid: DOMID_SELF, gfn: 4, offset: 0, data: pageOf(99) }, 'ENOMEM');
    expect(h.hv.dedup.stats()).toEqual(before);
    // The same content as a resident page needs a frame to land in too: refused alike.
    expectRefused(h, h.a, { op: 'write_page', domid: DOMID_SELF, gfn: 4, offset: 0, data: pageOf(20) }, 'ENOMEM');
  });

  it('a whole-page store of the bytes a page already holds cancels its paging nomination (inline)', async () => {
    const h = await host({ dedup: createDedup('inline'), swap: { mode: 'shared' } });
    h.hv.pagingNominate(h.a, g(1));
    h.hv.writePage(h.a, g(1), 0, pageOf(11), 0, PAGE_SIZE);
    expect(h.hv.p2m.table(h.a)!.type(g(1))).toBe(P2mType.ram_rw);
    expectRefused(h, DOMID_CONTROL, { op: 'paging_evict', domid: h.a, gfn: 1 }, 'EINVAL');
  });

  it('the hypercall gate answers a caller that is not a live domain with an errno, never an exception', async () => {
    const h = await host();
    const req = { op: 'current_reservation', domid: DOMID_SELF } as const;
    for (const [caller, errno] of [[DOMID_SELF, 'ESRCH'], [0x7ff2, 'ESRCH'], [NOBODY, 'ESRCH'], [-1, 'EINVAL'], [Number.NaN, 'EINVAL']] as const) {
      expectRefused(h, caller as DomId, req, errno);
    }
  });

  it("sharing_debug_gfn is the control domain's: a guest could tell whether others hold its content", async () => {
    const { hv, a } = await host({ dedup: createDedup('inline') });
    const ga = new HypercallClient(hv, a);
    ga.writePage(DOMID_SELF, g(2), 0, pageOf(21));
    expectErrno(() => ga.debugGfn(DOMID_SELF, g(2)), 'EPERM');
    expect(new HypercallClient(hv, DOMID_CONTROL).debugGfn(a, g(2))).toBe(2);
  });
});
