import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { definePlugin, HypervisorError, mixSeed, PluginError, type Plugin, type SwapDevice } from '@pagevisor/types';
import { createEvictionPolicy, EVICTION_POLICIES, type EvictionPolicyName } from './eviction/index.js';
import { FaultPlan, type FaultPlanOptions } from './fault-plan.js';
import { FileSwapDevice, type FsyncPolicy } from './file-swap-device.js';
import { MemorySwapDevice } from './memory-swap-device.js';
import { type Compression } from './page-codec.js';
import { SharedSwap } from './shared-swap.js';

/** `options` after refusing names not in `known` (each named). */
function only(plugin: string, options: Readonly<Record<string, unknown>>, known: readonly string[]): Readonly<Record<string, unknown>> {
  const bad = Object.keys(options).filter((k) => !known.includes(k));
  if (bad.length > 0) {
    throw new PluginError(plugin, 'options refused', bad.map((path) => ({ path, message: known.length === 0 ? `${plugin} takes no options` : `unknown option; known: ${known.join(', ')}` })));
  }
  return options;
}

function policyPlugin(name: EvictionPolicyName): Plugin<'eviction-policy'> {
  return definePlugin({
    kind: 'eviction-policy',
    name,
    options: (o) => only(name, o, []),
    create: (_options, context) => createEvictionPolicy(name, { frames: context.frames, seed: context.seed }),
  });
}

/** The built-in eviction policies (clock, lru, random) as plugins. */
export const EVICTION_POLICY_PLUGINS: readonly Plugin<'eviction-policy'>[] = Object.freeze(EVICTION_POLICIES.map(policyPlugin));

/** The fault plan of one area's device: per-domain areas get a seed of their own. */
function faultPlan(faults: unknown, dom: number | undefined): FaultPlan | undefined {
  if (faults === undefined) return undefined;
  const o = faults as FaultPlanOptions;
  const seed = o.seed ?? 1;
  try {
    return new FaultPlan({ ...o, seed: dom === undefined ? seed : mixSeed(seed, dom) });
  } catch (e) {
    if (e instanceof HypervisorError) throw new PluginError('swap device', `options refused: faults: ${e.detail}`);
    throw e;
  }
}

/** The memory device: `{ faults? }` (a FaultPlan's options). */
export const memoryDevicePlugin = definePlugin({
  kind: 'swap-device',
  name: 'memory',
  options: (o) => only('memory', o, ['faults']),
  create: (options, context) => new MemorySwapDevice({ slots: context.slots, faults: faultPlan(options['faults'], context.dom) }),
});

let temporaryFiles = 0;

/**
 * The file device: `{ path?, fsync?, faults? }`. Without `path`, a temporary file removed when
 * the device closes; a relative `path` is the scenario directory's; a per-domain area's file is
 * `<path>.dom<N>`.
 */
export const fileDevicePlugin = definePlugin({
  kind: 'swap-device',
  name: 'file',
  options: (o) => only('file', o, ['path', 'fsync', 'faults']),
  create: (options, context): SwapDevice => {
    const given = options['path'] as string | undefined;
    const base = given === undefined ? join(tmpdir(), `pagevisor-swap-${process.pid}-${++temporaryFiles}`) : resolve(context.baseDir, given);
    return FileSwapDevice.open({
      path: context.dom === undefined ? base : `${base}.dom${context.dom}`,
      slots: context.slots,
      fsync: options['fsync'] as FsyncPolicy | undefined,
      faults: faultPlan(options['faults'], context.dom),
      removeOnClose: given === undefined,
    });
  },
});

/** The built-in swap devices as plugins. */
export const SWAP_DEVICE_PLUGINS: readonly Plugin<'swap-device'>[] = Object.freeze([memoryDevicePlugin, fileDevicePlugin]);

/**
 * The swap area of @pagevisor/swap (refcounted slots with checksums, content de-duplication in the
 * shared area, optional compression): `{ compression? }`.
 */
export const sharedSwapPlugin = definePlugin({
  kind: 'swap-backend',
  name: 'shared-swap',
  options: (o) => only('shared-swap', o, ['compression']),
  create: (options, context) => new SharedSwap({ device: context.device(), hashPage: context.hashPage, compression: options['compression'] as Compression | undefined, dedup: context.dedup }),
});

/** The built-in swap backends as plugins. */
export const SWAP_BACKEND_PLUGINS: readonly Plugin<'swap-backend'>[] = Object.freeze([sharedSwapPlugin]);
