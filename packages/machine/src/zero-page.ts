import { PAGE_SIZE } from '@pagevisor/types';

/**
 * A page of PAGE_SIZE zero bytes. Frozen by convention: never write into it (typed arrays
 * cannot be frozen). {@link ChunkedMemory} compares against a private copy, so a stray write
 * here cannot make it report wrong results.
 */
export const ZERO_PAGE: Uint8Array = new Uint8Array(PAGE_SIZE);
