export {
  asDomId,
  asGfn,
  asMfn,
  asSwapSlot,
  isRealDomId,
  DOMID_CONTROL,
  DOMID_COW,
  DOMID_FIRST_RESERVED,
  DOMID_INVALID,
  DOMID_SELF,
  DOMID_XEN,
  INVALID_GFN,
  INVALID_MFN,
  INVALID_SWAP_SLOT,
  type Brand,
  type DomId,
  type Gfn,
  type Mfn,
  type SwapSlot,
} from './ids.js';
export { bytesToPages, mibToPages, MAX_ORDER, PAGE_SHIFT, PAGE_SIZE } from './page.js';
export { P2M_TYPE_NAMES, P2mType, p2mHasFrame } from './p2m-type.js';
export {
  Errno,
  errnoName,
  HypervisorError,
  invariant,
  InvariantError,
  type ErrnoName,
  type ErrnoValue,
} from './errors.js';
export { NS_PER_MS, NS_PER_S, SimClock, type Clock } from './clock.js';
export { DEFAULT_COST_MODEL, type CostModel } from './cost-model.js';
export { mixSeed, Prng } from './prng.js';
export type { MachineMemory } from './memory.js';
export { FrameFlags, type FrameAllocator, type FrameTable } from './frame-table.js';
export type { P2m, P2mTable, ReverseMap } from './p2m.js';
export type { AuditDepth, DedupHost, DedupIndex, InsertReason } from './dedup.js';
export { CowOutcome, type CowFaultHandler } from './cow.js';
export type { GuestMemoryAccess, HypercallPort } from './guest.js';
export type { DomainStats, TotalsStats } from './stats.js';
export type { EvictionPolicy, SwapBackend, SwapDevice, SwapStats } from './swap.js';
export {
  createPart,
  definePlugin,
  PLUGIN_KINDS,
  PluginError,
  pluginProblems,
  type Plugin,
  type PluginContextBase,
  type PluginContexts,
  type PluginKind,
  type PluginOptionIssue,
  type PluginOptionsCheck,
  type PluginParts,
  type SwapAreaContext,
  type SwapBackendContext,
} from './plugin.js';
