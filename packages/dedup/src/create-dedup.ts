import { HypervisorError, mixSeed, type DedupIndex } from '@pagevisor/types';
import { DEFAULT_ESX_OPTIONS, EsxDedup, type EsxDedupOptions } from './esx/index.js';
import { DEFAULT_INLINE_DEDUP_OPTIONS, InlineDedup, type InlineDedupOptions } from './inline-dedup.js';
import { DEFAULT_KSM_OPTIONS, KsmDedup, type KsmOptions } from './ksm/index.js';
import { NoDedup } from './no-dedup.js';
import { PartitionedDedup } from './partitioned-dedup.js';

/** Names of the strategies {@link createDedup} builds. */
export const DEDUP_STRATEGIES = ['inline', 'ksm', 'esx', 'none'] as const;

/** Name of a strategy {@link createDedup} builds. */
export type DedupStrategy = (typeof DEDUP_STRATEGIES)[number];

/** Name of the option of {@link createDedup} that partitions any strategy by trust group. */
export const TRUST_GROUPS_OPTION = 'trustGroups';

/**
 * Builds the de-duplication strategy named `strategy` with `options` (as read from a scenario
 * file): `inline` ({@link InlineDedupOptions}), `ksm` ({@link KsmOptions}, KSM's sysfs names),
 * `esx` ({@link EsxDedupOptions}) or `none` (no options). Every strategy also takes
 * `trustGroups` (boolean, default false): true builds a {@link PartitionedDedup} of that
 * strategy, one per trust group, named e.g. `ksm+groups` (ESX's random scan then draws from
 * `mixSeed(seed, group)` in groups other than 0, so groups do not draw alike). An unknown
 * strategy, an unknown option or a bad value is an EINVAL HypervisorError naming it.
 */
export function createDedup(strategy: string, options: Readonly<Record<string, unknown>> = {}): DedupIndex {
  if (!Object.prototype.hasOwnProperty.call(options, TRUST_GROUPS_OPTION)) return createOne(strategy, options);
  const { [TRUST_GROUPS_OPTION]: trustGroups, ...rest } = options;
  if (typeof trustGroups !== 'boolean') {
    throw new HypervisorError('EINVAL', 'create_dedup', `${TRUST_GROUPS_OPTION} must be a boolean, got ${JSON.stringify(trustGroups)}`);
  }
  if (!trustGroups) return createOne(strategy, rest);
  // makeIndex(0) runs at once, in the constructor: a bad strategy or option is refused here.
  return new PartitionedDedup((group) => createOne(strategy, group === 0 || strategy !== 'esx' ? rest : withGroupSeed(rest, group)));
}

function createOne(strategy: string, options: Readonly<Record<string, unknown>>): DedupIndex {
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

/** ESX `options` with the seed of `group`'s scanner. */
function withGroupSeed(options: Readonly<Record<string, unknown>>, group: number): Readonly<Record<string, unknown>> {
  const seed = options['seed'] ?? DEFAULT_ESX_OPTIONS.seed;
  // A bad seed was refused by group 0's strategy already.
  return { ...options, seed: mixSeed(seed as number, group) };
}

/** `options`, after refusing any name that `defaults` does not have. Values are the strategy's to check. */
function known(strategy: string, options: Readonly<Record<string, unknown>>, defaults: object): Readonly<Record<string, unknown>> {
  for (const name of Object.keys(options)) {
    if (!Object.prototype.hasOwnProperty.call(defaults, name)) {
      const names = [...Object.keys(defaults), TRUST_GROUPS_OPTION];
      throw new HypervisorError(
        'EINVAL',
        'create_dedup',
        `${strategy} has no option ${JSON.stringify(name)}; known: ${names.join(', ')}`,
      );
    }
  }
  return options;
}
