export {
  checkAllocator,
  checkDedupStrategy,
  checkEvictionPolicy,
  COVERAGE_MIN_RUNS,
  DEFAULT_RUNS,
  DEFAULT_SEED,
  EXTRA_ROUNDS,
  type ConfigurationReport,
  type KitOptions,
  type KitReport,
} from './kit.js';
export {
  ALLOCATOR_ALONE_CONFIGURATIONS,
  configurationsFor,
  ESX_FAST,
  HOST_CONFIGURATIONS,
  KSM_SMALL,
  POLICY_ALONE_CONFIGURATIONS,
  type AloneConfiguration,
  type BuiltInPart,
  type CheckedKind,
  type Configuration,
  type HostConfiguration,
  type SwapSetup,
} from './configurations.js';
export { modelOps, type ModelOpsOptions } from './model-ops.js';
export { allocatorOps, policyOps, runAllocatorAlone, runPolicyAlone, type AllocatorOp, type AloneRun, type PolicyOp } from './alone.js';
export { buildHost, pageContent, PAGE_CONTENTS, runOnHost, tmemContent, TMEM_CONTENTS, type HostRun, type UnderTest } from './host.js';
export { checkedDedup, checkedPolicy, ContractError } from './contracts.js';
