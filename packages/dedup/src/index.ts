export { DEFAULT_INLINE_DEDUP_OPTIONS, InlineDedup, type InlineDedupOptions } from './inline-dedup.js';
export { NoDedup } from './no-dedup.js';
export { createDedup, DEDUP_STRATEGIES, TRUST_GROUPS_OPTION, type DedupStrategy } from './create-dedup.js';
export { MAX_TRUST_GROUP, PartitionedDedup, type KnobFrames } from './partitioned-dedup.js';
export { DEFAULT_ESX_OPTIONS, ESX_KNOBS, EsxDedup, type EsxDedupOptions, type EsxKnob } from './esx/index.js';
export {
  ADVISOR_MODES,
  BYTES_PER_RMAP_ITEM,
  DEFAULT_KSM_OPTIONS,
  KSM_RMAP_ITEM_BYTES,
  isKsmKnob,
  KSM_KNOBS,
  KsmDedup,
  knobText,
  MIN_BATCH_NS,
  skipAge,
  type AdvisorMode,
  type KsmKnob,
  type KsmOptions,
} from './ksm/index.js';
export { HashMapDedup } from './examples/hash-map-dedup.js';
export { DEDUP_PLUGINS } from './plugins.js';
