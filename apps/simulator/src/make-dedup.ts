import { createDedup } from '@pagevisor/dedup';
import { HypervisorError, mixSeed, type DedupIndex } from '@pagevisor/types';
import { dedupOptionsOf, ScenarioError, type DedupConfig } from '@pagevisor/workloads';

/**
 * Builds the strategy a scenario's `dedup` field names, with its options. ESX's random scan
 * takes its seed from the scenario's unless the options name one, so `--seed` reaches it.
 * @throws ScenarioError when the strategy refuses them (an unknown strategy, an unknown or bad
 *   option); the strategy's message names the option.
 */
export function makeDedup(config: DedupConfig, seed: number): DedupIndex {
  const options = dedupOptionsOf(config);
  const withSeed = config.strategy === 'esx' && options['seed'] === undefined ? { ...options, seed: mixSeed(seed, 0xe5) } : options;
  try {
    return createDedup(config.strategy, withSeed);
  } catch (e) {
    if (!(e instanceof HypervisorError)) throw e;
    throw new ScenarioError([`dedup: ${e.detail}`]);
  }
}
