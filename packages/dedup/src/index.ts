export { DEFAULT_INLINE_DEDUP_OPTIONS, InlineDedup, type InlineDedupOptions } from './inline-dedup.js';
export { NoDedup } from './no-dedup.js';
export { createDedup, DEDUP_STRATEGIES, type DedupStrategy } from './create-dedup.js';
