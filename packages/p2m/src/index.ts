export { ArrayP2m } from './array-p2m.js';
export { ArrayP2mTable, NO_RMAP_ENTRY } from './p2m-table.js';
export { ArrayReverseMap, RMAP_BYTES_PER_FRAME, RMAP_BYTES_PER_GFN, RMAP_ID_CHUNK_SHIFT } from './reverse-map.js';
