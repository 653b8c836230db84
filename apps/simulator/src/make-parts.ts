import { createPart, mixSeed, PluginError, type DedupIndex, type FrameAllocator, type MachineMemory, type PluginContextBase, type PluginKind } from '@pagevisor/types';
import { dedupOptionsOf, specOf, type DedupConfig, type PluginSpec } from '@pagevisor/workloads';
import { loadPlugin, type LoadedPlugin } from './plugins.js';

/** A part built from a plugin, and the plugin it came from (reports name both). */
export interface BuiltPart<T, K extends PluginKind> {
  readonly part: T;
  readonly loaded: LoadedPlugin<K>;
}

/** What every part of a run is built with: the host's size, the run's seed, and where relative paths start. */
export type PartsContext = PluginContextBase;

/**
 * The parts' context of a run on `frames` frames: its `hashPage` is the machine's, which exists
 * only once the hypervisor does, so it is bound late by `bind(hv)` (parts hash only when they
 * store, never in `create`).
 */
export function partsContext(frames: number, numaNodes: number, seed: number, baseDir: string): { readonly context: PartsContext; bind(hv: { readonly memory: MachineMemory }): void } {
  let memory: MachineMemory | undefined;
  return {
    context: { frames, numaNodes, seed, baseDir, hashPage: (page) => memory!.hashPage(page) },
    bind(hv) {
      memory = hv.memory;
    },
  };
}

/**
 * Builds the strategy a scenario's `dedup` field names (a built-in or a plugin), with its options.
 * Its seed derives from the run's, so `--seed` reaches ESX's random scan (unless the options
 * name a seed).
 * @throws PluginError naming the strategy: it cannot be loaded, or refuses its options.
 */
export async function makeDedup(config: DedupConfig, context: PartsContext): Promise<BuiltPart<DedupIndex, 'dedup'>> {
  const loaded = await loadPlugin('dedup', config.strategy, context.baseDir);
  const part = createPart(loaded.plugin, loaded.specifier, dedupOptionsOf(config), { ...context, seed: mixSeed(context.seed, 0xe5) });
  return { part, loaded };
}

/**
 * Builds the frame allocator `spec` names (`"buddy"`, `"freelist"` or a plugin) for the run's frames.
 * @throws PluginError naming it, also when it manages another number of frames.
 */
export async function makeAllocator(spec: PluginSpec, context: PartsContext): Promise<BuiltPart<FrameAllocator, 'allocator'>> {
  const { specifier, options } = specOf(spec);
  const loaded = await loadPlugin('allocator', specifier, context.baseDir);
  const part = createPart(loaded.plugin, loaded.specifier, options, { ...context, seed: mixSeed(context.seed, 0xa110c) });
  if (part.totalFrames !== context.frames) throw new PluginError(specifier, `create returned an allocator of ${part.totalFrames} frames for a machine of ${context.frames}`);
  return { part, loaded };
}
