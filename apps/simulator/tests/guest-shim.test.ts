// The guest shim (packages/hypercall-abi) against a real hypervisor: hypercall-abi cannot depend
// on @pagevisor/hypervisor (which depends on it), the simulator can.
import { createDedup } from '@pagevisor/dedup';
import { GuestShim, HypercallClient } from '@pagevisor/hypercall-abi';
import { Hypervisor } from '@pagevisor/hypervisor';
import { asGfn, HypervisorError, PAGE_SIZE, type DomId } from '@pagevisor/types';
import { describe, expect, it } from 'vitest';

const g = asGfn;

/** A host of 1024 frames with one guest of `maxPages` pages over 256 gfns, heap from gfn 192. */
async function host(maxPages = 256, batchPages?: number) {
  const hv = await Hypervisor.create({ frames: 1024, dedup: createDedup('inline') });
  const dom = hv.createDomain({ maxPages, gfnCount: 256 });
  const shim = new GuestShim(new HypercallClient(hv, dom), dom, {
    gfnCount: 256,
    heapStart: 192,
    control: hv,
    ...(batchPages === undefined ? {} : { batchPages }),
  });
  return { hv, dom, shim };
}

function read(hv: Hypervisor, dom: DomId, gfn: number, length = 8, offset = 0): number[] {
  const out = new Uint8Array(length);
  hv.readPage(dom, g(gfn), offset, out, 0, length);
  return [...out];
}

function write(hv: Hypervisor, dom: DomId, gfn: number, bytes: number[], offset = 0): void {
  hv.writePage(dom, g(gfn), offset, Uint8Array.from(bytes), 0, bytes.length);
}

function pageOf(byte: number): Uint8Array {
  return new Uint8Array(PAGE_SIZE).fill(byte);
}

describe('GuestShim on a real hypervisor', () => {
  it('maps pages that read zeros, keeps what the guest writes, and frees what it unmaps', async () => {
    const { hv, dom, shim } = await host();
    expect(shim.mmap(16)).toBe(0);
    expect(shim.mmap(8, { populate: true })).toBe(16);
    expect(hv.currentReservation(dom)).toBe(24);
    expect(read(hv, dom, 3)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(read(hv, dom, 20)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    write(hv, dom, 3, [1, 2, 3], 4000);
    write(hv, dom, 20, [9]);
    expect(read(hv, dom, 3, 4, 3999)).toEqual([0, 1, 2, 3]);
    expect(read(hv, dom, 20, 2)).toEqual([9, 0]);
    const used = hv.totals().machineFramesUsed;
    shim.munmap(g(0), 4);
    expect(hv.currentReservation(dom)).toBe(20);
    // Page 3 had the one frame of its own among those four.
    expect(hv.totals().machineFramesUsed).toBe(used - 1);
    expect(() => read(hv, dom, 3)).toThrow(HypervisorError);
    expect(shim.regions()).toEqual([{ start: 4, pages: 20, kind: 'mmap' }]);
    expect(shim.mmap(4)).toBe(0);
    expect(read(hv, dom, 3)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(hv.audit()).toEqual([]);
  });

  it('moves the break: growth on demand, shrinking releases', async () => {
    const { hv, dom, shim } = await host();
    expect(shim.brk(g(200))).toBe(200);
    expect(hv.currentReservation(dom)).toBe(8);
    write(hv, dom, 195, [5, 6]);
    expect(read(hv, dom, 195, 2)).toEqual([5, 6]);
    expect(shim.brk(g(194))).toBe(194);
    expect(hv.currentReservation(dom)).toBe(2);
    expect(() => read(hv, dom, 195)).toThrow(HypervisorError);
    // Past the guest: refused, the break stays.
    expect(shim.brk(g(300))).toBe(194);
    expect(shim.regions()).toEqual([{ start: 192, pages: 2, kind: 'heap' }]);
    expect(hv.audit()).toEqual([]);
  });

  it('undoes an mmap the hypervisor refuses part-way, and refuses a brk growth past max_pages', async () => {
    const { hv, dom, shim } = await host(32, 16);
    shim.mmap(8);
    let e: unknown;
    try {
      shim.mmap(40);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(HypervisorError);
    expect((e as HypervisorError).errnoName).toBe('E2BIG');
    expect(hv.currentReservation(dom)).toBe(8);
    expect(shim.regions()).toEqual([{ start: 0, pages: 8, kind: 'mmap' }]);
    expect(shim.brk(g(192 + 25))).toBe(192);
    expect(hv.currentReservation(dom)).toBe(8);
    expect(hv.audit()).toEqual([]);
  });

  it('madvise dontneed makes pages read zeros, keeps them held, and backs them again on write', async () => {
    const { hv, dom, shim } = await host();
    shim.mmap(4, { populate: true });
    hv.writePage(dom, g(1), 0, pageOf(7), 0, PAGE_SIZE);
    hv.writePage(dom, g(2), 0, pageOf(8), 0, PAGE_SIZE);
    const used = hv.totals().machineFramesUsed;
    shim.madvise(g(1), 2, 'dontneed');
    expect(read(hv, dom, 1)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(read(hv, dom, 2)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(hv.currentReservation(dom)).toBe(4);
    expect(hv.totals().machineFramesUsed).toBe(used - 2);
    write(hv, dom, 2, [4]);
    expect(read(hv, dom, 2, 2)).toEqual([4, 0]);
    expect(() => shim.madvise(g(4), 1, 'dontneed')).toThrow(/not mapped/);
    expect(hv.audit()).toEqual([]);
  });

  it('forks: the child reads the parent\'s pages, and writes on either side stay their own', async () => {
    const { hv, dom, shim } = await host();
    shim.mmap(8, { populate: true });
    shim.brk(g(196));
    for (let i = 0; i < 8; i++) hv.writePage(dom, g(i), 0, pageOf(10 + i), 0, PAGE_SIZE);
    write(hv, dom, 193, [42]);
    const child = shim.fork();
    expect(child.domId).not.toBe(dom);
    expect(child.regions()).toEqual(shim.regions());
    expect(child.brk()).toBe(196);
    expect(hv.currentReservation(child.domId)).toBe(hv.currentReservation(dom));
    for (let i = 0; i < 8; i++) expect(read(hv, child.domId, i, 1)).toEqual([10 + i]);
    expect(read(hv, child.domId, 193, 1)).toEqual([42]);

    write(hv, child.domId, 0, [99]);
    write(hv, dom, 1, [98]);
    expect(read(hv, dom, 0, 1)).toEqual([10]);
    expect(read(hv, child.domId, 0, 1)).toEqual([99]);
    expect(read(hv, child.domId, 1, 1)).toEqual([11]);
    expect(read(hv, dom, 1, 1)).toEqual([98]);

    // The child's shim is its own: unmapping there leaves the parent's pages alone.
    child.munmap(g(4), 4);
    expect(child.regions()).toEqual([
      { start: 0, pages: 4, kind: 'mmap' },
      { start: 192, pages: 4, kind: 'heap' },
    ]);
    expect(read(hv, dom, 5, 1)).toEqual([15]);
    expect(hv.audit()).toEqual([]);
  });

  it('refuses a fork into a smaller domain and leaves no child behind', async () => {
    const { hv, shim } = await host();
    shim.mmap(8, { populate: true });
    const domains = hv.domains().length;
    let e: unknown;
    try {
      shim.fork({ maxPages: 4 });
    } catch (err) {
      e = err;
    }
    expect((e as HypervisorError).errnoName).toBe('E2BIG');
    expect(hv.domains().length).toBe(domains);
    expect(hv.audit()).toEqual([]);
  });
});
