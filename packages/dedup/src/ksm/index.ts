export { KsmDedup, MIN_BATCH_NS } from './ksm-dedup.js';
export {
  ADVISOR_MODES,
  checkKnob,
  DEFAULT_KSM_OPTIONS,
  isKsmKnob,
  KSM_KNOBS,
  knobText,
  type AdvisorMode,
  type KsmKnob,
  type KsmKnobValues,
  type KsmOptions,
} from './ksm-options.js';
export { BYTES_PER_RMAP_ITEM, KSM_RMAP_ITEM_BYTES } from './rmap-items.js';
export { shouldSkipItem, skipAge } from './smart-scan.js';
