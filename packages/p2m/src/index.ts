export { ArrayP2m } from './array-p2m.js';
export { ArrayP2mTable, P2M_MAX_MFN } from './p2m-table.js';
export { ArrayReverseMap, RMAP_BYTES_PER_FRAME, RMAP_BYTES_PER_NODE, RMAP_ID_CHUNK_SHIFT, RMAP_IDS_PER_NODE } from './reverse-map.js';
