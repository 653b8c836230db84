export { ArrayP2m, DEFAULT_ARRAY_P2M_OPTIONS, type ArrayP2mOptions } from './array-p2m.js';
export { ArrayP2mTable, NO_RMAP_ENTRY } from './p2m-table.js';
export { ArrayReverseMap, RMAP_BYTES_PER_ENTRY, RMAP_BYTES_PER_FRAME } from './reverse-map.js';
