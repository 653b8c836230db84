import { PAGE_SIZE } from '@pagevisor/types';

// The argument checks both machine memories make: out-of-range frames, offsets, lengths and
// buffers are programming errors, thrown as RangeError.

/** Throws unless `mfn` is a frame of a machine of `frames` frames. */
export function checkMfn(mfn: number, frames: number): void {
  // `>>> 0` rejects negatives, fractions and NaN in one compare; frames < 2^31.
  if (!(mfn >>> 0 === mfn && mfn < frames)) {
    throw new RangeError(`mfn ${mfn} outside machine RAM of ${frames} frames`);
  }
}

/** Throws unless `mfn` is a frame and `[offset, offset + length)` lies within a page. */
export function checkSpan(mfn: number, frames: number, offset: number, length: number): void {
  checkMfn(mfn, frames);
  if (!(offset >>> 0 === offset && length >>> 0 === length && offset + length <= PAGE_SIZE)) {
    throw new RangeError(`byte range ${offset}+${length} outside a frame of ${PAGE_SIZE} bytes`);
  }
}

/** Throws unless `buf` has `length` bytes from `at` (`op`'s `what` buffer, e.g. read's dst). */
export function checkBuffer(op: string, what: string, buf: Uint8Array, at: number, length: number): void {
  if (!(at >>> 0 === at && at + length <= buf.length)) {
    throw new RangeError(`${op}: ${what} range ${at}+${length} outside a buffer of ${buf.length} bytes`);
  }
}

/** Throws unless `page` holds exactly one page. */
export function checkPage(page: Uint8Array, op: string): void {
  if (page.length !== PAGE_SIZE) {
    throw new RangeError(`${op}: page must hold exactly ${PAGE_SIZE} bytes, got ${page.length}`);
  }
}
