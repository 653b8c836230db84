import { describe, expect, it } from 'vitest';
import { createDedup } from '@pagevisor/dedup';
import { decodeResponse, HypercallClient } from '@pagevisor/hypercall-abi';
import { asDomId, asGfn, DOMID_CONTROL, Errno, HypervisorError, PAGE_SIZE, type DomId } from '@pagevisor/types';
import { Hypervisor } from './hypervisor.js';
import { observableDigest as snapshot } from './observable-state.js';

async function setup(strategy: string): Promise<{ hv: Hypervisor; dom0: HypercallClient; guest: DomId; other: DomId }> {
  const hv = await Hypervisor.create({ frames: 48, dedup: createDedup(strategy) });
  const guest = hv.createDomain({ maxPages: 16, gfnCount: 32 });
  const other = hv.createDomain({ maxPages: 16 });
  const dom0 = new HypercallClient(hv, DOMID_CONTROL);
  dom0.populatePhysmap(guest, [0, 1, 2, 3, 8]);
  dom0.writePage(guest, asGfn(1), 0, Uint8Array.of(1, 2, 3));
  dom0.populatePhysmap(other, [0, 1]);
  return { hv, dom0, guest, other };
}

/** Expects `call` to be refused with `errno` and a message matching `message`, changing nothing. */
function expectRefused(hv: Hypervisor, call: () => unknown, errno: string, message: RegExp): void {
  const before = snapshot(hv);
  let error: unknown;
  try {
    call();
  } catch (e) {
    error = e;
  }
  expect(error, `expected ${errno}`).toBeInstanceOf(HypervisorError);
  expect((error as HypervisorError).errnoName).toBe(errno);
  expect((error as HypervisorError).message).toMatch(message);
  expect(snapshot(hv)).toBe(before);
  expect(hv.audit()).toEqual([]);
}

describe.each(['none', 'inline', 'ksm', 'esx'])('refused hypercalls return their errno with a message and change nothing (dedup %s)', (strategy) => {
  it('unknown domain: ESRCH', async () => {
    const { hv, dom0 } = await setup(strategy);
    expectRefused(hv, () => dom0.populatePhysmap(asDomId(99), [0]), 'ESRCH', /no domain 99/);
    expectRefused(hv, () => dom0.currentReservation(asDomId(42)), 'ESRCH', /no domain 42/);
    expectRefused(hv, () => dom0.readPage(asDomId(7), asGfn(0), 0, 16), 'ESRCH', /no domain 7/);
  });

  it('gfn out of range: EINVAL', async () => {
    const { hv, dom0, guest } = await setup(strategy);
    expectRefused(hv, () => dom0.populatePhysmap(guest, [4, 32]), 'EINVAL', /gfn 32.*outside/);
    expectRefused(hv, () => dom0.writePage(guest, asGfn(40), 0, Uint8Array.of(1)), 'EINVAL', /gfn 40 is outside/);
    expectRefused(hv, () => dom0.decreaseReservation(guest, [1, 1000]), 'EINVAL', /gfn 1000/);
  });

  it('bad extent order: EINVAL', async () => {
    const { hv, dom0, guest } = await setup(strategy);
    expectRefused(hv, () => dom0.populatePhysmap(guest, [0], 19), 'EINVAL', /extentOrder|order/);
    expectRefused(hv, () => dom0.populatePhysmap(guest, [6], 2), 'EINVAL', /not aligned to order 2/);
  });

  it('over max_pages: E2BIG', async () => {
    const { hv, dom0, guest } = await setup(strategy);
    // 5 populated, max 16: 12 more would make 17.
    expectRefused(hv, () => dom0.populatePhysmap(guest, [16, 20, 24], 2), 'E2BIG', /17 pages, over its max_pages 16/);
  });

  it('out of machine frames: ENOMEM, for a populate and for a copy-on-write fault', async () => {
    const { hv, dom0, guest, other } = await setup(strategy);
    const big = hv.createDomain({ maxPages: 64 });
    const all = Array.from({ length: 48 }, (_, i) => i);
    if (!hv.dedup.populateZero) expectRefused(hv, () => dom0.populatePhysmap(big, all), 'ENOMEM', /frames needed/);
    // Share guest gfn 1 with other gfn 0, then use up every free frame with private pages.
    const content = new Uint8Array(PAGE_SIZE).fill(9);
    dom0.writePage(guest, asGfn(1), 0, content);
    dom0.writePage(other, asGfn(0), 0, content);
    const handle = dom0.nominateGfn(guest, asGfn(1));
    if (hv.totals().pagesShared === 0) dom0.share(guest, asGfn(1), handle, other, asGfn(0), dom0.nominateGfn(other, asGfn(0)));
    expect(hv.totals().pagesShared).toBe(1);
    const filler = all.slice(0, hv.frames.freeFrames);
    dom0.populatePhysmap(big, filler);
    for (const g of filler) dom0.writePage(big, asGfn(g), 0, new Uint8Array(PAGE_SIZE).fill(g + 10));
    expect(hv.frames.freeFrames).toBe(0);
    expectRefused(hv, () => dom0.writePage(other, asGfn(0), 5, Uint8Array.of(1)), 'ENOMEM', /no free machine frame|no free frame/);
  });

  it('wrong p2m type: EEXIST for populated, EINVAL for unpopulated', async () => {
    const { hv, dom0, guest } = await setup(strategy);
    expectRefused(hv, () => dom0.populatePhysmap(guest, [5, 2]), 'EEXIST', /gfn 2 is already populated/);
    expectRefused(hv, () => dom0.decreaseReservation(guest, [0, 6]), 'EINVAL', /gfn 6 is not populated/);
    expectRefused(hv, () => dom0.readPage(guest, asGfn(6), 0, 8), 'EINVAL', /gfn 6 is not populated/);
    expectRefused(hv, () => dom0.nominateGfn(guest, asGfn(9)), 'EINVAL', /has no frame|not populated/);
  });

  it('a guest acting on another domain: EPERM', async () => {
    const { hv, guest, other } = await setup(strategy);
    const g = new HypercallClient(hv, guest);
    expectRefused(hv, () => g.readPage(other, asGfn(0), 0, 16), 'EPERM', new RegExp(`dom ${guest} may not act on dom ${other}`));
    expectRefused(hv, () => g.populatePhysmap(other, [5]), 'EPERM', /may not act/);
    // ...while acting on itself is fine.
    expect(g.currentReservation(guest)).toBe(5);
  });

  it('a malformed buffer: refused by the ABI before the hypervisor sees it', async () => {
    const { hv, guest } = await setup(strategy);
    const before = snapshot(hv);
    const garbage = Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff);
    for (const [bytes, errno] of [[new Uint8Array(0), Errno.EFAULT], [new Uint8Array(3), Errno.EFAULT], [garbage, Errno.EINVAL]] as const) {
      // An error response carries no op-specific body, so any op decodes it.
      const response = decodeResponse('current_reservation', hv.hypercall(guest, bytes));
      expect(response.rc).toBe(-errno);
      expect(response.message).toBeTruthy();
    }
    expect(snapshot(hv)).toBe(before);
    expect(hv.audit()).toEqual([]);
  });
});
