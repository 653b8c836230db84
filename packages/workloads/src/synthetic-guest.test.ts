import { describe, expect, it } from 'vitest';
import { asDomId, HypervisorError, InvariantError, NS_PER_S, PAGE_SIZE, type DomId, type Gfn } from '@pagevisor/types';
import { FakeHost } from '../tests/fake-host.js';
import { PageKind, SyntheticGuest, type SyntheticGuestSpec } from './synthetic-guest.js';

const spec: SyntheticGuestSpec = {
  memoryMiB: 1, // 256 pages
  image: { id: 'os', fraction: 0.5 },
  zeroFraction: 0.25,
  writeRatePagesPerS: 100,
  writeBytes: 16,
  wholePageWriteFraction: 0.25,
  bootPagesPerS: 1024,
};

/** Runs a guest alone to the end; returns the event times it asked for. */
function runToEnd(guest: SyntheticGuest): number[] {
  const times: number[] = [];
  for (let t = guest.nextEventNs(); t !== Infinity; t = guest.nextEventNs()) {
    times.push(t);
    guest.step(t);
  }
  return times;
}

function boot(s: SyntheticGuestSpec, dom: number, seed: number, host = new FakeHost()) {
  const guest = new SyntheticGuest(s, asDomId(dom), seed, { memory: host, hypercalls: host });
  runToEnd(guest);
  return { guest, host };
}

const isZero = (p: Uint8Array): boolean => p.every((b) => b === 0);

describe('SyntheticGuest boot', () => {
  it('populates every gfn in batches through hypercalls, then fills image and private pages whole', () => {
    const { guest, host } = boot(spec, 1, 7);
    expect(guest.state).toBe('done');
    expect(guest.pages).toBe(256);
    expect(host.pages.size).toBe(256);
    expect(host.populateCalls).toBe(1); // 256 <= 512 gfns per batch
    const writes = host.log.filter((l) => l.startsWith('write'));
    expect(writes).toHaveLength(guest.imagePages + guest.privatePages);
    expect(writes.every((w) => w.split(' ')[3] === '0' && w.split(' ')[4] === String(PAGE_SIZE))).toBe(true);
  });

  it('respects the fractions', () => {
    const { guest, host } = boot(spec, 1, 7);
    expect([guest.imagePages, guest.zeroPages, guest.privatePages]).toEqual([128, 64, 64]);
    let zero = 0;
    for (let g = 0; g < guest.pages; g++) {
      const page = host.page(1, g)!;
      expect(isZero(page)).toBe(guest.kindOf(g) === PageKind.zero);
      if (isZero(page)) zero++;
    }
    expect(zero).toBe(64);
  });

  it('gives guests with the same image id identical image pages and private pages of their own', () => {
    const host = new FakeHost();
    const a = boot(spec, 1, 1, host).guest;
    boot(spec, 2, 2, host);
    boot({ ...spec, image: { id: 'other-os', fraction: 0.5 } }, 3, 1, host);
    for (let g = 0; g < a.pages; g++) {
      const p1 = host.page(1, g)!;
      const p2 = host.page(2, g)!;
      const p3 = host.page(3, g)!;
      switch (a.kindOf(g)) {
        case PageKind.image:
          expect(p2).toEqual(p1);
          expect(p3).not.toEqual(p1);
          break;
        case PageKind.private:
          expect(p2).not.toEqual(p1);
          break;
        default:
          expect(isZero(p1) && isZero(p2) && isZero(p3)).toBe(true);
      }
    }
  });

  it('uses several populate batches for a large guest and takes pages / bootPagesPerS', () => {
    const host = new FakeHost();
    const guest = new SyntheticGuest({ ...spec, memoryMiB: 5 }, asDomId(1), 1, { memory: host, hypercalls: host }, { batchPages: 512 });
    const times = runToEnd(guest);
    expect(host.populateCalls).toBe(3); // 1280 pages: 512 + 512 + 256
    expect(host.log.filter((l) => l.startsWith('populate'))).toEqual(['populate 1 0+512', 'populate 1 512+512', 'populate 1 1024+256']);
    expect(times).toEqual([0, 500_000_000, 1_000_000_000]);
    expect(guest.bootEndNs).toBe(1.25 * NS_PER_S);
    // Each batch is one mmap with MAP_POPULATE; the shim sees the guest's RAM as one region.
    expect(guest.shim.regions()).toEqual([{ start: 0, pages: 1280, kind: 'mmap' }]);
    expect(guest.shim.gfnCount).toBe(1280);
  });

  it('retries a boot batch refused with EAGAIN whole: the refused mmap mapped nothing', () => {
    let refusals = 1;
    class PausedOnce extends FakeHost {
      override populatePhysmap(domid: DomId, gfns: readonly number[]): number {
        if (gfns[0] === 512 && refusals-- > 0) throw new HypervisorError('EAGAIN', 'populate_physmap', 'dom 1 is paused');
        return super.populatePhysmap(domid, gfns);
      }
    }
    const host = new PausedOnce();
    const guest = new SyntheticGuest({ ...spec, memoryMiB: 5 }, asDomId(1), 1, { memory: host, hypercalls: host }, { batchPages: 512 });
    const times = runToEnd(guest);
    expect(guest.state).toBe('done');
    expect(guest.pauses).toBe(1);
    expect(times).toEqual([0, 500_000_000, 501_000_000, 1_000_000_000]);
    expect(host.log.filter((l) => l.startsWith('populate'))).toEqual(['populate 1 0+512', 'populate 1 512+512', 'populate 1 1024+256']);
    expect(guest.shim.regions()).toEqual([{ start: 0, pages: 1280, kind: 'mmap' }]);
  });
});

describe('SyntheticGuest steady state', () => {
  const durationNs = 10 * NS_PER_S;

  function run(seed: number, s = spec) {
    const host = new FakeHost();
    const guest = new SyntheticGuest(s, asDomId(1), seed, { memory: host, hypercalls: host }, { durationNs });
    const times = runToEnd(guest);
    return { guest, host, times };
  }

  it('writes writeRatePagesPerS pages for durationNs and ends at bootEnd + duration', () => {
    const { guest, host, times } = run(3);
    expect(guest.writesDone).toBe(1000);
    expect(guest.writesPlanned).toBe(1000);
    expect(guest.state).toBe('done');
    expect(times.at(-1)).toBe(guest.endNs);
    expect(guest.endNs).toBe(guest.bootEndNs + durationNs);
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]!);
    expect(guest.nextEventNs()).toBe(Infinity);
    const steady = host.log.slice(1 + guest.imagePages + guest.privatePages);
    expect(steady).toHaveLength(1000);
  });

  it('mixes partial writes of writeBytes with whole-page writes at the given fraction', () => {
    const { guest, host } = run(3);
    const steady = host.log.slice(1 + guest.imagePages + guest.privatePages).map((l) => l.split(' '));
    const whole = steady.filter((w) => w[4] === String(PAGE_SIZE));
    const partial = steady.filter((w) => w[4] === '16');
    expect(whole.length + partial.length).toBe(1000);
    expect(whole.length).toBe(guest.wholePageWrites);
    expect(whole.length).toBeGreaterThan(200);
    expect(whole.length).toBeLessThan(300);
    expect(partial.every((w) => Number(w[3]) >= 0 && Number(w[3]) <= PAGE_SIZE - 16)).toBe(true);
    // Writes land on image, zero and private pages alike.
    const kinds = new Set(steady.map((w) => guest.kindOf(Number(w[2]))));
    expect(kinds.size).toBe(3);
  });

  it('is deterministic: the same seed gives the same operations, another seed others', () => {
    const a = run(11).host.log;
    const b = run(11).host.log;
    const c = run(12).host.log;
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(c.length).toBe(a.length);
  });

  it('has no steady state without duration, and no writes at rate 0', () => {
    expect(run(1, { ...spec, writeRatePagesPerS: 0 }).guest.writesDone).toBe(0);
    const host = new FakeHost();
    const g = new SyntheticGuest(spec, asDomId(1), 1, { memory: host, hypercalls: host });
    const times = runToEnd(g);
    expect(times).toEqual([0]);
    expect(g.endNs).toBe(g.bootEndNs);
  });
});

describe('SyntheticGuest failures', () => {
  it('stops with the error recorded when a hypercall throws ENOMEM', () => {
    const host = new FakeHost(100, 'throw');
    const guest = new SyntheticGuest(spec, asDomId(4), 1, { memory: host, hypercalls: host }, { durationNs: NS_PER_S });
    runToEnd(guest);
    expect(guest.state).toBe('failed');
    expect(guest.failure).toEqual({
      op: 'populate_physmap',
      errno: 'ENOMEM',
      message: 'populate_physmap: ENOMEM: fake host is full',
      atNs: 0,
    });
    expect(guest.nextEventNs()).toBe(Infinity);
    expect(guest.pagesBooted).toBe(0);
  });

  it('treats a partly done populate_physmap as ENOMEM, its shim releasing that part', () => {
    const host = new FakeHost(300, 'partial');
    const guest = new SyntheticGuest({ ...spec, memoryMiB: 2 }, asDomId(1), 1, { memory: host, hypercalls: host }, { batchPages: 128 });
    runToEnd(guest);
    expect(guest.state).toBe('failed');
    expect(guest.failure?.errno).toBe('ENOMEM');
    expect(guest.failure?.message).toMatch(/populated 44 of 128 pages from gfn 256/);
    expect(host.log.filter((l) => !l.startsWith('write'))).toEqual([
      'populate 1 0+128',
      'populate 1 128+128',
      'populate 1 256+128',
      'decrease 1 256+44',
    ]);
    expect(host.pages.size).toBe(256);
    expect(guest.shim.regions()).toEqual([{ start: 0, pages: 256, kind: 'mmap' }]);
    expect(guest.pagesBooted).toBe(256);
    expect(guest.failure?.atNs).toBe(250_000_000); // gfn 256 at 1024 pages/s
    expect(guest.nextEventNs()).toBe(Infinity);
  });

  it('stops when a write faults with a HypervisorError and does nothing afterwards', () => {
    let writes = 0;
    class FailingHost extends FakeHost {
      override writePage(dom: DomId, gfn: Gfn, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
        if (++writes === 5) throw new HypervisorError('ENOMEM', 'cow_fault', 'no frame to unshare into');
        super.writePage(dom, gfn, offset, src, srcOffset, length);
      }
    }
    const host = new FailingHost();
    const guest = new SyntheticGuest(spec, asDomId(1), 1, { memory: host, hypercalls: host });
    runToEnd(guest);
    expect(guest.state).toBe('failed');
    expect(guest.failure?.op).toBe('cow_fault');
    expect(guest.pagesBooted).toBe(4);
    expect(writes).toBe(5);
  });

  it('lets a bug (not a HypervisorError) escape', () => {
    const host = new FakeHost();
    const hypercalls = {
      populatePhysmap(): number {
        throw new InvariantError('refcount went negative');
      },
      decreaseReservation: () => 0,
      madvise: () => undefined,
      currentReservation: () => 0,
      maximumReservation: () => Number.MAX_SAFE_INTEGER,
    };
    const guest = new SyntheticGuest(spec, asDomId(1), 1, { memory: host, hypercalls });
    expect(() => guest.step(0)).toThrow(InvariantError);
  });

  it('refuses bad options', () => {
    const host = new FakeHost();
    const ports = { memory: host, hypercalls: host };
    expect(() => new SyntheticGuest(spec, asDomId(1), 1, ports, { batchPages: 0 })).toThrow(RangeError);
    expect(() => new SyntheticGuest(spec, asDomId(1), 1, ports, { durationNs: -1 })).toThrow(RangeError);
    expect(() => new SyntheticGuest({ ...spec, bootPagesPerS: 0 }, asDomId(1), 1, ports)).toThrow(RangeError);
    expect(() => new SyntheticGuest(spec, asDomId(1), 1, { ...ports, pageBuffer: () => new Uint8Array(PAGE_SIZE - 1) })).toThrow(/pageBuffer\(1\) must give 4096 bytes/);
    expect(() => new SyntheticGuest(spec, asDomId(1), 1, { ...ports, pageBuffer: () => new Uint8Array(PAGE_SIZE + 2).subarray(2) })).toThrow(/aligned/);
  });

  it('builds every page it writes in the scratch page its pageBuffer port gives, and writes the same pages as without one', () => {
    const small = { ...spec, memoryMiB: 2 };
    const plain = boot(small, 1, 9);
    const host = new FakeHost();
    const backing = new ArrayBuffer(3 * PAGE_SIZE);
    const asked: number[] = [];
    const sources = new Set<ArrayBufferLike>();
    const writePage = host.writePage.bind(host);
    host.writePage = (dom, gfn, offset, src, srcOffset, length) => {
      sources.add(src.buffer);
      writePage(dom, gfn, offset, src, srcOffset, length);
    };
    const guest = new SyntheticGuest(small, asDomId(1), 9, {
      memory: host,
      hypercalls: host,
      pageBuffer: (pages) => {
        asked.push(pages);
        return new Uint8Array(backing, PAGE_SIZE, pages * PAGE_SIZE);
      },
    });
    runToEnd(guest);
    expect(asked).toEqual([1]);
    expect([...sources]).toEqual([backing]);
    expect(host.pages.size).toBe(plain.host.pages.size);
    for (const [key, page] of plain.host.pages) expect(Buffer.compare(host.pages.get(key)!, page), key).toBe(0);
  });
});
