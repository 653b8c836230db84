import { describe, expect, it } from 'vitest';
import { createDedup } from '@pagevisor/dedup';
import { decodeResponse, GuestShim, HypercallClient } from '@pagevisor/hypercall-abi';
import { asDomId, asGfn, DOMID_CONTROL, Errno, HypervisorError, PAGE_SIZE, Prng, type DomId } from '@pagevisor/types';
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

/** A random guest-side call of a GuestShim, or a scanner knob set by the toolstack. */
function randomCall(prng: Prng, shims: GuestShim[], hv: Hypervisor): { what: string; run: () => unknown } {
  const shim = shims[prng.nextInt(shims.length)]!;
  const gfn = asGfn(prng.nextInt(shim.gfnCount + 4) - 2);
  const pages = prng.nextInt(12) - 1;
  switch (prng.nextInt(7)) {
    case 0: {
      const opts = { populate: prng.nextInt(2) === 0, mergeable: prng.nextInt(2) === 0, ...(prng.nextInt(3) === 0 ? { fixed: gfn } : {}) };
      return { what: `dom ${shim.domId} mmap(${pages}, ${JSON.stringify(opts)})`, run: () => shim.mmap(pages, opts) };
    }
    case 1:
      return { what: `dom ${shim.domId} munmap(${gfn}, ${pages})`, run: () => shim.munmap(gfn, pages) };
    case 2:
      return { what: `dom ${shim.domId} brk(${gfn})`, run: () => shim.brk(gfn) };
    case 3: {
      const advice = (['dontneed', 'mergeable', 'unmergeable', 'bogus'] as const)[prng.nextInt(4)]!;
      return { what: `dom ${shim.domId} madvise(${gfn}, ${pages}, ${advice})`, run: () => shim.madvise(gfn, pages, advice as 'dontneed') };
    }
    case 4: {
      // A guest store, whole page or a few bytes, to make contents worth sharing.
      const page = new Uint8Array(PAGE_SIZE).fill(prng.nextInt(3));
      const length = prng.nextInt(2) === 0 ? PAGE_SIZE : 8;
      return { what: `dom ${shim.domId} store ${length} bytes at gfn ${gfn}`, run: () => hv.writePage(shim.domId, gfn, 0, page, 0, length) };
    }
    case 5: {
      const names = [...Object.keys(hv.dedup.knobs?.() ?? {}), 'no_such_knob'];
      const name = names[prng.nextInt(names.length)]!;
      const value = [-1, 0, 1, 2, 3, 100, 1.5, Number.NaN, 2 ** 40][prng.nextInt(9)]!;
      return { what: `knob ${name} = ${value}`, run: () => hv.dedup.setKnob?.(name, value) };
    }
    default:
      return { what: 'scanner wake', run: () => Number.isFinite(hv.dedup.nextWakeNs?.() ?? Infinity) && hv.wakeDedup(hv.dedup.nextWakeNs!()) };
  }
}

describe.each(['none', 'inline', 'ksm', 'esx'])('GuestShim calls, guest stores and scanner knobs: a refusal changes nothing (dedup %s)', (strategy) => {
  it('over random sequences, every refused call leaves the whole observable state as it was', async () => {
    const refused: Record<string, number> = {};
    for (let seed = 1; seed <= 12; seed++) {
      const prng = new Prng(seed);
      const hv = await Hypervisor.create({ frames: 40, dedup: createDedup(strategy) });
      const dom0 = new HypercallClient(hv, DOMID_CONTROL);
      const shims = [0, 1].map(() => {
        const dom = hv.createDomain({ maxPages: 20, gfnCount: 24 });
        hv.setDomainMergeable(dom, true);
        dom0.claimPages(dom, 6 + prng.nextInt(10));
        return new GuestShim(new HypercallClient(hv, dom), dom, { gfnCount: 24, heapStart: 16, batchPages: 4 });
      });
      for (let step = 0; step < 150; step++) {
        const call = randomCall(prng, shims, hv);
        const before = snapshot(hv);
        const regions = shims.map((s) => s.regions());
        const breaks = shims.map((s) => s.brk());
        let result: unknown;
        try {
          result = call.run();
        } catch (e) {
          if (!(e instanceof HypervisorError)) throw new Error(`seed ${seed} step ${step} ${call.what}: threw ${String(e)}`);
          refused[e.errnoName] = (refused[e.errnoName] ?? 0) + 1;
          expect(snapshot(hv), `seed ${seed} step ${step} ${call.what}: refused with ${e.errnoName}`).toBe(before);
          expect(shims.map((s) => s.regions())).toEqual(regions);
        }
        // brk answers a refused move with the old break, as Linux does, rather than an error.
        if (call.what.includes(' brk(') && result === breaks[shims.findIndex((s) => call.what.startsWith(`dom ${s.domId} `))]) {
          expect(JSON.parse(snapshot(hv)), `seed ${seed} step ${step} ${call.what}: refused`).toEqual(JSON.parse(before));
        }
        expect(hv.audit(), `seed ${seed} step ${step} ${call.what}`).toEqual([]);
      }
    }
    // The sequences must have met the refusals that matter: bad arguments, no room, max_pages.
    for (const errno of ['EINVAL', 'ENOMEM', 'E2BIG', 'EEXIST']) expect(refused[errno] ?? 0, errno).toBeGreaterThan(0);
  });
});
