export { EsxDedup } from './esx-dedup.js';
export { DEFAULT_ESX_OPTIONS, ESX_KNOBS, type EsxDedupOptions, type EsxKnob } from './esx-options.js';
