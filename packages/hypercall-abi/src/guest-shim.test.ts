import { asDomId, asGfn, DOMID_SELF, HypervisorError, InvariantError, type DomId, type Gfn, type HypercallPort } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';
import { FakeHandler } from '../tests/fixtures.js';
import { dispatchHypercall, GuestShim, HypercallClient, Madvise, XENMEMF_populate_on_demand, type GuestShimOptions } from './index.js';

const DOM1 = asDomId(1);
const POD = XENMEMF_populate_on_demand;
const g = asGfn;

function portTo(handler: FakeHandler): HypercallPort {
  return { hypercall: (caller: DomId, request: Uint8Array) => dispatchHypercall(handler, caller, request) };
}

/** A shim for dom 1 of a fake hypervisor, 4 gfns a batch, over 64 guest frames unless told. */
function setup(handler = new FakeHandler(), opts: Partial<GuestShimOptions> = {}) {
  const shim = new GuestShim(new HypercallClient(portTo(handler), DOM1), DOM1, { gfnCount: 64, batchPages: 4, ...opts });
  return { h: handler, shim };
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

/** The reservation calls made, as `method gfns... flags`. */
function reservationCalls(h: FakeHandler): string[] {
  return h.calls
    .filter((c) => c.method === 'populatePhysmap' || c.method === 'decreaseReservation')
    .map((c) => {
      const gfns = c.args[1] as number[];
      const flags = c.method === 'populatePhysmap' ? ` flags=${c.args[3] as number}` : '';
      return `${c.method} ${gfns[0]}+${gfns.length}${flags}`;
    });
}

/** The methods called, less the reservation queries the shim makes before it populates. */
const issued = (h: FakeHandler): string[] => h.methods().filter((m) => m !== 'currentReservation' && m !== 'maximumReservation');

/**
 * A fake that refuses populates past `frames` pages while reporting a max_pages far above: a
 * hypervisor out of frames, which the shim cannot see coming.
 */
class OutOfFrames extends FakeHandler {
  override maximumReservation(): number {
    return 4096;
  }
}

const regions = (shim: GuestShim) => shim.regions().map((r) => `${r.kind} ${r.start}+${r.pages}`);

describe('GuestShim.mmap', () => {
  it('populates on demand in batches, first fit from gfn 0, merging adjacent regions', () => {
    const { h, shim } = setup();
    expect(shim.mmap(10)).toBe(0);
    expect(shim.mmap(3, { populate: true })).toBe(10);
    expect(reservationCalls(h)).toEqual([
      `populatePhysmap 0+4 flags=${POD}`,
      `populatePhysmap 4+4 flags=${POD}`,
      `populatePhysmap 8+2 flags=${POD}`,
      'populatePhysmap 10+3 flags=0',
    ]);
    expect(h.calls.every((c) => c.caller === 1 && c.args[0] === 1)).toBe(true);
    expect(regions(shim)).toEqual(['mmap 0+13']);
    expect(new HypercallClient(portTo(h), DOM1).currentReservation(DOMID_SELF)).toBe(13);
  });

  it('advises the new pages mergeable after populating them, when asked', () => {
    const { h, shim } = setup();
    expect(shim.mmap(5, { mergeable: true })).toBe(0);
    expect(issued(h)).toEqual(['populatePhysmap', 'populatePhysmap', 'madvise']);
    expect(h.calls.find((c) => c.method === 'madvise')!.args).toEqual([1, 0, 5, Madvise.mergeable]);
  });

  it('reuses the lowest hole that fits, and refuses with ENOMEM when none does, issuing nothing', () => {
    const { h, shim } = setup(undefined, { gfnCount: 16 });
    shim.mmap(12);
    shim.munmap(g(2), 3); // hole [2, 5)
    expect(regions(shim)).toEqual(['mmap 0+2', 'mmap 5+7']);
    expect(shim.mmap(4)).toBe(12); // the hole is too small; [12, 16) fits
    expect(shim.mmap(2)).toBe(2);
    const before = h.calls.length;
    const e = thrown(() => shim.mmap(2));
    expect([e.errnoName, e.op, e.detail]).toEqual(['ENOMEM', 'mmap', "no 2 free contiguous pages among dom 1's 16 guest frames"]);
    expect(h.calls.length).toBe(before);
    expect(shim.mmap(1)).toBe(4);
    expect(regions(shim)).toEqual(['mmap 0+16']);
  });

  it('maps at a fixed gfn (MAP_FIXED_NOREPLACE): EEXIST over a region, EINVAL outside the guest', () => {
    const { h, shim } = setup(undefined, { gfnCount: 16 });
    expect(shim.mmap(4, { fixed: g(8) })).toBe(8);
    expect(shim.mmap(2)).toBe(0);
    let e = thrown(() => shim.mmap(4, { fixed: g(6) }));
    expect([e.errnoName, e.op, e.detail]).toEqual(['EEXIST', 'mmap', 'gfn 8 of dom 1 is mapped already']);
    e = thrown(() => shim.mmap(4, { fixed: g(14) }));
    expect([e.errnoName, e.detail]).toEqual(['EINVAL', "pages [14, 18) are outside dom 1's 16 guest frames"]);
    expect(thrown(() => shim.mmap(0)).errnoName).toBe('EINVAL');
    expect(thrown(() => shim.mmap(1.5)).errnoName).toBe('EINVAL');
    expect(issued(h)).toEqual(['populatePhysmap', 'populatePhysmap']);
    expect(shim.mmap(6, { fixed: g(2) })).toBe(2);
    expect(regions(shim)).toEqual(['mmap 0+12']);
  });

  it('undoes the batches it did when a populate_physmap is refused part-way, and maps nothing', () => {
    // max_pages 8: two batches of 4 pass, the third is refused.
    const { h, shim } = setup(new OutOfFrames(8));
    const e = thrown(() => shim.mmap(12));
    expect([e.errnoName, e.op, e.detail]).toEqual(['ENOMEM', 'populate_physmap', 'domain 1 is at max_pages 8']);
    expect(reservationCalls(h)).toEqual([
      `populatePhysmap 0+4 flags=${POD}`,
      `populatePhysmap 4+4 flags=${POD}`,
      `populatePhysmap 8+4 flags=${POD}`,
      'decreaseReservation 0+4',
      'decreaseReservation 4+4',
    ]);
    expect(shim.regions()).toEqual([]);
    expect(new HypercallClient(portTo(h), DOM1).currentReservation(DOMID_SELF)).toBe(0);
  });

  it('treats a populate_physmap that did part of a batch as ENOMEM and releases that part too', () => {
    // max_pages 10: 8 pages, then a batch of which only 2 fit.
    const { h, shim } = setup(new OutOfFrames(10));
    shim.mmap(8);
    const e = thrown(() => shim.mmap(4));
    expect([e.errnoName, e.op, e.detail]).toEqual(['ENOMEM', 'populate_physmap', 'populated 2 of 4 pages from gfn 8']);
    expect(reservationCalls(h).slice(2)).toEqual([`populatePhysmap 8+4 flags=${POD}`, 'decreaseReservation 8+2']);
    expect(regions(shim)).toEqual(['mmap 0+8']);
    expect(new HypercallClient(portTo(h), DOM1).currentReservation(DOMID_SELF)).toBe(8);
  });

  it('undoes the mapping when the mergeable advice is refused', () => {
    class NoMerge extends FakeHandler {
      override madvise(caller: DomId, domid: DomId, gfn: Gfn, count: number, advice: number): void {
        super.madvise(caller, domid, gfn, count, advice);
        throw new HypervisorError('EOPNOTSUPP', 'madvise', 'no merging here');
      }
    }
    const { h, shim } = setup(new NoMerge());
    const e = thrown(() => shim.mmap(6, { mergeable: true, populate: true }));
    expect([e.errnoName, e.detail]).toEqual(['EOPNOTSUPP', 'no merging here']);
    // MAP_POPULATE: one populate_physmap for the 6 pages; the undo releases them in batches of 4.
    expect(issued(h)).toEqual(['populatePhysmap', 'madvise', 'decreaseReservation', 'decreaseReservation']);
    expect(shim.regions()).toEqual([]);
  });

  it('populates a MAP_POPULATE mapping in one hypercall, which a hypervisor does whole or not at all', () => {
    const { h, shim } = setup();
    expect(shim.mmap(12, { populate: true })).toBe(0);
    expect(reservationCalls(h)).toEqual(['populatePhysmap 0+12 flags=0']);
    // This fake hypervisor does part of a call (8 of 12 pages under max_pages 8): released in batches.
    const { h: h8, shim: shim8 } = setup(new OutOfFrames(8));
    expect(thrown(() => shim8.mmap(12, { populate: true })).errnoName).toBe('ENOMEM');
    expect(reservationCalls(h8)).toEqual(['populatePhysmap 0+12 flags=0', 'decreaseReservation 0+4', 'decreaseReservation 4+4']);
  });

  it('reports a rollback the hypervisor refuses as a broken invariant', () => {
    class Stuck extends OutOfFrames {
      override decreaseReservation(): number {
        throw new HypervisorError('EBUSY', 'decrease_reservation', 'stuck');
      }
    }
    const { shim } = setup(new Stuck(8));
    expect(() => shim.mmap(12)).toThrow(InvariantError);
  });
});

describe('GuestShim.munmap', () => {
  it('releases the pages in batches and splits the region', () => {
    const { h, shim } = setup();
    shim.mmap(16);
    h.calls.length = 0;
    shim.munmap(g(3), 6);
    expect(reservationCalls(h)).toEqual(['decreaseReservation 3+4', 'decreaseReservation 7+2']);
    expect(regions(shim)).toEqual(['mmap 0+3', 'mmap 9+7']);
    shim.munmap(g(0), 3);
    shim.munmap(g(13), 3);
    expect(regions(shim)).toEqual(['mmap 9+4']);
    expect(new HypercallClient(portTo(h), DOM1).currentReservation(DOMID_SELF)).toBe(4);
  });

  it('refuses a range not all mapped by mmap with EINVAL, issuing nothing', () => {
    const { h, shim } = setup(undefined, { heapStart: 32 });
    shim.mmap(8);
    shim.brk(g(36));
    h.calls.length = 0;
    for (const [gfn, n] of [
      [6, 4],
      [8, 1],
      [32, 2],
      [62, 4],
    ] as const) {
      expect(thrown(() => shim.munmap(g(gfn), n)).errnoName).toBe('EINVAL');
    }
    expect(thrown(() => shim.munmap(g(6), 4)).detail).toBe('pages [6, 10) of dom 1 are not all mapped by mmap');
    expect(thrown(() => shim.munmap(g(0), 0)).detail).toBe('page count must be a positive integer, got 0');
    expect(h.calls).toEqual([]);
    expect(regions(shim)).toEqual(['mmap 0+8', 'heap 32+4']);
  });

  it('keeps what a munmap refused part-way released out of the regions, and says how far it got', () => {
    let decreases = 0;
    class Flaky extends FakeHandler {
      override decreaseReservation(caller: DomId, domid: DomId, gfns: readonly number[], order: number): number {
        if (++decreases === 2) throw new HypervisorError('EBUSY', 'decrease_reservation', 'busy');
        return super.decreaseReservation(caller, domid, gfns, order);
      }
    }
    const { shim } = setup(new Flaky());
    shim.mmap(12);
    const e = thrown(() => shim.munmap(g(2), 8));
    expect([e.errnoName, e.op, e.detail]).toEqual(['EBUSY', 'decrease_reservation', 'busy (after 4 of 8 pages)']);
    expect(regions(shim)).toEqual(['mmap 0+2', 'mmap 6+6']);
    // Refused at the first batch: the error as it came, nothing released.
    decreases = 1;
    const first = thrown(() => shim.munmap(g(6), 2));
    expect(first.detail).toBe('busy');
    expect(regions(shim)).toEqual(['mmap 0+2', 'mmap 6+6']);
  });
});

describe('GuestShim.brk', () => {
  it('grows the heap on demand from heapStart and shrinks it from the top down', () => {
    const { h, shim } = setup(undefined, { heapStart: 20 });
    expect(shim.brk()).toBe(20);
    expect(shim.brk(g(30))).toBe(30);
    expect(shim.brk()).toBe(30);
    expect(regions(shim)).toEqual(['heap 20+10']);
    expect(shim.brk(g(21))).toBe(21);
    expect(reservationCalls(h)).toEqual([
      `populatePhysmap 20+4 flags=${POD}`,
      `populatePhysmap 24+4 flags=${POD}`,
      `populatePhysmap 28+2 flags=${POD}`,
      'decreaseReservation 26+4',
      'decreaseReservation 22+4',
      'decreaseReservation 21+1',
    ]);
    expect(shim.brk(g(20))).toBe(20);
    expect(shim.regions()).toEqual([]);
  });

  it('returns the old break, having issued nothing, for a move below heapStart, past the guest or into a region', () => {
    const { h, shim } = setup(undefined, { heapStart: 20 });
    shim.mmap(4, { fixed: g(26) });
    h.calls.length = 0;
    expect(shim.brk(g(19))).toBe(20);
    expect(shim.brk(g(65))).toBe(20);
    expect(shim.brk(g(27))).toBe(20);
    expect(h.calls).toEqual([]);
    expect(shim.brk(g(26))).toBe(26);
    // mmap's first fit goes around the heap.
    expect(shim.mmap(24)).toBe(30);
    expect(shim.mmap(4)).toBe(0);
    expect(regions(shim)).toEqual(['mmap 0+4', 'heap 20+6', 'mmap 26+28']);
  });

  it('returns the old break and undoes the growth when a populate_physmap is refused', () => {
    const { h, shim } = setup(new OutOfFrames(6), { heapStart: 8 });
    expect(shim.brk(g(16))).toBe(8);
    // The second batch fits 2 of its 4 pages: both batches are undone.
    expect(reservationCalls(h)).toEqual([
      `populatePhysmap 8+4 flags=${POD}`,
      `populatePhysmap 12+4 flags=${POD}`,
      'decreaseReservation 8+4',
      'decreaseReservation 12+2',
    ]);
    expect(shim.regions()).toEqual([]);
    expect(shim.brk(g(14))).toBe(14);
  });

  it('returns the break reached when a shrink is refused part-way', () => {
    let decreases = 0;
    class Flaky extends FakeHandler {
      override decreaseReservation(caller: DomId, domid: DomId, gfns: readonly number[], order: number): number {
        if (++decreases === 2) throw new HypervisorError('EBUSY', 'decrease_reservation', 'busy');
        return super.decreaseReservation(caller, domid, gfns, order);
      }
    }
    const { shim } = setup(new Flaky(), { heapStart: 0 });
    shim.brk(g(10));
    expect(shim.brk(g(1))).toBe(6);
    expect(regions(shim)).toEqual(['heap 0+6']);
    expect(shim.brk(g(1))).toBe(1);
  });
});

describe('GuestShim.madvise', () => {
  it('issues one madvise hypercall with the Linux advice number over mapped pages, heap included', () => {
    const { h, shim } = setup(undefined, { heapStart: 8 });
    shim.mmap(8);
    shim.brk(g(12));
    h.calls.length = 0;
    shim.madvise(g(2), 10, 'dontneed');
    shim.madvise(g(0), 1, 'mergeable');
    shim.madvise(g(9), 3, 'unmergeable');
    expect(h.calls.map((c) => [c.method, ...c.args])).toEqual([
      ['madvise', 1, 2, 10, Madvise.dontneed],
      ['madvise', 1, 0, 1, Madvise.mergeable],
      ['madvise', 1, 9, 3, Madvise.unmergeable],
    ]);
    expect(regions(shim)).toEqual(['mmap 0+8', 'heap 8+4']);
  });

  it('refuses unmapped pages with ENOMEM and bad arguments with EINVAL, issuing nothing', () => {
    const { h, shim } = setup();
    shim.mmap(8);
    shim.munmap(g(4), 1);
    h.calls.length = 0;
    let e = thrown(() => shim.madvise(g(2), 4, 'mergeable'));
    expect([e.errnoName, e.op, e.detail]).toEqual(['ENOMEM', 'madvise', 'gfn 4 of dom 1 is not mapped']);
    e = thrown(() => shim.madvise(g(6), 4, 'mergeable'));
    expect(e.detail).toBe('gfn 8 of dom 1 is not mapped');
    e = thrown(() => shim.madvise(g(0), 1, 'willneed' as 'dontneed'));
    expect([e.errnoName, e.detail]).toEqual(['EINVAL', 'unknown advice willneed']);
    e = thrown(() => shim.madvise(g(60), 8, 'dontneed'));
    expect(e.errnoName).toBe('EINVAL');
    expect(h.calls).toEqual([]);
  });
});

describe('GuestShim.fork', () => {
  it('is refused with EPERM without a control port', () => {
    const { h, shim } = setup();
    const e = thrown(() => shim.fork());
    expect([e.errnoName, e.op]).toEqual(['EPERM', 'fork']);
    expect(h.calls).toEqual([]);
  });

  it('creates the child as the control domain with the parent\'s sizes, forks it, and copies the regions', () => {
    // The fake hands out domain 9 for every createdomain.
    const h = new FakeHandler(300, [0, 1, 2, 9]);
    const port = portTo(h);
    const parent = new GuestShim(new HypercallClient(port, DOM1), DOM1, { gfnCount: 64, heapStart: 40, trustGroup: 7, control: port });
    parent.mmap(6);
    parent.brk(g(44));
    h.calls.length = 0;
    const child = parent.fork();
    expect(h.calls.map((c) => [c.method, c.caller, ...c.args])).toEqual([
      ['maximumReservation', 0, 1],
      ['createDomain', 0, 300, 64, 7],
      ['fork', 0, 9, 1],
    ]);
    expect(child.domId).toBe(9);
    expect([child.gfnCount, child.heapStart]).toEqual([64, 40]);
    expect(regions(child)).toEqual(['mmap 0+6', 'heap 40+4']);
    // The child's calls are its own.
    h.calls.length = 0;
    child.madvise(g(0), 2, 'mergeable');
    expect(h.calls).toEqual([{ method: 'madvise', caller: 9, args: [9, 0, 2, Madvise.mergeable] }]);
    // The two lists are independent.
    expect(parent.mmap(2)).toBe(6);
    expect(regions(parent)).toEqual(['mmap 0+8', 'heap 40+4']);
    expect(regions(child)).toEqual(['mmap 0+6', 'heap 40+4']);
  });

  it('takes max_pages from its option, and destroys the child when the fork is refused', () => {
    class NoFork extends FakeHandler {
      override fork(caller: DomId, child: DomId, parent: DomId): void {
        super.fork(caller, child, parent);
        throw new HypervisorError('EBUSY', 'sharing_fork', 'parent busy');
      }
    }
    const h = new NoFork(300, [0, 1, 2, 9]);
    const port = portTo(h);
    const shim = new GuestShim(new HypercallClient(port, DOM1), DOM1, { gfnCount: 64, control: port });
    const e = thrown(() => shim.fork({ maxPages: 100 }));
    expect([e.errnoName, e.op, e.detail]).toEqual(['EBUSY', 'sharing_fork', 'parent busy']);
    expect(h.calls.map((c) => [c.method, c.caller, ...c.args])).toEqual([
      ['createDomain', 0, 100, 64, 0],
      ['fork', 0, 9, 1],
      ['destroyDomain', 0, 9],
    ]);
    // Into a domain the caller made: the fork fills it, and a refused one leaves it to the caller.
    h.calls.length = 0;
    const e2 = thrown(() => shim.fork({ child: asDomId(9) }));
    expect(e2.errnoName).toBe('EBUSY');
    expect(h.calls.map((c) => [c.method, c.caller, ...c.args])).toEqual([['fork', 0, 9, 1]]);
  });
});

describe('GuestShim construction', () => {
  it('refuses bad options', () => {
    const client = new HypercallClient(portTo(new FakeHandler()), DOM1);
    expect(() => new GuestShim(client, DOMID_SELF, { gfnCount: 8 })).toThrow(RangeError);
    expect(() => new GuestShim(client, DOM1, { gfnCount: -1 })).toThrow(RangeError);
    expect(() => new GuestShim(client, DOM1, { gfnCount: 8, heapStart: 9 })).toThrow(RangeError);
    expect(() => new GuestShim(client, DOM1, { gfnCount: 8, batchPages: 0 })).toThrow(RangeError);
    expect(() => new GuestShim(client, DOM1, { gfnCount: 8, trustGroup: 0x10000 })).toThrow(RangeError);
    const shim = new GuestShim(client, DOM1, { gfnCount: 8 });
    expect([shim.domId, shim.gfnCount, shim.heapStart, shim.brk()]).toEqual([1, 8, 0, 0]);
  });
});
