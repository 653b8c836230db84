import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createDedup } from '@pagevisor/dedup';
import { createEvictionPolicy, FaultPlan, MemorySwapDevice, SharedSwap, type FaultPlanOptions } from '@pagevisor/swap';
import type { SwapOptions } from './options.js';
import { PAGE_SIZE, Prng } from '@pagevisor/types';
import { Hypervisor } from './hypervisor.js';
import { checkAgainstModel, type ModelOp } from './model-check.js';

/** Runs per configuration; `MODEL_CHECK_RUNS` raises it for long runs (npm run check:model). */
const RUNS = Number(process.env['MODEL_CHECK_RUNS'] ?? 60);
// A fixed seed by default, so the suite is repeatable; MODEL_CHECK_SEED explores others.
const SEED = Number(process.env['MODEL_CHECK_SEED'] ?? 20261126);

// A small pool of contents, so whole-page writes often repeat and share. Pool entry 0 is zeros.
const POOL = Array.from({ length: 4 }, (_, i) => {
  const page = new Uint8Array(PAGE_SIZE);
  if (i > 0) new Prng(i).fillBytes(page);
  return page;
});
const page = (i: number): Uint8Array => POOL[i % POOL.length]!;

// Mostly the populated pages of live domains; sometimes a domain that does not exist, a page not
// populated or out of range of a 16-page domain.
const dom = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.constant(4) });
const gfn = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 7 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 17 }) });
const opArb: fc.Arbitrary<ModelOp> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('create' as const), maxPages: fc.integer({ min: 4, max: 16 }), gfnCount: fc.constant(16) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('populate' as const), dom, gfns: fc.uniqueArray(gfn, { maxLength: 4 }), order: fc.integer({ min: 0, max: 2 }), pod: fc.boolean() }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('writePage' as const), dom, gfn, content: fc.integer({ min: 0, max: POOL.length - 1 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('writeBytes' as const), dom, gfn, offset: fc.integer({ min: 0, max: PAGE_SIZE }), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('read' as const), dom, gfn }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('decrease' as const), dom, gfns: fc.uniqueArray(gfn, { maxLength: 3 }), order: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('share' as const), a: dom, gfnA: gfn, b: dom, gfnB: gfn }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('destroy' as const), dom }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advise' as const), dom, start: fc.integer({ min: 0, max: 12 }), count: fc.integer({ min: 0, max: 6 }), mergeable: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('scan' as const), wakes: fc.integer({ min: 1, max: 12 }) }) },
);
// Start with three domains, half populated, so that most ops land somewhere.
const opsArb = fc
  .array(opArb, { minLength: 20, maxLength: 120 })
  .map((ops): ModelOp[] => [
    { kind: 'create', maxPages: 16, gfnCount: 16 },
    { kind: 'create', maxPages: 12, gfnCount: 16 },
    { kind: 'create', maxPages: 16, gfnCount: 16 },
    ...[1, 2, 3].map((d): ModelOp => ({ kind: 'populate', dom: d, gfns: [0, 2, 4, 6], order: 1, pod: d === 3 })),
    ...ops,
  ]);

interface SwapConfig {
  readonly mode: 'shared' | 'per-domain';
  readonly policy: 'clock' | 'lru' | 'random';
  readonly faults?: FaultPlanOptions;
}

/** Swap options for a host of `frames` frames; hashPage is bound once the hypervisor exists. */
function swapOptions(config: SwapConfig, frames: number, hashPage: (p: Uint8Array) => number): SwapOptions {
  const faults = new FaultPlan(config.faults ?? {});
  const area = (dedup: boolean) => new SharedSwap({ device: new MemorySwapDevice({ slots: 256, faults }), hashPage, dedup });
  return {
    backend: config.mode === 'shared' ? area(true) : () => area(false),
    policy: createEvictionPolicy(config.policy, { frames, seed: 7 }),
    lowWatermark: 1,
    highWatermark: 2,
  };
}

describe.each<{ strategy: string; options: Record<string, unknown>; allocator: 'buddy' | 'freelist'; frames: number; numaNodes: number; swap?: SwapConfig }>([
  { strategy: 'inline', options: {}, allocator: 'buddy', frames: 40, numaNodes: 1 },
  { strategy: 'inline', options: {}, allocator: 'freelist', frames: 24, numaNodes: 1 },
  { strategy: 'none', options: {}, allocator: 'buddy', frames: 30, numaNodes: 1 },
  // Small scans and max_page_sharing 2 so that two full scans, chains and smart_scan happen within a run.
  { strategy: 'ksm', options: { pages_to_scan: 4, max_page_sharing: 2, use_zero_pages: 1 }, allocator: 'buddy', frames: 40, numaNodes: 1 },
  { strategy: 'ksm', options: { pages_to_scan: 6, merge_across_nodes: 0 }, allocator: 'buddy', frames: 40, numaNodes: 2 },
  { strategy: 'esx', options: { scanRatePerDomainPagesPerS: 1000, wakeIntervalMs: 20 }, allocator: 'buddy', frames: 40, numaNodes: 1 },
  // Swap: far fewer frames than guest pages, so pages go out and come back all the time.
  { strategy: 'inline', options: {}, allocator: 'buddy', frames: 5, numaNodes: 1, swap: { mode: 'shared', policy: 'clock' } },
  { strategy: 'none', options: {}, allocator: 'buddy', frames: 12, numaNodes: 1, swap: { mode: 'per-domain', policy: 'lru' } },
  { strategy: 'ksm', options: { pages_to_scan: 4 }, allocator: 'buddy', frames: 14, numaNodes: 1, swap: { mode: 'shared', policy: 'random', faults: { seed: 3, writeErrorProbability: 0.05, readErrorProbability: 0.05, shortWriteProbability: 0.03 } } },
  { strategy: 'none', options: {}, allocator: 'buddy', frames: 12, numaNodes: 1, swap: { mode: 'shared', policy: 'clock', faults: { seed: 4, writeErrorProbability: 0.1, readErrorProbability: 0.1 } } },
])('reference model: dedup $strategy $options, allocator $allocator, $frames frames, $numaNodes nodes, swap $swap', ({ strategy, options, allocator, frames, numaNodes, swap }) => {
  it('every read equals what was last written and the audit stays clean', async () => {
    // The property is only as good as the sharing it exercises: count the runs in which the
    // strategy itself merged pages (not only the share hypercall, which every strategy has).
    let runsThatShared = 0;
    await fc.assert(
      fc.asyncProperty(opsArb, async (ops) => {
        let hv: Hypervisor | undefined;
        const hashPage = (p: Uint8Array): number => hv!.memory.hashPage(p);
        hv = await Hypervisor.create({ frames, allocator, numaNodes, dedup: createDedup(strategy, options), swap: swap && swapOptions(swap, frames, hashPage) });
        let merged = false;
        const afterStep = (h: Hypervisor): void => {
          const st = h.dedup.stats();
          merged ||= strategy === 'ksm' ? (st['pages_sharing'] ?? 0) + (st['ksm_zero_pages'] ?? 0) > 0 : strategy === 'esx' ? (st['pages_merged'] ?? 0) > 0 : strategy === 'inline' ? (st['hits'] ?? 0) > 0 : h.totals().pagesSharing > 0;
        };
        checkAgainstModel(hv, ops, { page, afterStep, swapFaults: swap?.faults !== undefined });
        // With swap, what matters is that pages went out and came back.
        if (swap ? hv.swapStats()!.swapIns > 0 : merged) runsThatShared++;
      }),
      { numRuns: RUNS, seed: SEED },
    );
    expect(runsThatShared).toBeGreaterThan(RUNS / 5);
  });
});
