import type { Mfn } from './ids.js';

/**
 * Machine RAM: the contents of every frame. Offsets and lengths are in bytes within a frame;
 * none of the methods allocates per call, so they may sit on the hot path.
 */
export interface MachineMemory {
  /** Number of frames of RAM. */
  readonly frames: number;
  /**
   * What a frame holds (absent: `'bytes'`). `'fingerprints'`: a 64-bit fingerprint of its
   * content, not its bytes; a read returns bytes generated from the fingerprint, not the bytes
   * stored, and compare, hash and equality work on fingerprints (`FingerprintMemory` of
   * `@pagevisor/machine`).
   */
  readonly contents?: 'bytes' | 'fingerprints';
  /** Copies `length` bytes at `offset` of frame `mfn` into `dst` at `dstOffset`. */
  read(mfn: Mfn, offset: number, dst: Uint8Array, dstOffset: number, length: number): void;
  /** Copies `length` bytes of `src` from `srcOffset` into frame `mfn` at `offset`. */
  write(mfn: Mfn, offset: number, src: Uint8Array, srcOffset: number, length: number): void;
  /** Copies the whole frame `src` into frame `dst`. */
  copyFrame(dst: Mfn, src: Mfn): void;
  /** Fills frame `mfn` with zeros. */
  zeroFrame(mfn: Mfn): void;
  /** True when every byte of frame `mfn` is zero. */
  isZeroFrame(mfn: Mfn): boolean;
  /** True when frames `a` and `b` hold the same bytes (a full compare). */
  framesEqual(a: Mfn, b: Mfn): boolean;
  /** Orders frames by content like memcmp: negative, 0 or positive (for content-ordered trees). */
  compareFrames(a: Mfn, b: Mfn): number;
  /** True when frame `mfn` holds exactly the PAGE_SIZE bytes of `page` (a full compare). */
  frameEquals(mfn: Mfn, page: Uint8Array): boolean;
  /** 32-bit hash of frame `mfn` (the built-in machine: XXH64's low 32 bits). */
  hashFrame(mfn: Mfn): number;
  /**
   * A fast 32-bit checksum of frame `mfn` (not xxhash, and not equal to hashFrame): equal contents
   * give equal checksums, a change very likely another. For a scanner that tells whether a page
   * changed since its last visit (KSM's checksum), where hashFrame is the index's hash.
   */
  checksumFrame(mfn: Mfn): number;
  /** 32-bit hash of the PAGE_SIZE bytes of `page`; equal to hashFrame of a frame holding them. */
  hashPage(page: Uint8Array): number;
  /**
   * Optional: a zero-filled buffer of `pages` pages that hashPage reads in place, without the copy
   * it makes of other pages; for callers that build pages to write (a guest's scratch page).
   */
  pageBuffer?(pages: number): Uint8Array;
}
