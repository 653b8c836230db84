import { closeSync, openSync } from 'node:fs';
import { PAGE_SIZE } from '@pagevisor/types';
import { hex, ImageError } from './image-error.js';
import { readFully, sameStamp, stampOf, type FileStamp, type ImageFormat, type ImageRegion } from './image-file.js';

/** Options of an {@link ImageReader}. */
export interface ImageReaderOptions {
  /** Bytes read from the file at once, at least one page (default 131072: 32 pages). */
  readonly chunkBytes?: number;
}

/** Defaults of {@link ImageReaderOptions}. */
export const DEFAULT_IMAGE_READER_OPTIONS: Required<ImageReaderOptions> = Object.freeze({ chunkBytes: 128 * 1024 });

/** A validated image: where it is and where its regions go. */
export interface ImageSource {
  readonly path: string;
  readonly format: ImageFormat;
  /** The file as it was validated. */
  readonly stamp: FileStamp;
  /** Regions in increasing gfn order, disjoint. */
  readonly regions: readonly ImageRegion[];
}

/**
 * Reads the pages of a validated image by gfn, a chunk of the file at a time: it holds one
 * chunk in memory and no open file between reads (each chunk opens the file, checks that it is
 * still the file that was validated, reads and closes it), so a guest that stops half-way leaks
 * nothing. Fastest in increasing gfn order. Allocates nothing per page.
 */
export class ImageReader {
  private readonly source: ImageSource;
  private readonly first: Float64Array;
  private readonly pages: Float64Array;
  private readonly offset: Float64Array;
  private readonly bytes: Float64Array;
  private readonly chunk: Buffer;
  private chunkStart = 0;
  private chunkEnd = 0;
  /** Region of the last page read: the next one is usually in it or the one after. */
  private cursor = 0;

  constructor(source: ImageSource, options: ImageReaderOptions = {}) {
    const { chunkBytes } = { ...DEFAULT_IMAGE_READER_OPTIONS, ...options };
    if (!(Number.isInteger(chunkBytes) && chunkBytes >= PAGE_SIZE)) {
      throw new RangeError(`ImageReader: chunkBytes must be an integer >= ${PAGE_SIZE}, got ${chunkBytes}`);
    }
    this.source = source;
    const n = source.regions.length;
    this.first = new Float64Array(n);
    this.pages = new Float64Array(n);
    this.offset = new Float64Array(n);
    this.bytes = new Float64Array(n);
    source.regions.forEach((r, i) => {
      this.first[i] = r.firstGfn;
      this.pages[i] = r.pages;
      this.offset[i] = r.fileOffset;
      this.bytes[i] = r.fileBytes;
    });
    this.chunk = Buffer.alloc(chunkBytes);
  }

  /**
   * Copies the page at `gfn` into `dst[dstOffset .. dstOffset + 4096)` and returns true, or
   * returns false (leaving `dst` alone) when the page holds nothing from the file and reads
   * zeros: outside every region, or past a region's file bytes. A page the file fills only in
   * part is padded with zeros.
   * @throws ImageError if the file changed or vanished since it was validated.
   */
  readPage(gfn: number, dst: Uint8Array, dstOffset = 0): boolean {
    const r = this.regionOf(gfn);
    if (r < 0) return false;
    const inRegion = (gfn - this.first[r]!) * PAGE_SIZE;
    const avail = this.bytes[r]! - inRegion;
    if (avail <= 0) return false;
    const n = avail < PAGE_SIZE ? avail : PAGE_SIZE;
    const pos = this.offset[r]! + inRegion;
    if (pos < this.chunkStart || pos + n > this.chunkEnd) this.fill(pos, n);
    this.chunk.copy(dst, dstOffset, pos - this.chunkStart, pos - this.chunkStart + n);
    if (n < PAGE_SIZE) dst.fill(0, dstOffset + n, dstOffset + PAGE_SIZE);
    return true;
  }

  /** Index of the region holding `gfn`, or -1. */
  private regionOf(gfn: number): number {
    const first = this.first;
    const pages = this.pages;
    const c = this.cursor;
    if (c < first.length && gfn >= first[c]! && gfn < first[c]! + pages[c]!) return c;
    if (c + 1 < first.length && gfn >= first[c + 1]! && gfn < first[c + 1]! + pages[c + 1]!) return (this.cursor = c + 1);
    let lo = 0;
    let hi = first.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (first[mid]! > gfn) hi = mid - 1;
      else if (first[mid]! + pages[mid]! <= gfn) lo = mid + 1;
      else return (this.cursor = mid);
    }
    return -1;
  }

  /** Loads the chunk of the file from `pos`, which must hold at least `need` bytes. */
  private fill(pos: number, need: number): void {
    const { path, format, stamp } = this.source;
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new ImageError(path, format, pos, `the file cannot be opened again (${(e as Error).message})`, 'the file as it was validated');
    }
    try {
      const now = stampOf(fd);
      if (!sameStamp(now, stamp)) {
        throw new ImageError(
          path,
          format,
          pos,
          `the file changed after it was validated (${now.size} bytes, modified at ${now.mtimeMs} ms)`,
          `the file as it was validated (${stamp.size} bytes, modified at ${stamp.mtimeMs} ms)`,
        );
      }
      const len = Math.min(this.chunk.length, stamp.size - pos);
      const got = readFully(fd, this.chunk, 0, len, pos);
      if (got < need) throw new ImageError(path, format, pos + got, `the file ended after ${got} of ${need} bytes`, `data up to ${hex(pos + need)}`);
      this.chunkStart = pos;
      this.chunkEnd = pos + got;
    } finally {
      closeSync(fd);
    }
  }
}
