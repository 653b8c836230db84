import { Buffer } from 'node:buffer';
import { PAGE_SIZE } from '@pagevisor/types';
import { pageBuffer, PageHasher } from './page-hash.js';

// Page contents as 64-bit fingerprints (issue 19): the functions of FingerprintMemory, for it and
// for whoever must predict what it holds (a verifier, a reference model, a swap area that stores
// fingerprints). A fingerprint is two unsigned 32-bit halves, `lo` and `hi`; it is ordered as the
// 64-bit number hi * 2^32 + lo. Words are read little-endian (Int32Array on a little-endian host,
// as everywhere in this package).

const PAGE_WORDS = PAGE_SIZE >>> 2;
const P1 = 0x9e3779b1 | 0;
const P2 = 0x85ebca77 | 0;
const P3 = 0xc2b2ae3d | 0;
const P4 = 0x27d4eb2f | 0;
const P5 = 0x165667b1 | 0;

/** murmur3's 32-bit finaliser: a bijection of int32 with full avalanche. */
function fmix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return x ^ (x >>> 16);
}

/** The page hash, XXH64 (seed 0) in WebAssembly: a page's fingerprint is normally its XXH64. */
const hasher = new PageHasher();
/** Low half of the zero page's fingerprint Z (the XXH64 of PAGE_SIZE zero bytes). */
export const ZERO_FINGERPRINT_LOW: number = hasher.hash64(new Uint8Array(PAGE_SIZE));
/** High half of the zero page's fingerprint Z. */
export const ZERO_FINGERPRINT_HIGH: number = hasher.high;
const Z_LO = ZERO_FINGERPRINT_LOW | 0;
const Z_HI = ZERO_FINGERPRINT_HIGH | 0;

/**
 * Words `[first, last]` of the page generated from encoded fingerprint `(el, eh)` (fingerprint
 * xor Z) into `words` at the same indices: the encoded form in words 0 and 1, zeros after (all
 * zeros for Z). A whole page is two stores and a fill.
 */
function generateWords(el: number, eh: number, first: number, last: number, words: Int32Array): void {
  words.fill(0, first, last + 1);
  if (first === 0) words[0] = el;
  if (first <= 1 && last >= 1) words[1] = eh;
}

/**
 * The functions of {@link Fingerprinter} on fingerprints in their encoded form (fingerprint xor Z,
 * int32 halves: what FingerprintMemory stores, and the first 8 bytes of a generated page), ranges
 * unchecked. Results in {@link el} and {@link eh}. Not exported from the package.
 */
export class FingerprintEngine {
  /** Encoded low half of the last result. */
  el = 0;
  /** Encoded high half of the last result. */
  eh = 0;
  /** ofPage's copy of its last page (word-aligned, hashed in place), and that page's encoded fingerprint. */
  readonly #page8 = Buffer.from(pageBuffer(1).buffer, 0, PAGE_SIZE);
  readonly #page32 = new Int32Array(this.#page8.buffer, 0, PAGE_WORDS);
  #memoValid = false;
  #memoEl = 0;
  #memoEh = 0;
  /** Generated words, for reads and the no-change test of stores. */
  readonly #gen32 = new Int32Array(PAGE_WORDS);
  readonly #gen8 = Buffer.from(this.#gen32.buffer, 0, PAGE_SIZE);
  readonly #zeros = Buffer.alloc(PAGE_SIZE);

  /**
   * H of the PAGE_SIZE bytes of `page` from `offset`. The page is copied once; the same content
   * hashed again next (the inline path's hashPage, frameEquals and write of one page) is found by
   * a compare with that copy, not hashed again.
   */
  ofPage(page: Uint8Array, offset: number): void {
    const copy = this.#page8;
    if (this.#memoValid && copy.compare(page, offset, offset + PAGE_SIZE) === 0) {
      this.el = this.#memoEl;
      this.eh = this.#memoEh;
      return;
    }
    Buffer.prototype.copy.call(page, copy, 0, offset, offset + PAGE_SIZE);
    const w = this.#page32;
    let el = w[0]!;
    let eh = w[1]!;
    // A generated page (its first 8 bytes an encoded fingerprint, not both zero, the rest zeros)
    // is that fingerprint; any other page is hashed.
    if (!((el | eh) !== 0 && copy.compare(this.#zeros, 8, PAGE_SIZE, 8, PAGE_SIZE) === 0)) {
      el = hasher.hash64(copy) ^ Z_LO;
      eh = hasher.high ^ Z_HI;
    }
    this.#memoValid = true;
    this.el = this.#memoEl = el;
    this.eh = this.#memoEh = eh;
  }

  /** Bytes `[offset, offset + length)` of the page generated from (el, eh) into `dst` at `dstOffset`. */
  bytes(el: number, eh: number, offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    if (length === 0) return;
    if ((el | eh) === 0) {
      dst.fill(0, dstOffset, dstOffset + length);
      return;
    }
    generateWords(el, eh, offset >>> 2, (offset + length - 1) >>> 2, this.#gen32);
    this.#gen8.copy(dst, dstOffset, offset, offset + length);
  }

  /** afterWrite of a store of less than a page into a frame of (el, eh). */
  afterPartialWrite(el: number, eh: number, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    if (length === 0 || this.#unchanged(el, eh, src, srcOffset, length)) {
      this.el = el;
      this.eh = eh;
      return;
    }
    this.#fold(el, eh, offset, src, srcOffset, length);
  }

  /**
   * Whether the store leaves the page as it was: zeros into the zero page. Into any other page a
   * store is taken to change it (its bytes are not kept, so a store of zeros over bytes that were
   * not zeros, common in a guest, must not be lost); a store of the very bytes a page held is so
   * taken too, and makes it another content.
   */
  #unchanged(el: number, eh: number, src: Uint8Array, srcOffset: number, length: number): boolean {
    return (el | eh) === 0 && this.#zeros.compare(src, srcOffset, srcOffset + length, 0, length) === 0;
  }

  /**
   * fold: the store's bytes, offset and length into (el, eh), the result in el/eh. Two
   * XXH32-style lanes, each seeded by one half and, for given bytes, a bijection of it; then a
   * three-round Feistel mix of the two (a bijection): for a given store, a permutation of the
   * 2^64 fingerprints. O(length).
   */
  #fold(el: number, eh: number, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    // offset < 2^12 and length < 2^13: the key is distinct for every (offset, length).
    const key = (offset << 13) | length;
    let a = (el + Math.imul(key, P1)) | 0;
    let b = (eh ^ Math.imul(key, P3)) | 0;
    const end = srcOffset + length;
    let j = srcOffset;
    for (; j + 4 <= end; j += 4) {
      const w = src[j]! | (src[j + 1]! << 8) | (src[j + 2]! << 16) | (src[j + 3]! << 24);
      let x = (a + Math.imul(w, P2)) | 0;
      a = Math.imul((x << 13) | (x >>> 19), P1);
      x = (b + Math.imul(w, P4)) | 0;
      b = Math.imul((x << 17) | (x >>> 15), P5);
    }
    if (j < end) {
      // The last 1..3 bytes; the length, in the key, tells them from their zero padding.
      let w = 0;
      for (let k = 0; j < end; j++, k += 8) w |= src[j]! << k;
      let x = (a + Math.imul(w, P2)) | 0;
      a = Math.imul((x << 13) | (x >>> 19), P1);
      x = (b + Math.imul(w, P4)) | 0;
      b = Math.imul((x << 17) | (x >>> 15), P5);
    }
    a ^= fmix32(b ^ P3);
    b ^= fmix32(a ^ P4);
    a ^= fmix32(b ^ P5);
    this.el = a;
    this.eh = b;
  }
}

/**
 * Sets words 0 and 1 of `dst`, a page whose words 2.. are zeros, so that it is bytes(lo, hi): the
 * page a frame of fingerprint (lo, hi) reads as, whose H is (lo, hi) again. O(1): a replay of a
 * trace of fingerprints writes its pages without generating them.
 */
export function setGeneratedPage(dst: Uint32Array | Int32Array, lo: number, hi: number): void {
  dst[0] = lo ^ Z_LO;
  dst[1] = hi ^ Z_HI;
}

/**
 * The content functions of fingerprint mode. ofPage and afterWrite leave their result in
 * {@link lo} and {@link hi} (unsigned 32-bit halves); none allocates. Three functions, and one identity that ties
 * them together:
 *
 * - `H(page)` ({@link ofPage}): the fingerprint of PAGE_SIZE bytes. Normally the page's XXH64
 *   (seed 0; the low half is the page hash of bytes mode, so an index orders pages alike in both
 *   modes), so H of the zero page is Z = ({@link ZERO_FINGERPRINT_LOW}, {@link ZERO_FINGERPRINT_HIGH});
 *   but a page that is `bytes(F)` for some F gives F (below).
 * - `bytes(F)` ({@link bytes}): the page a frame of fingerprint F reads as. bytes(Z) is PAGE_SIZE
 *   zeros; for any other F, bytes 0..7 are F xor Z (low half first, little-endian) and the rest
 *   zeros (so a read costs a fill, and H tells a generated page by a compare).
 * - `afterWrite(F, offset, bytes)` ({@link afterWrite}): the fingerprint after a store of
 *   `length` bytes at `offset` into a frame of fingerprint F. A store of the whole page (offset
 *   0, PAGE_SIZE bytes) gives H(bytes written), whatever F was. A store of no bytes, or of zeros into
 *   the zero page, leaves F. Any other store folds the bytes, the offset and the length into F in
 *   O(length): fold(F, offset, bytes), for a given store a permutation of the 2^64 fingerprints,
 *   so two different frames given the same store never become equal by it.
 *
 * The identity: H(bytes(F)) = F for every F (bytes(F) starts with F's encoding, and H takes any
 * page whose bytes 8.. are zeros and 0..7 not to be generated: for those pages H is their first
 * 8 bytes xor Z instead of their XXH64, another one-to-one map, so equal pages still get equal
 * fingerprints and different ones different, but for the 2^-64 chance of meeting a hashed one). A page read out of a frame and written back whole
 * (swap out and in, a migration, a copy through a buffer) is the same content again, and the
 * fingerprint of what a guest reads back is the frame's fingerprint.
 *
 * False merges: two different contents (pages, or write histories) are taken for one when their
 * fingerprints collide. With H and fold behaving as random functions (XXH64 is no cryptographic
 * hash: contents crafted to collide would collide), some two of n distinct contents held at once
 * collide with probability about n^2 / 2^65: 2^-25 for 2^20 of them (4 GiB of distinct pages),
 * 2^-11 for 2^27 (512 GiB), 2^-5 for 2^30 (a 4 TiB host of distinct pages); and each store makes
 * a new content that collides with one of n held with probability n / 2^64.
 */
export class Fingerprinter {
  readonly #engine = new FingerprintEngine();

  /** Low half (unsigned) of the last result. */
  get lo(): number {
    return (this.#engine.el ^ Z_LO) >>> 0;
  }

  /** High half (unsigned) of the last result. */
  get hi(): number {
    return (this.#engine.eh ^ Z_HI) >>> 0;
  }

  /**
   * H of the PAGE_SIZE bytes of `page` from `offset`. The same content hashed twice in a row is
   * found by a compare with the copy kept of the last page, not hashed again.
   */
  ofPage(page: Uint8Array, offset = 0): void {
    if (!(offset >>> 0 === offset && offset + PAGE_SIZE <= page.length)) {
      throw new RangeError(`fingerprint: a page at ${offset} does not fit a buffer of ${page.length} bytes`);
    }
    this.#engine.ofPage(page, offset);
  }

  /**
   * afterWrite: the fingerprint after storing `length` bytes of `src` from `srcOffset` at
   * `offset` of a frame of fingerprint (lo, hi), exactly as FingerprintMemory's `write`. Halves
   * are taken as unsigned or int32 numbers.
   */
  afterWrite(lo: number, hi: number, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    checkSpan(offset, length);
    if (!(srcOffset >>> 0 === srcOffset && srcOffset + length <= src.length)) {
      throw new RangeError(`write: src range ${srcOffset}+${length} outside a buffer of ${src.length} bytes`);
    }
    if (length === PAGE_SIZE) this.#engine.ofPage(src, srcOffset);
    else this.#engine.afterPartialWrite(lo ^ Z_LO, hi ^ Z_HI, offset, src, srcOffset, length);
  }

  /**
   * Bytes `[offset, offset + length)` of bytes(lo, hi), the page a frame of that fingerprint reads
   * as, into `dst` at `dstOffset`; O(length). It sets no result.
   */
  bytes(lo: number, hi: number, offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    checkSpan(offset, length);
    if (!(dstOffset >>> 0 === dstOffset && dstOffset + length <= dst.length)) {
      throw new RangeError(`read: dst range ${dstOffset}+${length} outside a buffer of ${dst.length} bytes`);
    }
    this.#engine.bytes(lo ^ Z_LO, hi ^ Z_HI, offset, dst, dstOffset, length);
  }
}

function checkSpan(offset: number, length: number): void {
  if (!(offset >>> 0 === offset && length >>> 0 === length && offset + length <= PAGE_SIZE)) {
    throw new RangeError(`byte range ${offset}+${length} outside a frame of ${PAGE_SIZE} bytes`);
  }
}
