import { constants as bufferConstants } from 'node:buffer';
import { PAGE_SHIFT, PAGE_SIZE, type MachineMemory, type Mfn } from '@pagevisor/types';
import { checkBuffer, checkMfn, checkPage, checkSpan } from './range-checks.js';
import { hashedMemory, pageBuffer, PageHasher, type PageHash } from './page-hash.js';

/** Frames per chunk when none is given: 65536 frames = 256 MiB. */
export const DEFAULT_CHUNK_FRAMES = 65536;
/** Largest chunk accepted: 2^18 frames = 1 GiB, so byte offsets inside a chunk stay int32. */
export const MAX_CHUNK_FRAMES = 1 << 18;
/** Largest machine accepted: 2^31 - 1 frames, so every mfn fits an Int32Array entry. */
export const MAX_MACHINE_FRAMES = 0x7fffffff;

/** Options of a machine's RAM. */
export interface MachineMemoryOptions {
  /** Frames of RAM (positive integer, at most {@link MAX_MACHINE_FRAMES}). */
  frames: number;
  /**
   * Frames per chunk, a power of two up to {@link MAX_CHUNK_FRAMES}.
   * Default {@link DEFAULT_CHUNK_FRAMES} (256 MiB); the last chunk is smaller when needed.
   */
  chunkFrames?: number;
}

let zeroChecksum: number | undefined;

/** The checksum of a page of zeros (an untouched frame's), computed once for every machine. */
function zeroPageChecksum(): number {
  zeroChecksum ??= hashedMemory(PAGE_SIZE).checksum(0) >>> 0;
  return zeroChecksum;
}

/**
 * Machine RAM held in chunks, each a WebAssembly memory allocated on the first write into it: a
 * machine larger than 4 GiB costs nothing until used, and a frame of an untouched chunk reads as
 * zeros. Copy, compare and zero are native memcpy/memcmp/memset on a `Buffer` over the chunk;
 * the page hash (XXH64, low 32 bits) and checksum run in WebAssembly on the frame where it lies,
 * with no copy.
 * No operation allocates.
 *
 * Out-of-range frames, offsets or lengths are programming errors and throw `RangeError`.
 */
export class ChunkedMemory implements MachineMemory {
  /** What a frame holds: its bytes (FingerprintMemory's frames hold a fingerprint). */
  readonly contents = 'bytes' as const;
  /** Frames of RAM. */
  readonly frames: number;
  /** Frames per chunk (a power of two). */
  readonly chunkFrames: number;
  /** Number of chunks, allocated or not. */
  readonly chunkCount: number;

  readonly #shift: number;
  readonly #mask: number;
  readonly #chunks: (Buffer | undefined)[];
  /** The in-place page hash and checksum of each allocated chunk. */
  readonly #hashes: (PageHash | undefined)[];
  readonly #checksums: (PageHash | undefined)[];
  /** Hashes pages that are not frames (hashPage). */
  readonly #hasher = new PageHasher();
  /** Private zeros: callers may scribble on the exported ZERO_PAGE, never on this. */
  readonly #zeros: Buffer = Buffer.alloc(PAGE_SIZE);
  readonly #zeroHash: number;
  readonly #zeroChecksum: number;
  #allocatedChunks = 0;

  /** @param opts size of the machine and of its chunks. */
  constructor(opts: MachineMemoryOptions) {
    const { frames } = opts;
    const chunkFrames = opts.chunkFrames ?? DEFAULT_CHUNK_FRAMES;
    if (!Number.isInteger(frames) || frames < 1 || frames > MAX_MACHINE_FRAMES) {
      throw new RangeError(`machine frames must be an integer in 1..${MAX_MACHINE_FRAMES}, got ${frames}`);
    }
    if (
      !Number.isInteger(chunkFrames) ||
      chunkFrames < 1 ||
      chunkFrames > MAX_CHUNK_FRAMES ||
      (chunkFrames & (chunkFrames - 1)) !== 0 ||
      chunkFrames * PAGE_SIZE > bufferConstants.MAX_LENGTH
    ) {
      throw new RangeError(
        `chunkFrames must be a power of two in 1..${MAX_CHUNK_FRAMES} (and fit a Buffer), got ${chunkFrames}`,
      );
    }
    this.frames = frames;
    this.chunkFrames = chunkFrames;
    this.#shift = 31 - Math.clz32(chunkFrames);
    this.#mask = chunkFrames - 1;
    this.chunkCount = Math.ceil(frames / chunkFrames);
    this.#chunks = new Array<Buffer | undefined>(this.chunkCount).fill(undefined);
    this.#hashes = new Array<PageHash | undefined>(this.chunkCount).fill(undefined);
    this.#checksums = new Array<PageHash | undefined>(this.chunkCount).fill(undefined);
    this.#zeroHash = this.#hasher.hash(this.#zeros);
    this.#zeroChecksum = zeroPageChecksum();
  }

  /** Chunks allocated so far (touched by a write). */
  get allocatedChunks(): number {
    return this.#allocatedChunks;
  }

  /** Bytes of RAM allocated so far (the sum of the allocated chunks' sizes). */
  get allocatedBytes(): number {
    let bytes = 0;
    for (const chunk of this.#chunks) if (chunk !== undefined) bytes += chunk.byteLength;
    return bytes;
  }

  read(mfn: Mfn, offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    checkSpan(mfn, this.frames, offset, length);
    checkBuffer('read', 'dst', dst, dstOffset, length);
    const chunk = this.#chunks[mfn >>> this.#shift];
    if (chunk === undefined) {
      dst.fill(0, dstOffset, dstOffset + length);
      return;
    }
    const start = ((mfn & this.#mask) << PAGE_SHIFT) + offset;
    chunk.copy(dst, dstOffset, start, start + length);
  }

  write(mfn: Mfn, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    checkSpan(mfn, this.frames, offset, length);
    checkBuffer('write', 'src', src, srcOffset, length);
    const chunk = this.#chunkForWrite(mfn);
    const at = ((mfn & this.#mask) << PAGE_SHIFT) + offset;
    // set() is a plain memmove of a whole source; Buffer's copy takes a range of it without a
    // subarray view, at about 15% more a page.
    if (srcOffset === 0 && length === src.length) chunk.set(src, at);
    else Buffer.prototype.copy.call(src, chunk, at, srcOffset, srcOffset + length);
  }

  copyFrame(dst: Mfn, src: Mfn): void {
    checkMfn(dst, this.frames);
    checkMfn(src, this.frames);
    const srcChunk = this.#chunks[src >>> this.#shift];
    if (srcChunk === undefined) {
      this.zeroFrame(dst);
      return;
    }
    const from = (src & this.#mask) << PAGE_SHIFT;
    srcChunk.copy(this.#chunkForWrite(dst), (dst & this.#mask) << PAGE_SHIFT, from, from + PAGE_SIZE);
  }

  zeroFrame(mfn: Mfn): void {
    checkMfn(mfn, this.frames);
    const chunk = this.#chunks[mfn >>> this.#shift];
    // An untouched chunk is zeros already: do not allocate it just to write zeros.
    if (chunk === undefined) return;
    const start = (mfn & this.#mask) << PAGE_SHIFT;
    chunk.fill(0, start, start + PAGE_SIZE);
  }

  isZeroFrame(mfn: Mfn): boolean {
    checkMfn(mfn, this.frames);
    const chunk = this.#chunks[mfn >>> this.#shift];
    if (chunk === undefined) return true;
    const start = (mfn & this.#mask) << PAGE_SHIFT;
    return chunk.compare(this.#zeros, 0, PAGE_SIZE, start, start + PAGE_SIZE) === 0;
  }

  framesEqual(a: Mfn, b: Mfn): boolean {
    return a === b || this.compareFrames(a, b) === 0;
  }

  compareFrames(a: Mfn, b: Mfn): number {
    checkMfn(a, this.frames);
    checkMfn(b, this.frames);
    if (a === b) return 0;
    // An untouched chunk reads as zeros: compare against the zero page instead.
    const chunkA = this.#chunks[a >>> this.#shift] ?? this.#zeros;
    const chunkB = this.#chunks[b >>> this.#shift] ?? this.#zeros;
    const startA = chunkA === this.#zeros ? 0 : (a & this.#mask) << PAGE_SHIFT;
    const startB = chunkB === this.#zeros ? 0 : (b & this.#mask) << PAGE_SHIFT;
    return chunkA.compare(chunkB, startB, startB + PAGE_SIZE, startA, startA + PAGE_SIZE);
  }

  frameEquals(mfn: Mfn, page: Uint8Array): boolean {
    checkMfn(mfn, this.frames);
    checkPage(page, 'frameEquals');
    const chunk = this.#chunks[mfn >>> this.#shift] ?? this.#zeros;
    const start = chunk === this.#zeros ? 0 : (mfn & this.#mask) << PAGE_SHIFT;
    return chunk.compare(page, 0, PAGE_SIZE, start, start + PAGE_SIZE) === 0;
  }

  hashFrame(mfn: Mfn): number {
    checkMfn(mfn, this.frames);
    const hash = this.#hashes[mfn >>> this.#shift];
    if (hash === undefined) return this.#zeroHash;
    return hash((mfn & this.#mask) << PAGE_SHIFT) >>> 0;
  }

  checksumFrame(mfn: Mfn): number {
    checkMfn(mfn, this.frames);
    const checksum = this.#checksums[mfn >>> this.#shift];
    if (checksum === undefined) return this.#zeroChecksum;
    return checksum((mfn & this.#mask) << PAGE_SHIFT) >>> 0;
  }

  /** A buffer of `pages` pages that hashPage hashes in place ({@link pageBuffer}). */
  pageBuffer(pages: number): Uint8Array {
    return pageBuffer(pages);
  }

  hashPage(page: Uint8Array): number {
    checkPage(page, 'hashPage');
    return this.#hasher.hash(page);
  }

  #chunkForWrite(mfn: number): Buffer {
    const index = mfn >>> this.#shift;
    const chunk = this.#chunks[index];
    if (chunk !== undefined) return chunk;
    const frames = Math.min(this.chunkFrames, this.frames - index * this.chunkFrames);
    // A fresh memory is zero-filled: the OS commits its pages only when written.
    const { buffer, hash, checksum } = hashedMemory(frames * PAGE_SIZE);
    const fresh = Buffer.from(buffer, 0, frames * PAGE_SIZE);
    this.#chunks[index] = fresh;
    this.#hashes[index] = hash;
    this.#checksums[index] = checksum;
    this.#allocatedChunks++;
    return fresh;
  }
}
