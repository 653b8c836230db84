import { definePlugin, HypervisorError, PluginError, type DedupIndex, type Plugin } from '@pagevisor/types';
import { createDedup, DEDUP_STRATEGIES, type DedupStrategy } from './create-dedup.js';

/** `createDedup(name, options)`, its refusal of an option made a PluginError naming the plugin. */
function build(name: DedupStrategy, options: Readonly<Record<string, unknown>>): DedupIndex {
  try {
    return createDedup(name, options);
  } catch (e) {
    if (e instanceof HypervisorError && e.errnoName === 'EINVAL') throw new PluginError(name, `options refused: ${e.detail}`);
    throw e;
  }
}

function dedupPlugin(name: DedupStrategy): Plugin<'dedup'> {
  return definePlugin({
    kind: 'dedup',
    name,
    // ESX's random scan takes the run's seed unless the options name one, so one seed gives one run.
    create: (options, context) => build(name, name === 'esx' && options['seed'] === undefined ? { ...options, seed: context.seed } : options),
  });
}

/** The built-in strategies (inline, ksm, esx, none) as plugins: `"dedup": { "strategy": "ksm", ...options }`. */
export const DEDUP_PLUGINS: readonly Plugin<'dedup'>[] = Object.freeze(DEDUP_STRATEGIES.map(dedupPlugin));
