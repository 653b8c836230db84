import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createDedup } from '@pagevisor/dedup';
import { FingerprintMemory, Fingerprinter } from '@pagevisor/machine';
import { createEvictionPolicy, FaultPlan, MemorySwapDevice, SharedSwap } from '@pagevisor/swap';
import { asDomId, asGfn, asMfn, HypervisorError, PAGE_SIZE, Prng } from '@pagevisor/types';
import { Hypervisor } from './hypervisor.js';
import { MADV_DONTNEED } from './memory-ops.js';
import { checkAgainstModel, ReferenceModel, type ModelCheckSummary, type ModelOp } from './model-check.js';
import type { HypervisorOptions } from './options.js';

// The reference-model check on a machine whose frames hold fingerprints (issue 19): every
// strategy, copy-on-write, swap (faults too), paging and tmem, against a model that keeps each
// page as the bytes a guest reads back there.

/**
 * The page pool: zeros, random pages, and a page whose bytes 8.. are zeros (taken as a generated
 * page by H: its fingerprint is its first 8 bytes, not a hash), so that whole-page writes repeat,
 * share and meet every form of H.
 */
const POOL = [
  new Uint8Array(PAGE_SIZE),
  ...[1, 2, 3].map((seed) => {
    const page = new Uint8Array(PAGE_SIZE);
    new Prng(seed).fillBytes(page);
    return page;
  }),
  Object.assign(new Uint8Array(PAGE_SIZE), { 0: 7, 5: 9 }),
];
const TMEM_POOL = [4, 5, 6, 7, 8].map((seed) => {
  const page = new Uint8Array(PAGE_SIZE);
  new Prng(seed).fillBytes(page);
  return page;
});
const page = (i: number): Uint8Array => POOL[i % POOL.length]!;
const tmemPage = (i: number): Uint8Array => TMEM_POOL[i % TMEM_POOL.length]!;

/** Random op sequences: three domains populated to start with, then mostly ops on them (a smaller version of testkit's). */
function modelOps(): fc.Arbitrary<ModelOp[]> {
  const dom = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 4, max: 6 }) });
  const gfn = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 7 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 17 }) });
  const content = fc.integer({ min: 0, max: POOL.length - 1 });
  // Partial stores: random bytes, and zeros (which leave the zero page as it is).
  const bytes = fc.oneof(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }), fc.array(fc.constant(0), { minLength: 1, maxLength: 8 }));
  const pool = fc.integer({ min: 0, max: 1 });
  const op = <T extends Record<string, fc.Arbitrary<unknown>>>(weight: number, kind: ModelOp['kind'], fields: T) => ({
    weight,
    arbitrary: fc.record({ kind: fc.constant(kind), ...fields }) as unknown as fc.Arbitrary<ModelOp>,
  });
  const raw = fc.oneof(
    op(4, 'populate', { dom, gfns: fc.uniqueArray(gfn, { maxLength: 4 }), order: fc.integer({ min: 0, max: 1 }), pod: fc.boolean() }),
    op(8, 'writePage', { dom, gfn, content }),
    op(6, 'writeBytes', { dom, gfn, offset: fc.integer({ min: 0, max: PAGE_SIZE - 8 }), bytes }),
    op(6, 'read', { dom, gfn }),
    op(2, 'decrease', { dom, gfns: fc.uniqueArray(gfn, { maxLength: 2 }), order: fc.constant(0) }),
    op(3, 'share', { a: dom, gfnA: gfn, b: dom, gfnB: gfn }),
    op(2, 'addPhysmap', { source: dom, gfnSource: gfn, client: dom, gfnClient: fc.integer({ min: 0, max: 15 }) }),
    op(2, 'rangeShare', { source: dom, client: dom, first: fc.integer({ min: 0, max: 6 }), last: fc.integer({ min: 0, max: 15 }) }),
    op(2, 'advise', { dom, start: fc.integer({ min: 0, max: 12 }), count: fc.integer({ min: 0, max: 6 }), mergeable: fc.boolean() }),
    op(6, 'scan', { wakes: fc.integer({ min: 1, max: 16 }) }),
    op(2, 'madvise', { dom, gfn: fc.integer({ min: 0, max: 14 }), count: fc.integer({ min: 0, max: 4 }), advice: fc.constant(MADV_DONTNEED) }),
    op(2, 'pageOut', { dom, gfn }),
    op(2, 'pagingPrep', { dom, gfn, data: fc.boolean(), content }),
    // A page out and back in by hand (as testkit's): a store gives it a private frame, then
    // pageOut, then paging_prep, with the pager's copy of a content or the page from swap.
    op(3, 'pageCycle' as ModelOp['kind'], { dom, gfn, offset: fc.integer({ min: 0, max: PAGE_SIZE - 1 }), data: fc.boolean(), content }),
    op(1, 'pause', { dom, paused: fc.nat(3).map((n) => n === 0) }),
    op(1, 'tmemNewPool', { dom, persistent: fc.boolean() }),
    op(3, 'tmemPut', { dom, pool, object: fc.constant(0), index: fc.integer({ min: 0, max: 3 }), content: fc.integer({ min: 0, max: TMEM_POOL.length - 1 }) }),
    op(3, 'tmemGet', { dom, pool, object: fc.constant(0), index: fc.integer({ min: 0, max: 3 }) }),
  );
  const start: ModelOp[] = [
    { kind: 'create', maxPages: 16, gfnCount: 16 },
    { kind: 'create', maxPages: 16, gfnCount: 16 },
    { kind: 'create', maxPages: 16, gfnCount: 16 },
    ...[1, 2, 3].map((d): ModelOp => ({ kind: 'populate', dom: d, gfns: [0, 2, 4, 6], order: 1, pod: d === 3 })),
  ];
  // Every other share is primed: both pages first get one non-zero content, so that it merges.
  return fc.array(raw, { minLength: 20, maxLength: 100 }).map((ops) =>
    start.concat(
      ops.flatMap((o, i): ModelOp[] =>
        o.kind === 'share' && i % 2 === 0
          ? [{ kind: 'writePage', dom: o.a, gfn: o.gfnA, content: 1 + (i % 4) }, { kind: 'writePage', dom: o.b, gfn: o.gfnB, content: 1 + (i % 4) }, o]
          : (o.kind as string) === 'pageCycle'
            ? pageCycle(o as unknown as PageCycle)
            : [o],
      ),
    ),
  );
}

interface PageCycle {
  readonly dom: number;
  readonly gfn: number;
  readonly offset: number;
  readonly data: boolean;
  readonly content: number;
}

function pageCycle({ dom, gfn, offset, data, content }: PageCycle): ModelOp[] {
  return [
    { kind: 'writeBytes', dom, gfn, offset, bytes: [1 + (offset % 255)] },
    { kind: 'pageOut', dom, gfn },
    { kind: 'pagingPrep', dom, gfn, data, content },
  ];
}

interface Config {
  readonly name: string;
  readonly frames: number;
  readonly swap?: 'shared' | 'per-domain';
  readonly faults?: boolean;
  readonly options: () => Omit<HypervisorOptions, 'frames' | 'contents' | 'swap'>;
}

const CONFIGS: readonly Config[] = [
  { name: 'inline, tmem', frames: 40, options: () => ({ dedup: createDedup('inline'), tmem: { pages: 6 } }) },
  { name: 'ksm', frames: 40, options: () => ({ dedup: createDedup('ksm', { pages_to_scan: 4, max_page_sharing: 2, use_zero_pages: 1 }) }) },
  { name: 'esx', frames: 40, options: () => ({ dedup: createDedup('esx', { scanRatePerDomainPagesPerS: 2000, wakeIntervalMs: 20 }) }) },
  { name: 'none', frames: 40, options: () => ({ dedup: createDedup('none') }) },
  { name: 'swap: shared area, inline', frames: 6, swap: 'shared', options: () => ({ dedup: createDedup('inline') }) },
  { name: 'swap: shared area, ksm', frames: 8, swap: 'shared', options: () => ({ dedup: createDedup('ksm', { pages_to_scan: 4, use_zero_pages: 1 }) }) },
  { name: 'swap: per-domain areas, esx', frames: 8, swap: 'per-domain', options: () => ({ dedup: createDedup('esx', { scanRatePerDomainPagesPerS: 2000, wakeIntervalMs: 20 }) }) },
  { name: 'swap with device faults, inline', frames: 6, swap: 'shared', faults: true, options: () => ({ dedup: createDedup('inline') }) },
];

async function host(config: Config, contents: 'bytes' | 'fingerprints', seed: number): Promise<Hypervisor> {
  let hv: Hypervisor | undefined;
  const hashPage = (p: Uint8Array): number => hv!.memory.hashPage(p);
  let swap: HypervisorOptions['swap'];
  if (config.swap !== undefined) {
    const faults = new FaultPlan(config.faults === true ? { seed, readErrorProbability: 0.05, writeErrorProbability: 0.05 } : {});
    const area = (dedup: boolean) => new SharedSwap({ device: new MemorySwapDevice({ slots: 128, faults }), hashPage, dedup });
    swap = {
      backend: config.swap === 'shared' ? area(true) : () => area(false),
      policy: createEvictionPolicy('clock', { frames: config.frames, seed }),
      lowWatermark: 1,
      highWatermark: 2,
    };
  }
  hv = await Hypervisor.create({ frames: config.frames, contents, ...config.options(), ...(swap === undefined ? {} : { swap }) });
  return hv;
}

describe('Hypervisor.create with contents', () => {
  it('builds a FingerprintMemory for "fingerprints", bytes by default, and refuses another mode', async () => {
    const fp = await Hypervisor.create({ frames: 16, contents: 'fingerprints' });
    expect(fp.memory).toBeInstanceOf(FingerprintMemory);
    expect(fp.memory.contents).toBe('fingerprints');
    expect((await Hypervisor.create({ frames: 16 })).memory.contents).toBe('bytes');
    await expect(Hypervisor.create({ frames: 16, contents: 'pages' as 'bytes' })).rejects.toThrow(HypervisorError);
    // A guest reads back bytes generated from the fingerprint; they are its page again when written back whole.
    const dom = fp.createDomain({ maxPages: 4 });
    fp.populatePhysmap(dom, [0, 1]);
    fp.writePage(dom, asGfn(0), 0, page(1), 0, PAGE_SIZE);
    const back = new Uint8Array(PAGE_SIZE);
    fp.readPage(dom, asGfn(0), 0, back, 0, PAGE_SIZE);
    expect(Buffer.compare(back, page(1))).not.toBe(0);
    fp.writePage(dom, asGfn(1), 0, back, 0, PAGE_SIZE);
    expect(fp.totals().pagesSharing).toBe(1); // the inline index merged them
  });
});

describe('the reference model on fingerprints', () => {
  it('keeps pages as the bytes a guest reads back: bytes(H(page)) after a whole-page store, a fold after a partial one', () => {
    const model = new ReferenceModel({ contents: 'fingerprints' });
    const fp = new Fingerprinter();
    const d = model.create(4, 4);
    model.apply({ kind: 'populate', dom: d, gfns: [0, 1], order: 0, pod: false }, page);
    model.apply({ kind: 'writePage', dom: d, gfn: 0, content: 1 }, page);
    fp.ofPage(page(1));
    const want = new Uint8Array(PAGE_SIZE);
    fp.bytes(fp.lo, fp.hi, 0, want, 0, PAGE_SIZE);
    expect(model.domains.get(d)!.pages.get(0)).toEqual(want);
    model.apply({ kind: 'writeBytes', dom: d, gfn: 0, offset: 100, bytes: [1, 2, 3] }, page);
    fp.afterWrite(fp.lo, fp.hi, 100, Uint8Array.of(1, 2, 3), 0, 3);
    fp.bytes(fp.lo, fp.hi, 0, want, 0, PAGE_SIZE);
    expect(model.domains.get(d)!.pages.get(0)).toEqual(want);
    // Zeros into the zero page leave it zeros; a read of other bytes is wrong.
    model.apply({ kind: 'writeBytes', dom: d, gfn: 1, offset: 8, bytes: [0, 0] }, page);
    expect(model.domains.get(d)!.pages.get(1)).toEqual(new Uint8Array(PAGE_SIZE));
    expect(model.apply({ kind: 'read', dom: d, gfn: 0 }, page, undefined, page(1))).toMatch(/differs/);
    expect(model.apply({ kind: 'read', dom: d, gfn: 0 }, page, undefined, want)).toBeUndefined();
  });

  it('finds a frame changed behind the hypervisor, as on bytes', async () => {
    const hv = await host(CONFIGS[0]!, 'fingerprints', 1);
    const ops: ModelOp[] = [
      { kind: 'create', maxPages: 4, gfnCount: 4 },
      { kind: 'populate', dom: 1, gfns: [0], order: 0, pod: false },
      { kind: 'writePage', dom: 1, gfn: 0, content: 2 },
      { kind: 'read', dom: 1, gfn: 0 },
    ];
    let step = 0;
    const corrupt = (h: Hypervisor): void => {
      if (step++ === 2) h.memory.write(asMfn(h.p2m.table(asDomId(1))!.mfn(asGfn(0))), 9, Uint8Array.of(1), 0, 1);
    };
    expect(() => checkAgainstModel(hv, ops, { page, afterStep: corrupt })).toThrow(/step 3 .*read differs/);
  });

  for (const config of CONFIGS) {
    it(`random sequences agree with the model and the audit stays clean: ${config.name}`, async () => {
      let sharing = 0;
      let zeroPages = 0;
      let swapOuts = 0;
      let swapIns = 0;
      let partial = 0;
      let prepared = 0;
      let tmemGets = 0;
      await fc.assert(
        fc.asyncProperty(modelOps(), fc.integer({ min: 1, max: 1000 }), async (ops, seed) => {
          const hv = await host(config, 'fingerprints', seed);
          let summary: ModelCheckSummary;
          try {
            summary = checkAgainstModel(hv, ops, { page, tmemPage, swapFaults: config.faults === true });
          } catch (e) {
            throw new Error(`${config.name}: ${(e as Error).message}`);
          }
          sharing = Math.max(sharing, summary.peakPagesSharing);
          zeroPages = Math.max(zeroPages, summary.peakZeroPages);
          swapOuts += hv.swapStats()?.swapOuts ?? 0;
          swapIns += hv.swapStats()?.swapIns ?? 0;
          partial += summary.appliedByKind['writeBytes'] ?? 0;
          prepared += summary.appliedByKind['pagingPrep'] ?? 0;
          tmemGets += summary.appliedByKind['tmemGet'] ?? 0;
        }),
        { numRuns: 40, seed: 19 },
      );
      // Not a check of nothing: the sequences shared frames (but under none), stored partially,
      // and with swap went out and came back in.
      expect(partial).toBeGreaterThan(0);
      if (config.name !== 'none') expect(sharing).toBeGreaterThan(0);
      if (config.swap !== undefined) {
        expect(prepared).toBeGreaterThan(0);
        expect(swapOuts).toBeGreaterThan(0);
        expect(swapIns).toBeGreaterThan(0);
      }
      if (config.name.includes('tmem')) expect(tmemGets).toBeGreaterThan(0);
      if (config.name === 'ksm') expect(zeroPages).toBeGreaterThan(0);
    }, 60_000);
  }
});
