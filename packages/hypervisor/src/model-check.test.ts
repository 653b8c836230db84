import { appendFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createDedup } from '@pagevisor/dedup';
import { createEvictionPolicy, FaultPlan, MemorySwapDevice, SharedSwap, type FaultPlanOptions } from '@pagevisor/swap';
import type { Mitigations, SwapOptions } from './options.js';
import { PAGE_SIZE, Prng } from '@pagevisor/types';
import { Hypervisor } from './hypervisor.js';
import { checkAgainstModel, type ModelOp } from './model-check.js';
import { modelOps } from '../tests/model-ops.js';

/** Runs per configuration; `MODEL_CHECK_RUNS` raises it for long runs (npm run check:model). */
const RUNS = Number(process.env['MODEL_CHECK_RUNS'] ?? 60);
// A fixed seed by default, so the suite is repeatable; MODEL_CHECK_SEED explores others.
const SEED = Number(process.env['MODEL_CHECK_SEED'] ?? 20261126);
// MODEL_CHECK_SHRINK=0 reports the first failing sequence as found (shrinking one can take minutes).
const SHRINK = process.env['MODEL_CHECK_SHRINK'] !== '0';
// MODEL_CHECK_SUMMARY=FILE appends a JSON line per configuration (sequences, operations) to FILE.
const SUMMARY = process.env['MODEL_CHECK_SUMMARY'];

// A small pool of contents, so whole-page writes often repeat and share. Pool entry 0 is zeros.
const POOL = Array.from({ length: 4 }, (_, i) => {
  const page = new Uint8Array(PAGE_SIZE);
  if (i > 0) new Prng(i).fillBytes(page);
  return page;
});
const page = (i: number): Uint8Array => POOL[i % POOL.length]!;
// Tmem contents: more of them than the store has slots, so persistent puts run out of room.
const TMEM_POOL = Array.from({ length: 8 }, (_, i) => {
  const p = new Uint8Array(PAGE_SIZE);
  if (i > 0) new Prng(100 + i).fillBytes(p);
  return p;
});
const tmemPage = (i: number): Uint8Array => TMEM_POOL[i % TMEM_POOL.length]!;

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

interface Config {
  readonly strategy: string;
  readonly options: Record<string, unknown>;
  readonly allocator: 'buddy' | 'freelist';
  readonly frames: number;
  readonly numaNodes: number;
  readonly swap?: SwapConfig;
  /** Domains in two trust groups (else all in group 0). */
  readonly groups?: boolean;
  readonly mitigations?: Mitigations;
  /** Tmem store slots (else no tmem: its ops are refused). */
  readonly tmem?: number;
}

const ksmSmall = { pages_to_scan: 4, max_page_sharing: 2, use_zero_pages: 1 };

describe.each<Config>([
  { strategy: 'inline', options: {}, allocator: 'buddy', frames: 40, numaNodes: 1 },
  { strategy: 'inline', options: {}, allocator: 'freelist', frames: 24, numaNodes: 1 },
  { strategy: 'none', options: {}, allocator: 'buddy', frames: 30, numaNodes: 1 },
  // Small scans and max_page_sharing 2 so that two full scans, chains and smart_scan happen within a run.
  { strategy: 'ksm', options: ksmSmall, allocator: 'buddy', frames: 40, numaNodes: 1 },
  { strategy: 'ksm', options: { pages_to_scan: 6, merge_across_nodes: 0 }, allocator: 'buddy', frames: 40, numaNodes: 2 },
  { strategy: 'esx', options: { scanRatePerDomainPagesPerS: 1000, wakeIntervalMs: 20 }, allocator: 'buddy', frames: 40, numaNodes: 1 },
  // Swap: far fewer frames than guest pages, so pages go out and come back all the time (and
  // forks of paged-out pages share or copy their slots).
  { strategy: 'inline', options: {}, allocator: 'buddy', frames: 5, numaNodes: 1, swap: { mode: 'shared', policy: 'clock' } },
  { strategy: 'none', options: {}, allocator: 'buddy', frames: 12, numaNodes: 1, swap: { mode: 'per-domain', policy: 'lru' } },
  { strategy: 'ksm', options: { pages_to_scan: 4 }, allocator: 'buddy', frames: 14, numaNodes: 1, swap: { mode: 'shared', policy: 'random', faults: { seed: 3, writeErrorProbability: 0.05, readErrorProbability: 0.05, shortWriteProbability: 0.03 } } },
  { strategy: 'none', options: {}, allocator: 'buddy', frames: 12, numaNodes: 1, swap: { mode: 'shared', policy: 'clock', faults: { seed: 4, writeErrorProbability: 0.1, readErrorProbability: 0.1 } } },
  { strategy: 'inline', options: {}, allocator: 'buddy', frames: 6, numaNodes: 1, swap: { mode: 'per-domain', policy: 'clock', faults: { seed: 5, readErrorProbability: 0.1 } } },
  // Trust groups: domains in two groups, with the dedup index partitioned by group or not.
  { strategy: 'inline', options: { trustGroups: true }, allocator: 'buddy', frames: 40, numaNodes: 1, groups: true },
  { strategy: 'inline', options: {}, allocator: 'buddy', frames: 40, numaNodes: 1, groups: true },
  { strategy: 'ksm', options: { ...ksmSmall, trustGroups: true }, allocator: 'buddy', frames: 40, numaNodes: 1, groups: true },
  { strategy: 'ksm', options: ksmSmall, allocator: 'buddy', frames: 40, numaNodes: 1, groups: true },
  { strategy: 'esx', options: { scanRatePerDomainPagesPerS: 2000, wakeIntervalMs: 20, trustGroups: true }, allocator: 'buddy', frames: 40, numaNodes: 1, groups: true },
  { strategy: 'esx', options: { scanRatePerDomainPagesPerS: 2000, wakeIntervalMs: 20 }, allocator: 'buddy', frames: 40, numaNodes: 1, groups: true },
  // Mitigations.
  { strategy: 'inline', options: {}, allocator: 'buddy', frames: 40, numaNodes: 1, mitigations: { zeroPagesOnly: true } },
  { strategy: 'ksm', options: { pages_to_scan: 4, use_zero_pages: 0 }, allocator: 'buddy', frames: 40, numaNodes: 1, mitigations: { zeroPagesOnly: true } },
  { strategy: 'ksm', options: ksmSmall, allocator: 'buddy', frames: 40, numaNodes: 1, mitigations: { uniformWrites: true } },
  { strategy: 'inline', options: {}, allocator: 'buddy', frames: 30, numaNodes: 1, mitigations: { uniformWrites: true, zeroPagesOnly: true }, groups: true },
  // Tmem: a store of 5 slots for 8 contents, so persistent puts fill it and ephemeral pages are evicted.
  { strategy: 'inline', options: {}, allocator: 'buddy', frames: 40, numaNodes: 1, tmem: 5 },
  { strategy: 'ksm', options: ksmSmall, allocator: 'buddy', frames: 14, numaNodes: 1, tmem: 3, swap: { mode: 'shared', policy: 'lru' } },
])('reference model: dedup $strategy $options, $allocator, $frames frames, $numaNodes nodes, swap $swap, groups $groups, mitigations $mitigations, tmem $tmem', (config) => {
  const { strategy, options, allocator, frames, numaNodes, swap } = config;
  it('every read equals what was last written, refusals change nothing and the audit stays clean', async () => {
    // The property is only as good as the sharing it exercises: count the runs in which the
    // strategy itself merged pages (not only the share hypercall, which every strategy has).
    let runsThatShared = 0;
    const applied: Record<string, number> = {};
    const refused: Record<string, number> = {};
    let pagedAtFork = 0;
    let sequences = 0;
    let operations = 0;
    await fc.assert(
      fc.asyncProperty(modelOps({ groups: config.groups === true, contents: POOL.length, tmemContents: TMEM_POOL.length, tmem: config.tmem !== undefined }), async (ops: ModelOp[]) => {
        let hv: Hypervisor | undefined;
        const hashPage = (p: Uint8Array): number => hv!.memory.hashPage(p);
        hv = await Hypervisor.create({
          frames,
          allocator,
          numaNodes,
          dedup: createDedup(strategy, options),
          swap: swap && swapOptions(swap, frames, hashPage),
          mitigations: config.mitigations,
          tmem: config.tmem === undefined ? undefined : { pages: config.tmem },
        });
        let merged = false;
        const afterStep = (h: Hypervisor): void => {
          const st = h.dedup.stats();
          merged ||= strategy === 'ksm' ? (st['pages_sharing'] ?? 0) + (st['ksm_zero_pages'] ?? 0) > 0 : strategy === 'esx' ? (st['pages_merged'] ?? 0) + (st['zero_merges'] ?? 0) > 0 : strategy === 'inline' ? (st['hits'] ?? 0) > 0 : h.totals().pagesSharing > 0;
        };
        const summary = checkAgainstModel(hv, ops, { page, tmemPage, afterStep, swapFaults: swap?.faults !== undefined });
        for (const [kind, n] of Object.entries(summary.appliedByKind)) applied[kind] = (applied[kind] ?? 0) + n;
        for (const [errno, n] of Object.entries(summary.refusedByErrno)) refused[errno] = (refused[errno] ?? 0) + n;
        pagedAtFork += summary.pagedAtFork;
        sequences++;
        operations += ops.length;
        // With swap, what matters is that pages went out and came back.
        if (swap ? hv.swapStats()!.swapIns > 0 : merged) runsThatShared++;
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: !SHRINK },
    );
    if (SUMMARY !== undefined) appendFileSync(SUMMARY, `${JSON.stringify({ config: { ...config, options }, sequences, operations, applied, refused })}\n`);
    expect(runsThatShared).toBeGreaterThan(RUNS / 5);
    // Every new op must have been carried out, not only refused.
    const kinds = ['madvise', 'fork', 'forkReset', 'rangeShare', 'addPhysmap', 'setSharing', 'pause', 'claim', 'destroy'];
    if (config.tmem !== undefined) kinds.push('tmemNewPool', 'tmemPut', 'tmemGet', 'tmemFlushPage', 'tmemFlushObject', 'tmemDestroyPool');
    for (const kind of kinds) expect(applied[kind] ?? 0, kind).toBeGreaterThan(0);
    // And the refusals the new state brings: paused accesses, destroying a parent, sharing disabled, other trust groups.
    const errnos = ['EAGAIN', 'EBUSY', 'EOPNOTSUPP', ...(config.groups === true ? ['EPERM'] : [])];
    for (const errno of errnos) expect(refused[errno] ?? 0, errno).toBeGreaterThan(0);
    // With swap, forks must meet paged-out pages of their parent.
    if (swap !== undefined) expect(pagedAtFork).toBeGreaterThan(0);
    // About 30 ms a run on a slow machine; shrinking a failure takes longer.
  }, Math.max(60_000, RUNS * 300));
});
