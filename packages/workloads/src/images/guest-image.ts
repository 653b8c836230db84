import { PAGE_SIZE } from '@pagevisor/types';
import { parseElfImage } from './elf-image.js';
import { IMAGE_FORMATS, ImageFile, pagesOf, type FileStamp, type ImageFormat, type ImageLayout, type ImageRegion, type SkippedRange } from './image-file.js';
import { ImageReader, type ImageReaderOptions } from './image-reader.js';
import { parseProcImage } from './proc-image.js';
import { parseRawImage } from './raw-image.js';

/**
 * A validated guest memory image: which gfns its pages fill, and a way to stream them.
 * Gfns in `[0, pages)` outside every region (and past a region's file bytes) read zeros.
 */
export interface GuestImage {
  /** The image file. */
  readonly path: string;
  /** Its format. */
  readonly format: ImageFormat;
  /** Its size in bytes. */
  readonly fileBytes: number;
  /** Gfn span: one past the highest gfn the image fills; a guest booting it needs at least this many pages. */
  readonly pages: number;
  /** Pages that take bytes from the file: the pages {@link forEachPage} hands out. */
  readonly dataPages: number;
  /** Where the pages go, in increasing gfn order. */
  readonly regions: readonly ImageRegion[];
  /** Ranges a proc capture left out, and why (empty for raw and elf). */
  readonly skipped: readonly SkippedRange[];
  /**
   * Calls `fn(gfn, page)` for each page that takes bytes from the file, in increasing gfn
   * order. `page` (4096 bytes) is reused: copy it to keep it. Holds 1 MiB of the file at a time.
   * @throws ImageError if the file changed since it was validated.
   */
  forEachPage(fn: (gfn: number, page: Uint8Array) => void): void;
  /** A reader of pages by gfn (see {@link ImageReader}). */
  reader(options?: ImageReaderOptions): ImageReader;
}

const PARSERS: Readonly<Record<ImageFormat, (file: ImageFile) => ImageLayout>> = {
  raw: parseRawImage,
  elf: parseElfImage,
  proc: parseProcImage,
};

class FileGuestImage implements GuestImage {
  readonly fileBytes: number;
  readonly pages: number;
  readonly dataPages: number;
  readonly regions: readonly ImageRegion[];
  readonly skipped: readonly SkippedRange[];

  constructor(
    readonly path: string,
    readonly format: ImageFormat,
    readonly stamp: FileStamp,
    layout: ImageLayout,
  ) {
    this.fileBytes = stamp.size;
    this.pages = layout.pages;
    this.regions = Object.freeze(layout.regions.map((r) => Object.freeze({ ...r })));
    this.skipped = Object.freeze(layout.skipped.map((s) => Object.freeze({ ...s })));
    this.dataPages = layout.regions.reduce((n, r) => n + pagesOf(r.fileBytes), 0);
  }

  forEachPage(fn: (gfn: number, page: Uint8Array) => void): void {
    const reader = this.reader({ chunkBytes: 1024 * 1024 });
    const page = new Uint8Array(PAGE_SIZE);
    for (const r of this.regions) {
      const n = pagesOf(r.fileBytes);
      for (let p = 0; p < n; p++) {
        reader.readPage(r.firstGfn + p, page, 0);
        fn(r.firstGfn + p, page);
      }
    }
  }

  reader(options?: ImageReaderOptions): ImageReader {
    return new ImageReader(this, options);
  }
}

/**
 * Opens and validates the image file at `path` as `format`: the whole structure (headers,
 * tables, every segment's place in the file and in guest-physical memory, the file's size) is
 * checked before this returns, so a bad file hands out no page at all. Reads only headers and
 * tables; pages are read later, a chunk at a time. Holds no open file once it returns.
 * @throws ImageError naming the file offset of the problem and what was expected there.
 * @throws RangeError for an unknown format; the file system's error when the file cannot be opened.
 */
export function openGuestImage(path: string, format: ImageFormat): GuestImage {
  if (!(IMAGE_FORMATS as readonly string[]).includes(format)) {
    throw new RangeError(`unknown image format ${JSON.stringify(format)}; expected ${IMAGE_FORMATS.map((f) => `"${f}"`).join(', ')}`);
  }
  const file = new ImageFile(path, format);
  try {
    return new FileGuestImage(path, format, file.stamp, PARSERS[format](file));
  } finally {
    file.close();
  }
}
