import { HypervisorError, type EvictionPolicy } from '@pagevisor/types';
import { ClockPolicy } from './clock-policy.js';
import { LruPolicy } from './lru-policy.js';
import { RandomPolicy } from './random-policy.js';

/** Names of the eviction policies, in the order reports list them. */
export const EVICTION_POLICIES = ['clock', 'lru', 'random'] as const;

/** Name of an eviction policy. */
export type EvictionPolicyName = (typeof EVICTION_POLICIES)[number];

/** Options of {@link createEvictionPolicy}. */
export interface EvictionPolicyOptions {
  /** Machine frames of the host: every mfn given to the policy is below this. */
  readonly frames: number;
  /** Seed for `random` (default 0); the other policies ignore it. */
  readonly seed?: number;
}

/**
 * Creates the eviction policy named `name` for frames `[0, opts.frames)`. Throws
 * HypervisorError(EINVAL) for an unknown name or a bad `frames`.
 */
export function createEvictionPolicy(
  name: EvictionPolicyName,
  opts: EvictionPolicyOptions,
): EvictionPolicy {
  switch (name) {
    case 'clock':
      return new ClockPolicy({ frames: opts.frames });
    case 'lru':
      return new LruPolicy({ frames: opts.frames });
    case 'random':
      return new RandomPolicy({ frames: opts.frames, seed: opts.seed });
    default:
      throw new HypervisorError('EINVAL', 'create_eviction_policy', `unknown policy ${String(name)}`);
  }
}
