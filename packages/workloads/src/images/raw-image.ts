import { PAGE_SIZE } from '@pagevisor/types';
import { hex } from './image-error.js';
import { MAX_IMAGE_PAGES, type ImageFile, type ImageLayout } from './image-file.js';

/**
 * Validates a raw physical memory dump (QEMU `pmemsave 0 SIZE FILE`): page i of the file is
 * gfn i. Its size must be a whole, non-zero number of pages, at most {@link MAX_IMAGE_PAGES}.
 * @throws ImageError naming the offset of the partial last page, or of the first page too many.
 */
export function parseRawImage(file: ImageFile): ImageLayout {
  const size = file.size;
  if (size === 0) file.fail(0, 'the file is empty', `at least one page of ${PAGE_SIZE} bytes`);
  const partial = size % PAGE_SIZE;
  if (partial !== 0) {
    file.fail(
      size - partial,
      `the file's ${size} bytes (${hex(size)}) end in a partial page of ${partial} bytes`,
      `a size that is a multiple of ${PAGE_SIZE} (whole pages)`,
    );
  }
  const pages = size / PAGE_SIZE;
  if (pages > MAX_IMAGE_PAGES) {
    file.fail(MAX_IMAGE_PAGES * PAGE_SIZE, `the file holds ${pages} pages`, `at most ${MAX_IMAGE_PAGES} pages (the most gfns a guest may have)`);
  }
  return { pages, regions: [{ index: 0, firstGfn: 0, pages, address: '0x0', fileOffset: 0, fileBytes: size }], skipped: [] };
}
