export { Hypervisor, MEMF_POPULATE_ON_DEMAND, mayActOn, type Domain } from './hypervisor.js';
export { auditHypervisor } from './audit.js';
export { checkAgainstModel, ReferenceModel, snapshotState, type ModelCheckOptions, type ModelCheckSummary, type ModelOp } from './model-check.js';
export type { AllocatorName, DomainOptions, HypervisorOptions, SwapOptions } from './options.js';
export { Pager, type PagerStats } from './pager.js';
