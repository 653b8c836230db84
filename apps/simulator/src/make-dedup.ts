import { createDedup } from '@pagevisor/dedup';
import { HypervisorError, type DedupIndex } from '@pagevisor/types';
import { dedupOptionsOf, ScenarioError, type DedupConfig } from '@pagevisor/workloads';

/**
 * The scenario field a strategy's refusal is about: `dedup.<option>` for the option given that
 * the message names first (as a whole word, so `run` is not found in `pages_to_run`; a refusal
 * names the bad option before any list of known ones), else `dedup.strategy`.
 */
function fieldOf(error: HypervisorError, options: Readonly<Record<string, unknown>>): string {
  let best: string | undefined;
  let bestAt = Infinity;
  for (const key of Object.keys(options)) {
    const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const m = new RegExp(`(^|[^A-Za-z0-9_])${escaped}($|[^A-Za-z0-9_])`).exec(error.detail);
    if (m === null) continue;
    const at = m.index + m[1]!.length;
    if (at < bestAt || (at === bestAt && key.length > best!.length)) {
      best = key;
      bestAt = at;
    }
  }
  return `dedup.${best ?? 'strategy'}`;
}

/**
 * Builds the strategy a scenario's `dedup` field names, with its options.
 * @throws ScenarioError naming `dedup.<option>` (or `dedup.strategy`) when the strategy refuses
 *   them (an unknown strategy, an unknown or bad option).
 */
export function makeDedup(config: DedupConfig): DedupIndex {
  const options = dedupOptionsOf(config);
  try {
    return createDedup(config.strategy, options);
  } catch (e) {
    if (!(e instanceof HypervisorError)) throw e;
    throw new ScenarioError([`${fieldOf(e, options)}: ${e.detail}`]);
  }
}
