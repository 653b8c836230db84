import { mixSeed } from '@pagevisor/types';
import { fillImagePage, PAGE_WORDS } from '../page-content.js';

/** Word 0 of every non-zero fingerprint page ("FPPG"), so none is all zeros. */
export const FINGERPRINT_PAGE_MARK = 0x47505046;
const FINGERPRINT_TAG = 0xf19e;

/**
 * Fills `dst` (at least {@link PAGE_WORDS} words) with the page of 64-bit fingerprint (`lo`,
 * `hi`), two unsigned 32-bit words, so that a trace holding only page hashes replays with real
 * contents: equal fingerprints give equal pages; different ones give different pages (words 1
 * and 2 are `lo` and `hi` themselves, word 0 {@link FINGERPRINT_PAGE_MARK}); fingerprint 0
 * gives the zero page. The other words are random-looking, seeded by the fingerprint (a seeded
 * window of a fixed pool, as image pages are made). Allocates nothing.
 */
export function fillFingerprintPage(dst: Uint32Array, lo: number, hi: number): void {
  if (lo === 0 && hi === 0) {
    dst.fill(0, 0, PAGE_WORDS);
    return;
  }
  fillImagePage(dst, mixSeed(hi, FINGERPRINT_TAG), lo >>> 0);
  // Stamped last: these words alone make the map from fingerprints to pages one-to-one.
  dst[0] = FINGERPRINT_PAGE_MARK;
  dst[1] = lo;
  dst[2] = hi;
}
