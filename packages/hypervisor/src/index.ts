export { Hypervisor, MADV_DONTNEED, MADV_MERGEABLE, MADV_UNMERGEABLE, MEMF_POPULATE_ON_DEMAND, mayActOn, type Domain } from './hypervisor.js';
export { auditHypervisor } from './audit.js';
export { checkAgainstModel, destroyAll, ReferenceModel, type ModelCheckOptions, type ModelCheckSummary, type ModelOp } from './model-check.js';
export type { AllocatorName, DomainOptions, HypervisorOptions, Mitigations, SwapOptions } from './options.js';
export { Tmem, TMEM_MAX_POOLS_PER_DOMAIN, type TmemOptions, type TmemStats } from './tmem.js';
export { Pager, type PagerStats } from './pager.js';
export { FUZZ_CONFIGS, fuzzConfig, fuzzEpisode, fuzzHost, type FuzzConfig, type FuzzEpisodeOptions, type FuzzHost } from './fuzz-harness.js';
export { observableDigest, observableState, type DomainState, type ObservableState } from './observable-state.js';
