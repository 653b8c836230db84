import { PartitionedDedup, DEDUP_PLUGINS } from '@pagevisor/dedup';
import { checkAgainstModel, Hypervisor, type ModelCheckSummary, type ModelOp, type SwapOptions } from '@pagevisor/hypervisor';
import { EVICTION_POLICY_PLUGINS, FaultPlan, MemorySwapDevice, SharedSwap } from '@pagevisor/swap';
import {
  createPart,
  mixSeed,
  P2mType,
  PAGE_SIZE,
  PluginError,
  Prng,
  type DedupIndex,
  type EvictionPolicy,
  type FrameAllocator,
  type Plugin,
  type PluginContextBase,
  type PluginKind,
} from '@pagevisor/types';
import type { HostConfiguration } from './configurations.js';
import { checkedDedup, checkedPolicy } from './contracts.js';

/** Entries of the page content pool: few, so whole-page writes often repeat and share. Entry 0 is zeros. */
export const PAGE_CONTENTS = 4;
/** Entries of the tmem content pool: more than the stores have slots, so persistent puts run out of room. */
export const TMEM_CONTENTS = 8;

const POOL = Array.from({ length: PAGE_CONTENTS }, (_, i) => {
  const page = new Uint8Array(PAGE_SIZE);
  if (i > 0) new Prng(i).fillBytes(page);
  return page;
});
const TMEM_POOL = Array.from({ length: TMEM_CONTENTS }, (_, i) => {
  const page = new Uint8Array(PAGE_SIZE);
  if (i > 0) new Prng(100 + i).fillBytes(page);
  return page;
});
/** Content `i` of the page pool (what `writePage` ops write). */
export const pageContent = (i: number): Uint8Array => POOL[i % POOL.length]!;
/** Content `i` of the tmem pool (what `tmemPut` ops put). */
export const tmemContent = (i: number): Uint8Array => TMEM_POOL[i % TMEM_POOL.length]!;

/** The plugin under test and its options in this configuration. */
export interface UnderTest {
  readonly plugin: Plugin<PluginKind, unknown>;
  readonly options: Readonly<Record<string, unknown>>;
}

/** What one sequence on one host did, beyond the model check's own summary. */
export interface HostRun {
  readonly summary: ModelCheckSummary;
  /** The strategy merged a page: a whole-page write came to map a shared frame (or the zero frame), or a scan left more pages sharing. */
  readonly merged: boolean;
  readonly swapIns: number;
  /** Swap-ins that mapped a resident frame instead of taking one (the swap cache, the index). */
  readonly swapInsShared: number;
  readonly swapOuts: number;
  /** Counters of the dedup strategy's `stats()` that were above 0 after some step. */
  readonly countersMoved: readonly string[];
}

function builtIn<K extends PluginKind>(plugins: readonly Plugin<K>[], name: string): Plugin<K> {
  const p = plugins.find((q) => q.name === name);
  if (p === undefined) throw new Error(`testkit: no built-in plugin ${name}`);
  return p;
}

/**
 * The parts of `config` with the one under test in its place, built with `createPart` (its options
 * checked by the plugin's own check) for a host whose page hash `hashPage` gives once it exists.
 */
function parts(config: HostConfiguration, context: PluginContextBase, under: UnderTest | undefined) {
  const kind = under?.plugin.kind;
  const name = under?.plugin.name ?? '';
  const seedOf = (salt: number) => mixSeed(context.seed, salt);
  // Dedup: the plugin under test (its contract checked) or the configuration's built-in.
  const dedupPlugin = kind === 'dedup' ? (under!.plugin as Plugin<'dedup', unknown>) : builtIn(DEDUP_PLUGINS, config.dedup.plugin);
  const dedupOptions = kind === 'dedup' ? under!.options : config.dedup.options;
  const makeDedup = (group: number): DedupIndex => {
    const part = createPart(dedupPlugin, dedupPlugin.name, dedupOptions, { ...context, seed: seedOf(0xe5 + group) });
    return kind === 'dedup' ? checkedDedup(part, name) : part;
  };
  const dedup = config.trustGroups === 'index per group' ? new PartitionedDedup(makeDedup) : makeDedup(0);
  let allocator: FrameAllocator | 'buddy' | 'freelist' = config.allocator;
  if (kind === 'allocator') {
    allocator = createPart(under!.plugin as Plugin<'allocator', unknown>, name, under!.options, { ...context, seed: seedOf(0xa110c) });
    if (allocator.totalFrames !== context.frames) throw new PluginError(name, `create returned an allocator of ${allocator.totalFrames} frames for a machine of ${context.frames}`);
  }
  let policy: EvictionPolicy | undefined;
  if (config.swap !== undefined) {
    const policyContext = { ...context, seed: seedOf(0x73776170) };
    if (kind === 'eviction-policy') policy = checkedPolicy(createPart(under!.plugin as Plugin<'eviction-policy', unknown>, name, under!.options, policyContext), name);
    else policy = createPart(builtIn(EVICTION_POLICY_PLUGINS, config.swap.policy), config.swap.policy, {}, policyContext);
  }
  return { dedup, allocator, policy };
}

/** Swap options for `config`: areas of 256 slots over memory devices sharing one fault plan. */
function swapOptions(config: HostConfiguration, policy: EvictionPolicy, hashPage: (p: Uint8Array) => number): SwapOptions | undefined {
  const swap = config.swap;
  if (swap === undefined) return undefined;
  const faults = new FaultPlan(swap.faults ?? {});
  const area = (dedup: boolean) => new SharedSwap({ device: new MemorySwapDevice({ slots: 256, faults }), hashPage, dedup });
  return { backend: swap.mode === 'shared' ? area(true) : () => area(false), policy, lowWatermark: 1, highWatermark: 2 };
}

/** Builds the host of `config` (with the plugin under test in its place); throws what `createPart` throws. */
export async function buildHost(config: HostConfiguration, seed: number, under: UnderTest | undefined): Promise<Hypervisor> {
  let hv: Hypervisor | undefined;
  const hashPage = (p: Uint8Array): number => hv!.memory.hashPage(p);
  const context: PluginContextBase = { frames: config.frames, numaNodes: config.numaNodes, seed, hashPage, baseDir: process.cwd() };
  const { dedup, allocator, policy } = parts(config, context, under);
  hv = await Hypervisor.create({
    frames: config.frames,
    allocator,
    numaNodes: config.numaNodes,
    dedup,
    swap: policy && swapOptions(config, policy, hashPage),
    mitigations: config.mitigations,
    tmem: config.tmem === undefined ? undefined : { pages: config.tmem },
  });
  return hv;
}

/** Pages mapping a shared frame or the zero frame, over every domain. */
function sharingMappings(hv: Hypervisor): number {
  const rmap = hv.p2m.rmap;
  let n = 0;
  for (const mfn of rmap.frames()) n += rmap.count(mfn);
  return n;
}

/** The frame `dom`'s page `gfn` maps now, when it maps one (-1 otherwise). */
function frameOf(hv: Hypervisor, dom: number, gfn: number): number {
  const table = hv.p2m.table(dom as Parameters<Hypervisor['p2m']['table']>[0]);
  if (table === undefined || gfn >= table.size) return -1;
  const g = gfn as Parameters<typeof table.mfn>[0];
  const t = table.type(g);
  return t === P2mType.ram_rw || t === P2mType.ram_shared ? table.mfn(g) : -1;
}

/**
 * Runs `ops` on a fresh host of `config` through the reference-model check, watching whether the
 * strategy merged anything and which of its counters moved.
 * @throws what the check throws (an Error naming the step), or what building the host throws.
 */
export async function runOnHost(config: HostConfiguration, seed: number, under: UnderTest | undefined, ops: readonly ModelOp[]): Promise<HostRun> {
  const hv = await buildHost(config, seed, under);
  let merged = false;
  const moved = new Set<string>();
  // What the next step's write or scan is compared against.
  let beforeFrame = -1;
  let beforeSharing = 0;
  const prime = (next: ModelOp | undefined, h: Hypervisor): void => {
    if (next?.kind === 'writePage') beforeFrame = frameOf(h, next.dom, next.gfn);
    else if (next?.kind === 'scan') beforeSharing = sharingMappings(h);
  };
  let step = 0;
  const afterStep = (h: Hypervisor): void => {
    const op = ops[step]!;
    if (!merged && op.kind === 'writePage') {
      const f = frameOf(h, op.dom, op.gfn);
      merged = f >= 0 && f !== beforeFrame && (f === h.zeroMfn || h.frames.refcount(f as Parameters<typeof h.frames.refcount>[0]) > 1);
    } else if (!merged && op.kind === 'scan') {
      merged = sharingMappings(h) > beforeSharing;
    }
    for (const [k, v] of Object.entries(h.dedup.stats())) if (v > 0) moved.add(k);
    step++;
    if (!merged) prime(ops[step], h);
  };
  const summary = checkAgainstModel(hv, ops, { page: pageContent, tmemPage: tmemContent, afterStep, swapFaults: config.swap?.faults !== undefined });
  const swap = hv.swapStats();
  const swapInsShared = (swap?.swapInsCached ?? 0) + (swap?.swapInsDeduped ?? 0);
  return { summary, merged, swapIns: swap?.swapIns ?? 0, swapInsShared, swapOuts: swap?.swapOuts ?? 0, countersMoved: [...moved] };
}
