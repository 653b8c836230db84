import {
  asDomId,
  asGfn,
  DOMID_SELF,
  Errno,
  HypervisorError,
  PAGE_SIZE,
  type DomId,
  type HypercallPort,
} from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { FakeHandler } from '../tests/fixtures.js';
import { dispatchHypercall, encodeResponse, HypercallClient, XENMEMF_populate_on_demand } from './index.js';

/** A port straight into the dispatcher, counting the hypercalls that reach it. */
function connect(handler: FakeHandler): HypercallPort & { issued: number } {
  const port = {
    issued: 0,
    hypercall(caller: DomId, request: Uint8Array): Uint8Array {
      port.issued++;
      return dispatchHypercall(handler, caller, request);
    },
  };
  return port;
}

function thrown(fn: () => unknown): HypervisorError {
  try {
    fn();
  } catch (e) {
    if (e instanceof HypervisorError) return e;
    throw e;
  }
  throw new Error('expected a HypervisorError');
}

const DOM1 = asDomId(1);
const DOM2 = asDomId(2);

describe('HypercallClient', () => {
  it('issues every op through the port and returns its result', () => {
    const h = new FakeHandler(100);
    const port = connect(h);
    const guest = new HypercallClient(port, DOM1);
    expect(guest.caller).toBe(1);
    expect(guest.populatePhysmap(DOMID_SELF, [0, 1, 2])).toBe(3);
    expect(guest.populatePhysmap(DOMID_SELF, [8], 3, XENMEMF_populate_on_demand)).toBe(1);
    expect(guest.increaseReservation(DOMID_SELF, 2)).toEqual([0x10000, 0x10001]);
    expect(guest.currentReservation(DOMID_SELF)).toBe(13);
    expect(guest.maximumReservation(DOM1)).toBe(100);
    guest.writePage(DOMID_SELF, asGfn(1), 4094, Uint8Array.of(0xab, 0xcd));
    expect(guest.readPage(DOMID_SELF, asGfn(1), 4093, 3)).toEqual(Uint8Array.of(0, 0xab, 0xcd));
    expect(guest.decreaseReservation(DOMID_SELF, [0, 1])).toBe(2);
    expect(guest.decreaseReservation(DOMID_SELF, [8], 3)).toBe(1);
    expect(guest.currentReservation(DOMID_SELF)).toBe(3);
    expect(port.issued).toBe(10);
    expect(h.calls[1]).toEqual({
      method: 'populatePhysmap',
      caller: 1,
      args: [1, [8], 3, XENMEMF_populate_on_demand],
    });
  });

  it('lets the control domain share pages of two guests', () => {
    const h = new FakeHandler();
    const port = connect(h);
    const g1 = new HypercallClient(port, DOM1);
    const g2 = new HypercallClient(port, DOM2);
    const dom0 = new HypercallClient(port, asDomId(0));
    g1.populatePhysmap(DOMID_SELF, [10]);
    g2.populatePhysmap(DOMID_SELF, [20]);
    g1.writePage(DOMID_SELF, asGfn(10), 0, new TextEncoder().encode('same'));
    const source = dom0.nominateGfn(DOM1, asGfn(10));
    const client = dom0.nominateGfn(DOM2, asGfn(20));
    expect([source, client]).toEqual([1, 2]);
    dom0.share(DOM1, asGfn(10), source, DOM2, asGfn(20), client);
    expect(new TextDecoder().decode(g2.readPage(DOMID_SELF, asGfn(20), 0, 4))).toBe('same');
  });

  it('pages a guest page out and back in', () => {
    const h = new FakeHandler();
    const port = connect(h);
    const guest = new HypercallClient(port, DOM1);
    const dom0 = new HypercallClient(port, asDomId(0));
    guest.populatePhysmap(DOMID_SELF, [3, 4]);
    guest.writePage(DOMID_SELF, asGfn(3), 0, Uint8Array.of(1, 2));
    const saved = dom0.readPage(DOM1, asGfn(3), 0, PAGE_SIZE);
    expect(dom0.pagingNominate(DOM1, asGfn(3))).toBeUndefined();
    dom0.pagingEvict(DOM1, asGfn(3));
    expect(thrown(() => guest.readPage(DOMID_SELF, asGfn(3), 0, 1)).errnoName).toBe('EAGAIN');
    dom0.pagingPrep(DOM1, asGfn(3), saved);
    expect(guest.readPage(DOMID_SELF, asGfn(3), 0, 3)).toEqual(Uint8Array.of(1, 2, 0));
    guest.pagingNominate(DOMID_SELF, asGfn(4));
    guest.pagingEvict(DOMID_SELF, asGfn(4));
    guest.pagingPrep(DOMID_SELF, asGfn(4));
    expect(h.calls.at(-1)).toEqual({ method: 'pagingPrep', caller: 1, args: [1, 4, undefined] });
    const e = thrown(() => guest.pagingPrep(DOMID_SELF, asGfn(4)));
    expect([e.errnoName, e.op, e.detail]).toEqual(['EINVAL', 'paging_prep', 'gfn 4 of domain 1 is not paged out']);
    expect(thrown(() => guest.pagingEvict(DOMID_SELF, asGfn(4))).errnoName).toBe('EBUSY');
    expect(thrown(() => guest.pagingNominate(DOM2, asGfn(4))).errnoName).toBe('EPERM');
  });

  it('throws HypervisorError with the errno, op and message of a failed hypercall', () => {
    const h = new FakeHandler(2);
    const guest = new HypercallClient(connect(h), DOM1);
    let e = thrown(() => guest.currentReservation(DOM2));
    expect([e.errno, e.op, e.detail]).toEqual([Errno.EPERM, 'current_reservation', 'domain 1 may not act on domain 2']);
    expect(e.message).toBe('current_reservation: EPERM: domain 1 may not act on domain 2');
    e = thrown(() => guest.populatePhysmap(DOMID_SELF, [0], 2));
    expect([e.errnoName, e.detail]).toEqual(['ENOMEM', 'domain 1 is at max_pages 2']);
    e = thrown(() => guest.readPage(DOMID_SELF, asGfn(5), 0, 1));
    expect([e.errnoName, e.op]).toEqual(['ENOENT', 'read_page']);
    e = thrown(() => guest.share(DOM1, asGfn(0), 1, DOM1, asGfn(1), 2));
    expect([e.errnoName, e.op]).toEqual(['EINVAL', 'sharing_share']);
  });

  it('refuses bad arguments before the handler runs: validated once, by the dispatcher that decodes them', () => {
    const h = new FakeHandler();
    const port = connect(h);
    const guest = new HypercallClient(port, DOM1);
    let e = thrown(() => guest.populatePhysmap(DOMID_SELF, [1], 40));
    expect([e.errnoName, e.detail]).toEqual(['EINVAL', 'populate_physmap.extentOrder: must be <= 18, got 40']);
    e = thrown(() => guest.writePage(DOMID_SELF, asGfn(1), 4000, new Uint8Array(97)));
    expect(e.detail).toBe('write_page.data: offset + data.length must be <= 4096, got 4000 + 97');
    e = thrown(() => guest.readPage(asDomId(0x7ff1), asGfn(1), 0, 1));
    expect(e.detail).toBe('read_page.domid: must be <= 32752, got 32753');
    e = thrown(() => guest.increaseReservation(DOMID_SELF, 1, 0, 0xff));
    expect(e.detail).toMatch(/^increase_reservation\.memFlags: has unknown bits 0xff/);
    e = thrown(() => guest.pagingPrep(DOMID_SELF, asGfn(1), new Uint8Array(100)));
    expect(e.detail).toBe('paging_prep.data: must be 4096 bytes when present, got 100');
    e = thrown(() => guest.pagingNominate(DOMID_SELF, asGfn(-1)));
    expect(e.detail).toBe('paging_nominate.gfn: must be >= 0, got -1');
    e = thrown(() => guest.pagingEvict(asDomId(0x7ff1), asGfn(1)));
    expect(e.detail).toBe('paging_evict.domid: must be <= 32752, got 32753');
    // The client encodes typed requests without validating them (only gfn -1, which no u64
    // field holds, is refused before it goes out); the dispatcher refuses the other six.
    expect(port.issued).toBe(6);
    expect(h.calls).toEqual([]);
  });

  it('reports a response it cannot decode as EFAULT, and an unknown errno as EIO', () => {
    const garbage = new HypercallClient({ hypercall: () => new Uint8Array(5) }, DOM1);
    const e = thrown(() => garbage.currentReservation(DOMID_SELF));
    expect([e.errnoName, e.op]).toEqual(['EFAULT', 'current_reservation']);
    const odd = new HypercallClient({ hypercall: () => encodeResponse('maximum_reservation', { rc: -4 }) }, DOM1);
    const f = thrown(() => odd.maximumReservation(DOMID_SELF));
    expect([f.errnoName, f.detail]).toEqual(['EIO', 'unknown errno 4: (no message from the hypervisor)']);
  });
});
