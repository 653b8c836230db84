// Shared test fixtures: arbitraries of valid requests and a small in-memory fake hypervisor.
import { DOMID_SELF, HypervisorError, MAX_ORDER, PAGE_SIZE, type DomId, type Gfn } from '@pagevisor/types';
import fc from 'fast-check';
import type { HypercallHandler, HypercallOp, HypercallRequest } from '../src/index.js';
import { XENMEMF_populate_on_demand } from '../src/index.js';

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
};

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
