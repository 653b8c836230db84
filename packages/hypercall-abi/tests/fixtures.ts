// Shared test fixtures: arbitraries of valid requests and a small in-memory fake hypervisor.
import { DOMID_SELF, HypervisorError, MAX_ORDER, PAGE_SIZE, type DomId, type Gfn } from '@pagevisor/types';
import fc from 'fast-check';
import type { HypercallHandler, HypercallOp, HypercallRequest, TmemOid } from '../src/index.js';
import { Madvise, TMEM_POOL_PERSIST, XENMEMF_populate_on_demand } from '../src/index.js';

const domid = fc.integer({ min: 0, max: DOMID_SELF });
// Biased to the ends of the range: 64-bit values are split in two halves on the wire.
const u53 = fc.oneof(fc.nat(1 << 20), fc.maxSafeNat(), fc.constantFrom(0, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1));
const extentOrder = fc.integer({ min: 0, max: MAX_ORDER });
const memFlags = fc.constantFrom(0, XENMEMF_populate_on_demand);
const gfns = fc.array(u53, { maxLength: 40 });
const offset = fc.integer({ min: 0, max: PAGE_SIZE });
// A whole page with random bytes at a random place: cheaper to generate than 4096 random bytes.
const page = fc
  .tuple(fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.nat(PAGE_SIZE - 32))
  .map(([bytes, at]) => {
    const p = new Uint8Array(PAGE_SIZE);
    p.set(bytes, at);
    return p;
  });

/** Arbitrary valid request of each op. */
export const requestArbs: { [K in HypercallOp]: fc.Arbitrary<Extract<HypercallRequest, { op: K }>> } = {
  increase_reservation: fc.record({
    op: fc.constant('increase_reservation'),
    domid,
    nrExtents: fc.oneof(fc.nat(64), fc.constant(1 << 20)),
    extentOrder,
    memFlags,
  }),
  decrease_reservation: fc.record({ op: fc.constant('decrease_reservation'), domid, extentOrder, gfns }),
  populate_physmap: fc.record({ op: fc.constant('populate_physmap'), domid, extentOrder, memFlags, gfns }),
  current_reservation: fc.record({ op: fc.constant('current_reservation'), domid }),
  maximum_reservation: fc.record({ op: fc.constant('maximum_reservation'), domid }),
  read_page: offset.chain((off) =>
    fc.record({
      op: fc.constant('read_page'),
      domid,
      gfn: u53,
      offset: fc.constant(off),
      length: fc.integer({ min: 0, max: PAGE_SIZE - off }),
    }),
  ),
  write_page: offset.chain((off) =>
    fc.record({
      op: fc.constant('write_page'),
      domid,
      gfn: u53,
      offset: fc.constant(off),
      data: fc.uint8Array({ maxLength: Math.min(64, PAGE_SIZE - off) }),
    }),
  ),
  sharing_nominate_gfn: fc.record({ op: fc.constant('sharing_nominate_gfn'), domid, gfn: u53 }),
  sharing_share: fc.record({
    op: fc.constant('sharing_share'),
    sourceDomid: domid,
    sourceGfn: u53,
    sourceHandle: u53,
    clientDomid: domid,
    clientGfn: u53,
    clientHandle: u53,
  }),
  paging_nominate: fc.record({ op: fc.constant('paging_nominate'), domid, gfn: u53 }),
  paging_evict: fc.record({ op: fc.constant('paging_evict'), domid, gfn: u53 }),
  paging_prep: fc.record(
    {
      op: fc.constant('paging_prep'),
      domid,
      gfn: u53,
      data: page,
    },
    { requiredKeys: ['op', 'domid', 'gfn'] },
  ),
  maximum_gpfn: fc.record({ op: fc.constant('maximum_gpfn'), domid }),
  claim_pages: fc.record({ op: fc.constant('claim_pages'), domid, nrPages: fc.nat(0xffff_ffff) }),
  get_sharing_freed_pages: fc.record({ op: fc.constant('get_sharing_freed_pages'), domid: fc.constant(DOMID_SELF as number) }),
  get_sharing_shared_pages: fc.record({ op: fc.constant('get_sharing_shared_pages'), domid: fc.constant(DOMID_SELF as number) }),
  madvise: fc.record({
    op: fc.constant('madvise'),
    domid,
    gfn: u53,
    count: u53,
    advice: fc.constantFrom<number>(Madvise.dontneed, Madvise.mergeable, Madvise.unmergeable),
  }),
  sharing_debug_gfn: fc.record({ op: fc.constant('sharing_debug_gfn'), domid, gfn: u53 }),
  sharing_add_physmap: fc.record({
    op: fc.constant('sharing_add_physmap'),
    sourceDomid: domid,
    sourceGfn: u53,
    sourceHandle: u53,
    clientDomid: domid,
    clientGfn: u53,
  }),
  sharing_audit: fc.record({ op: fc.constant('sharing_audit'), domid: fc.constant(DOMID_SELF as number) }),
  sharing_range_share: fc
    .tuple(u53, u53)
    .chain(([a, b]) =>
      fc.record({
        op: fc.constant('sharing_range_share'),
        sourceDomid: domid,
        clientDomid: domid,
        firstGfn: fc.constant(Math.min(a, b)),
        lastGfn: fc.constant(Math.max(a, b)),
      }),
    ),
  sharing_fork: fc.record({ op: fc.constant('sharing_fork'), domid, parentDomid: domid }),
  sharing_fork_reset: fc.record({ op: fc.constant('sharing_fork_reset'), domid }),
  tmem_new_pool: fc.record({ op: fc.constant('tmem_new_pool'), domid, flags: fc.constantFrom<number>(0, TMEM_POOL_PERSIST) }),
  tmem_destroy_pool: fc.record({ op: fc.constant('tmem_destroy_pool'), domid, poolId: fc.nat(0xffff_ffff) }),
  tmem_put_page: fc.record({ op: fc.constant('tmem_put_page'), ...tmemKey(), index: fc.nat(0xffff_ffff), data: page }),
  tmem_get_page: fc.record({ op: fc.constant('tmem_get_page'), ...tmemKey(), index: fc.nat(0xffff_ffff) }),
  tmem_flush_page: fc.record({ op: fc.constant('tmem_flush_page'), ...tmemKey(), index: fc.nat(0xffff_ffff) }),
  tmem_flush_object: fc.record({ op: fc.constant('tmem_flush_object'), ...tmemKey() }),
  domctl_createdomain: fc.record({
    op: fc.constant('domctl_createdomain'),
    domid: fc.constant(0),
    maxPages: u53,
    gfnCount: u53,
    trustGroup: fc.nat(0xffff),
  }),
  domctl_destroydomain: fc.record({ op: fc.constant('domctl_destroydomain'), domid }),
  domctl_pausedomain: fc.record({ op: fc.constant('domctl_pausedomain'), domid }),
  domctl_unpausedomain: fc.record({ op: fc.constant('domctl_unpausedomain'), domid }),
  domctl_max_mem: fc.record({ op: fc.constant('domctl_max_mem'), domid, maxMemKb: fc.nat(2 ** 40).map((n) => n * 4) }),
  domctl_sharing_control: fc.record({ op: fc.constant('domctl_sharing_control'), domid, enable: fc.constantFrom<number>(0, 1) }),
};

function tmemKey() {
  return { domid, poolId: fc.nat(0xffff_ffff), oid0: u53, oid1: u53, oid2: u53 };
}

/** Arbitrary valid request of any op. */
export const anyRequest: fc.Arbitrary<HypercallRequest> = fc.oneof(
  ...(Object.values(requestArbs) as fc.Arbitrary<HypercallRequest>[]),
);

/** One call the fake handler received. */
export interface Call {
  readonly method: keyof HypercallHandler;
  readonly caller: number;
  readonly args: readonly unknown[];
}

interface FakeDomain {
  maxPages: number;
  totPages: number;
  nextGfn: number;
  /** Base gfn -> order of each extent populated. */
  extents: Map<number, number>;
  pages: Map<number, Uint8Array>;
  handles: Map<number, number>;
  /** Gfns nominated for paging out and not written since. */
  nominated: Set<number>;
  /** Gfns evicted and not yet prepared. */
  pagedOut: Set<number>;
}

/**
 * A hypervisor in a few maps: domains 0, 1 and 2 (0 is privileged; others may act on themselves
 * only), page counting against max_pages with partial completion, pages readable once populated,
 * sharing handles checked on share (which copies the source content), paging out (nominate, then
 * evict unless written since; a paged-out page is EAGAIN until prepared, with its content or
 * zeros). Records every call.
 */
export class FakeHandler implements HypercallHandler {
  readonly calls: Call[] = [];
  private readonly domains = new Map<number, FakeDomain>();
  private nextHandle = 1;

  constructor(maxPages = 4096, domids: readonly number[] = [0, 1, 2]) {
    for (const d of domids) {
      this.domains.set(d, {
        maxPages,
        totPages: 0,
        nextGfn: 0x1_0000,
        extents: new Map(),
        pages: new Map(),
        handles: new Map(),
        nominated: new Set(),
        pagedOut: new Set(),
      });
    }
  }

  increaseReservation(caller: DomId, domid: DomId, nrExtents: number, extentOrder: number, memFlags: number): number[] {
    this.calls.push({ method: 'increaseReservation', caller, args: [domid, nrExtents, extentOrder, memFlags] });
    const d = this.domain('increase_reservation', caller, domid);
    const done: number[] = [];
    const pages = 2 ** extentOrder;
    while (done.length < nrExtents && d.totPages + pages <= d.maxPages) {
      const base = d.nextGfn;
      d.nextGfn += pages;
      d.extents.set(base, extentOrder);
      d.totPages += pages;
      done.push(base);
    }
    return done;
  }

  decreaseReservation(caller: DomId, domid: DomId, gfns: readonly number[], extentOrder: number): number {
    this.calls.push({ method: 'decreaseReservation', caller, args: [domid, [...gfns], extentOrder] });
    const d = this.domain('decrease_reservation', caller, domid);
    let done = 0;
    for (const g of gfns) {
      if (d.extents.get(g) !== extentOrder) break;
      d.extents.delete(g);
      d.pages.delete(g);
      d.nominated.delete(g);
      d.pagedOut.delete(g);
      d.totPages -= 2 ** extentOrder;
      done++;
    }
    return done;
  }

  populatePhysmap(caller: DomId, domid: DomId, gfns: readonly number[], extentOrder: number, memFlags: number): number {
    this.calls.push({ method: 'populatePhysmap', caller, args: [domid, [...gfns], extentOrder, memFlags] });
    const d = this.domain('populate_physmap', caller, domid);
    if (gfns.length > 0 && d.totPages + 2 ** extentOrder > d.maxPages) {
      throw new HypervisorError('ENOMEM', 'populate_physmap', `domain ${domid} is at max_pages ${d.maxPages}`);
    }
    let done = 0;
    for (const g of gfns) {
      if (d.totPages + 2 ** extentOrder > d.maxPages) break;
      if (!d.extents.has(g)) {
        d.extents.set(g, extentOrder);
        d.totPages += 2 ** extentOrder;
      }
      done++;
    }
    return done;
  }

  currentReservation(caller: DomId, domid: DomId): number {
    this.calls.push({ method: 'currentReservation', caller, args: [domid] });
    return this.domain('current_reservation', caller, domid).totPages;
  }

  maximumReservation(caller: DomId, domid: DomId): number {
    this.calls.push({ method: 'maximumReservation', caller, args: [domid] });
    return this.domain('maximum_reservation', caller, domid).maxPages;
  }

  readPage(caller: DomId, domid: DomId, gfn: Gfn, offset: number, length: number): Uint8Array {
    this.calls.push({ method: 'readPage', caller, args: [domid, gfn, offset, length] });
    const page = this.page('read_page', caller, domid, gfn);
    return page.slice(offset, offset + length);
  }

  writePage(caller: DomId, domid: DomId, gfn: Gfn, offset: number, data: Uint8Array): void {
    this.calls.push({ method: 'writePage', caller, args: [domid, gfn, offset, data.slice()] });
    this.page('write_page', caller, domid, gfn).set(data, offset);
    // As in Xen, writing a nominated page makes it unfit for eviction.
    this.domain('write_page', caller, domid).nominated.delete(gfn);
  }

  nominateGfn(caller: DomId, domid: DomId, gfn: Gfn): number {
    this.calls.push({ method: 'nominateGfn', caller, args: [domid, gfn] });
    this.page('sharing_nominate_gfn', caller, domid, gfn);
    const handle = this.nextHandle++;
    this.domain('sharing_nominate_gfn', caller, domid).handles.set(gfn, handle);
    return handle;
  }

  share(
    caller: DomId,
    sourceDomid: DomId,
    sourceGfn: Gfn,
    sourceHandle: number,
    clientDomid: DomId,
    clientGfn: Gfn,
    clientHandle: number,
  ): void {
    this.calls.push({
      method: 'share',
      caller,
      args: [sourceDomid, sourceGfn, sourceHandle, clientDomid, clientGfn, clientHandle],
    });
    const src = this.domain('sharing_share', caller, sourceDomid);
    const cli = this.domain('sharing_share', caller, clientDomid);
    if (src.handles.get(sourceGfn) !== sourceHandle) {
      throw new HypervisorError('EINVAL', 'sharing_share', `source handle ${sourceHandle} is stale`);
    }
    if (cli.handles.get(clientGfn) !== clientHandle) {
      throw new HypervisorError('EINVAL', 'sharing_share', `client handle ${clientHandle} is stale`);
    }
    cli.pages.set(clientGfn, this.page('sharing_share', caller, sourceDomid, sourceGfn).slice());
  }

  pagingNominate(caller: DomId, domid: DomId, gfn: Gfn): void {
    this.calls.push({ method: 'pagingNominate', caller, args: [domid, gfn] });
    this.page('paging_nominate', caller, domid, gfn);
    this.domain('paging_nominate', caller, domid).nominated.add(gfn);
  }

  pagingEvict(caller: DomId, domid: DomId, gfn: Gfn): void {
    this.calls.push({ method: 'pagingEvict', caller, args: [domid, gfn] });
    const d = this.domain('paging_evict', caller, domid);
    if (!d.nominated.has(gfn)) {
      throw new HypervisorError('EBUSY', 'paging_evict', `gfn ${gfn} of domain ${domid} is not nominated`);
    }
    d.nominated.delete(gfn);
    d.pages.delete(gfn);
    d.pagedOut.add(gfn);
  }

  pagingPrep(caller: DomId, domid: DomId, gfn: Gfn, data: Uint8Array | undefined): void {
    this.calls.push({ method: 'pagingPrep', caller, args: [domid, gfn, data?.slice()] });
    const d = this.domain('paging_prep', caller, domid);
    if (!d.pagedOut.has(gfn)) {
      throw new HypervisorError('EINVAL', 'paging_prep', `gfn ${gfn} of domain ${domid} is not paged out`);
    }
    d.pagedOut.delete(gfn);
    d.pages.set(gfn, data ? data.slice() : new Uint8Array(PAGE_SIZE));
  }

  // The ops below only record their calls and check privilege: the hypervisor's own tests cover them.

  maximumGpfn(caller: DomId, domid: DomId): number {
    return this.record('maximumGpfn', 'maximum_gpfn', caller, domid, [domid], 7);
  }

  claimPages(caller: DomId, domid: DomId, nrPages: number): void {
    this.record('claimPages', 'claim_pages', caller, domid, [domid, nrPages], 0);
  }

  sharingFreedPages(caller: DomId): number {
    return this.record('sharingFreedPages', 'get_sharing_freed_pages', caller, caller, [], 3);
  }

  sharingSharedPages(caller: DomId): number {
    return this.record('sharingSharedPages', 'get_sharing_shared_pages', caller, caller, [], 2);
  }

  madvise(caller: DomId, domid: DomId, gfn: Gfn, count: number, advice: number): void {
    this.record('madvise', 'madvise', caller, domid, [domid, gfn, count, advice], 0);
  }

  debugGfn(caller: DomId, domid: DomId, gfn: Gfn): number {
    return this.record('debugGfn', 'sharing_debug_gfn', caller, domid, [domid, gfn], 1);
  }

  addPhysmap(caller: DomId, sourceDomid: DomId, sourceGfn: Gfn, sourceHandle: number, clientDomid: DomId, clientGfn: Gfn): void {
    this.record('addPhysmap', 'sharing_add_physmap', caller, sourceDomid, [sourceDomid, sourceGfn, sourceHandle, clientDomid, clientGfn], 0);
    this.domain('sharing_add_physmap', caller, clientDomid);
  }

  sharingAudit(caller: DomId): number {
    return this.record('sharingAudit', 'sharing_audit', caller, caller, [], 0);
  }

  rangeShare(caller: DomId, sourceDomid: DomId, clientDomid: DomId, firstGfn: Gfn, lastGfn: Gfn): number {
    this.record('rangeShare', 'sharing_range_share', caller, sourceDomid, [sourceDomid, clientDomid, firstGfn, lastGfn], 0);
    this.domain('sharing_range_share', caller, clientDomid);
    return 0;
  }

  fork(caller: DomId, child: DomId, parent: DomId): void {
    this.record('fork', 'sharing_fork', caller, child, [child, parent], 0);
    this.domain('sharing_fork', caller, parent);
  }

  forkReset(caller: DomId, domid: DomId): void {
    this.record('forkReset', 'sharing_fork_reset', caller, domid, [domid], 0);
  }

  tmemNewPool(caller: DomId, domid: DomId, persistent: boolean): number {
    return this.record('tmemNewPool', 'tmem_new_pool', caller, domid, [domid, persistent], 0);
  }

  tmemDestroyPool(caller: DomId, domid: DomId, poolId: number): void {
    this.record('tmemDestroyPool', 'tmem_destroy_pool', caller, domid, [domid, poolId], 0);
  }

  tmemPutPage(caller: DomId, domid: DomId, poolId: number, oid: TmemOid, index: number, page: Uint8Array): boolean {
    this.tmem.set(`${domid}:${poolId}:${oid.join(':')}:${index}`, page.slice());
    return this.record('tmemPutPage', 'tmem_put_page', caller, domid, [domid, poolId, [...oid], index], 1) === 1;
  }

  tmemGetPage(caller: DomId, domid: DomId, poolId: number, oid: TmemOid, index: number): Uint8Array | undefined {
    this.record('tmemGetPage', 'tmem_get_page', caller, domid, [domid, poolId, [...oid], index], 0);
    return this.tmem.get(`${domid}:${poolId}:${oid.join(':')}:${index}`)?.slice();
  }

  tmemFlushPage(caller: DomId, domid: DomId, poolId: number, oid: TmemOid, index: number): boolean {
    this.record('tmemFlushPage', 'tmem_flush_page', caller, domid, [domid, poolId, [...oid], index], 0);
    return this.tmem.delete(`${domid}:${poolId}:${oid.join(':')}:${index}`);
  }

  tmemFlushObject(caller: DomId, domid: DomId, poolId: number, oid: TmemOid): number {
    return this.record('tmemFlushObject', 'tmem_flush_object', caller, domid, [domid, poolId, [...oid]], 0);
  }

  createDomain(caller: DomId, maxPages: number, gfnCount: number, trustGroup: number): DomId {
    return this.record('createDomain', 'domctl_createdomain', caller, caller, [maxPages, gfnCount, trustGroup], 9) as DomId;
  }

  destroyDomain(caller: DomId, domid: DomId): void {
    this.record('destroyDomain', 'domctl_destroydomain', caller, domid, [domid], 0);
  }

  pauseDomain(caller: DomId, domid: DomId): void {
    this.record('pauseDomain', 'domctl_pausedomain', caller, domid, [domid], 0);
  }

  unpauseDomain(caller: DomId, domid: DomId): void {
    this.record('unpauseDomain', 'domctl_unpausedomain', caller, domid, [domid], 0);
  }

  setMaxPages(caller: DomId, domid: DomId, maxPages: number): void {
    this.record('setMaxPages', 'domctl_max_mem', caller, domid, [domid, maxPages], 0);
  }

  setSharing(caller: DomId, domid: DomId, enable: boolean): void {
    this.record('setSharing', 'domctl_sharing_control', caller, domid, [domid, enable], 0);
  }

  private readonly tmem = new Map<string, Uint8Array>();

  private record(method: keyof HypercallHandler, op: string, caller: DomId, target: DomId, args: unknown[], result: number): number {
    this.calls.push({ method, caller, args });
    this.domain(op, caller, target);
    return result;
  }

  /** Methods called, in order. */
  methods(): string[] {
    return this.calls.map((c) => c.method);
  }

  private domain(op: string, caller: DomId, domid: DomId): FakeDomain {
    const d = this.domains.get(domid);
    if (!d) throw new HypervisorError('ESRCH', op, `no domain ${domid}`);
    if (caller !== 0 && caller !== domid) {
      throw new HypervisorError('EPERM', op, `domain ${caller} may not act on domain ${domid}`);
    }
    return d;
  }

  private page(op: string, caller: DomId, domid: DomId, gfn: Gfn): Uint8Array {
    const d = this.domain(op, caller, domid);
    let covered = false;
    for (const [base, order] of d.extents) if (gfn >= base && gfn < base + 2 ** order) covered = true;
    if (!covered) throw new HypervisorError('ENOENT', op, `gfn ${gfn} of domain ${domid} is not populated`);
    if (d.pagedOut.has(gfn)) throw new HypervisorError('EAGAIN', op, `gfn ${gfn} of domain ${domid} is paged out`);
    let page = d.pages.get(gfn);
    if (!page) d.pages.set(gfn, (page = new Uint8Array(PAGE_SIZE)));
    return page;
  }
}

/** Hex of `buf`, for readable byte comparisons. */
export function hex(buf: Uint8Array): string {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('hex');
}

/** Copy of `buf` with the little-endian u32 at `offset` replaced by `value`. */
export function withU32(buf: Uint8Array, offset: number, value: number): Uint8Array {
  const out = buf.slice();
  new DataView(out.buffer).setUint32(offset, value, true);
  return out;
}

/** Copy of `buf` with the little-endian u16 at `offset` replaced by `value`. */
export function withU16(buf: Uint8Array, offset: number, value: number): Uint8Array {
  const out = buf.slice();
  new DataView(out.buffer).setUint16(offset, value, true);
  return out;
}
