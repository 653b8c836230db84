export { ClockPolicy, type ClockPolicyOptions } from './clock-policy.js';
export { LruPolicy, type LruPolicyOptions } from './lru-policy.js';
export { RANDOM_POLICY_DEFAULTS, RandomPolicy, type RandomPolicyOptions } from './random-policy.js';
export {
  createEvictionPolicy,
  EVICTION_POLICIES,
  type EvictionPolicyName,
  type EvictionPolicyOptions,
} from './create-eviction-policy.js';
