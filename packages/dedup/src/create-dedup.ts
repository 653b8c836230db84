import { HypervisorError, type DedupIndex } from '@pagevisor/types';
import { DEFAULT_ESX_OPTIONS, EsxDedup, type EsxDedupOptions } from './esx/index.js';
import { DEFAULT_INLINE_DEDUP_OPTIONS, InlineDedup, type InlineDedupOptions } from './inline-dedup.js';
import { DEFAULT_KSM_OPTIONS, KsmDedup, type KsmOptions } from './ksm/index.js';
import { NoDedup } from './no-dedup.js';

/** Names of the strategies {@link createDedup} builds. */
export const DEDUP_STRATEGIES = ['inline', 'ksm', 'esx', 'none'] as const;

/** Name of a strategy {@link createDedup} builds. */
export type DedupStrategy = (typeof DEDUP_STRATEGIES)[number];

/**
 * Builds the de-duplication strategy named `strategy` with `options` (as read from a scenario
 * file): `inline` ({@link InlineDedupOptions}), `ksm` ({@link KsmOptions}, KSM's sysfs names),
 * `esx` ({@link EsxDedupOptions}) or `none` (no options). An unknown strategy, an unknown option
 * or a bad value is an EINVAL HypervisorError naming it.
 */
export function createDedup(strategy: string, options: Readonly<Record<string, unknown>> = {}): DedupIndex {
  switch (strategy) {
    case 'inline':
      return new InlineDedup(known(strategy, options, DEFAULT_INLINE_DEDUP_OPTIONS) as InlineDedupOptions);
    case 'ksm':
      return new KsmDedup(known(strategy, options, DEFAULT_KSM_OPTIONS) as KsmOptions);
    case 'esx':
      return new EsxDedup(known(strategy, options, DEFAULT_ESX_OPTIONS) as EsxDedupOptions);
    case 'none':
      known(strategy, options, {});
      return new NoDedup();
    default:
      throw new HypervisorError(
        'EINVAL',
        'create_dedup',
        `unknown dedup strategy ${JSON.stringify(strategy)}; known: ${DEDUP_STRATEGIES.join(', ')}`,
      );
  }
}

/** `options`, after refusing any name that `defaults` does not have. Values are the strategy's to check. */
function known(strategy: string, options: Readonly<Record<string, unknown>>, defaults: object): Readonly<Record<string, unknown>> {
  for (const name of Object.keys(options)) {
    if (!Object.prototype.hasOwnProperty.call(defaults, name)) {
      const names = Object.keys(defaults);
      throw new HypervisorError(
        'EINVAL',
        'create_dedup',
        `${strategy} has no option ${JSON.stringify(name)}${names.length > 0 ? `; known: ${names.join(', ')}` : ''}`,
      );
    }
  }
  return options;
}
