import { HypervisorError, type DedupIndex } from '@pagevisor/types';
import { InlineDedup, type InlineDedupOptions } from './inline-dedup.js';
import { NoDedup } from './no-dedup.js';

/** Names of the strategies {@link createDedup} builds. */
export const DEDUP_STRATEGIES = ['inline', 'none'] as const;

/** Name of a strategy {@link createDedup} builds. */
export type DedupStrategy = (typeof DEDUP_STRATEGIES)[number];

/**
 * Builds the de-duplication strategy named `strategy`: `"inline"` ({@link InlineDedup}, with
 * `options`) or `"none"` ({@link NoDedup}, which takes no options). An unknown name (from a
 * scenario file, say) is an EINVAL HypervisorError.
 */
export function createDedup(strategy: DedupStrategy, options?: InlineDedupOptions): DedupIndex {
  switch (strategy) {
    case 'inline':
      return new InlineDedup(options);
    case 'none':
      return new NoDedup();
    default:
      throw new HypervisorError(
        'EINVAL',
        'create_dedup',
        `unknown dedup strategy ${JSON.stringify(strategy)}; known: ${DEDUP_STRATEGIES.join(', ')}`,
      );
  }
}
