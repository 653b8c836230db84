import { mixSeed, PAGE_SIZE, Prng } from '@pagevisor/types';

/** 32-bit words in a page. */
export const PAGE_WORDS = PAGE_SIZE / 4;

/**
 * Seed of an image id: a number is its own seed (as a 32-bit unsigned integer), a string is
 * hashed (FNV-1a over its UTF-16 code units). Equal ids give equal seeds.
 */
export function imageSeed(imageId: string | number): number {
  if (typeof imageId === 'number') return imageId >>> 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < imageId.length; i++) {
    h = Math.imul(h ^ imageId.charCodeAt(i), 0x01000193);
  }
  return h >>> 0;
}

const IMAGE_TAG = 0x1a6e;
const PRIVATE_TAG = 0x9e17;
const STEP_TAG = 0x5eed;

/** Distinct page-sized windows into the pool, 64 words apart. */
const POOL_WINDOWS = 1024;
const WINDOW_STEP_WORDS = 64;
let poolWindows: Uint32Array[] | undefined;

/** 260 KiB of fixed random words, cut into POOL_WINDOWS overlapping page-sized views, made once. */
function windows(): Uint32Array[] {
  if (poolWindows === undefined) {
    const pool = new Uint32Array(POOL_WINDOWS * WINDOW_STEP_WORDS + PAGE_WORDS);
    new Prng(0x70a6e).fillU32(pool);
    poolWindows = Array.from({ length: POOL_WINDOWS }, (_, i) =>
      pool.subarray(i * WINDOW_STEP_WORDS, i * WINDOW_STEP_WORDS + PAGE_WORDS),
    );
  }
  return poolWindows;
}

/**
 * Fills `dst[0 .. PAGE_WORDS)` with a random-looking page determined by (`s0`, `s1`, `tag`).
 * Generating every word (a PRNG step per word) dominated boot time, so the page is a copy of a
 * seeded window of a fixed random pool (a memcpy), with every 16th word XOR-ed with a seeded key
 * and words 1..3 with `s0`, `s1` and `tag`. Two pages of different (s0, s1, tag) therefore differ:
 * in the stamped words when they copy the same window, almost surely elsewhere otherwise. The
 * bytes are uniform and incompressible within the page; pages from nearby windows share shifted
 * runs, which whole-page de-duplication does not see.
 */
function fillSeeded(dst: Uint32Array, s0: number, s1: number, tag: number): void {
  const w = windows();
  dst.set(w[mixSeed(s0 ^ tag, s1) & (POOL_WINDOWS - 1)]!);
  const k = mixSeed(s1 ^ tag, s0);
  for (let i = 0; i < PAGE_WORDS; i += 16) dst[i]! ^= k + Math.imul(i, 0x9e3779b1);
  dst[1]! ^= s0;
  dst[2]! ^= s1;
  dst[3]! ^= tag;
}

/**
 * Fills `dst` (at least {@link PAGE_WORDS} words) with page `pageIndex` of OS image `imageId`.
 * The content depends on nothing else, so every guest booting the same image holds the same
 * bytes at the same image page; different ids or indices give different pages. Pass the
 * precomputed {@link imageSeed} as a number on hot paths to skip hashing the string.
 * Allocates nothing.
 */
export function fillImagePage(dst: Uint32Array, imageId: string | number, pageIndex: number): void {
  fillSeeded(dst, imageSeed(imageId), pageIndex >>> 0, IMAGE_TAG);
}

/**
 * Fills `dst` (at least {@link PAGE_WORDS} words) with a private page, seeded from the next
 * two words of the guest's own `prng`: equal seeds give equal pages, and no two guests (or two calls)
 * give the same page in practice. Allocates nothing.
 */
export function fillPrivatePage(dst: Uint32Array, prng: Prng): void {
  fillSeeded(dst, prng.nextU32(), prng.nextU32(), PRIVATE_TAG);
}

/**
 * Fills `dst` (at least {@link PAGE_WORDS} words) with the private page of seeds (`s0`, `s1`):
 * `fillPrivatePage(dst, prng)` is this with the next two words of `prng`, in that order. A guest
 * that records the two words can regenerate the page later. Allocates nothing.
 */
export function fillPrivatePageFromSeeds(dst: Uint32Array, s0: number, s1: number): void {
  fillSeeded(dst, s0 >>> 0, s1 >>> 0, PRIVATE_TAG);
}

/**
 * Fills `dst` (at least {@link PAGE_WORDS} words) with page `index` of the seeded content
 * `seed`, as a scenario's `fill` step writes it: equal (seed, index) give equal pages, different
 * ones different pages, and none equals an image or private page. Allocates nothing.
 */
export function fillSeededPage(dst: Uint32Array, seed: number, index: number): void {
  fillSeeded(dst, seed >>> 0, index >>> 0, STEP_TAG);
}
