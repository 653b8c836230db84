/** log2 of the page size. */
export const PAGE_SHIFT = 12;
/** Bytes in a page and in a machine frame. */
export const PAGE_SIZE = 1 << PAGE_SHIFT;
/** Largest extent order a memory op accepts (2^18 pages = 1 GiB, Xen's largest superpage). */
export const MAX_ORDER = 18;

/** Bytes to pages, rounding up. */
export function bytesToPages(bytes: number): number {
  return Math.ceil(bytes / PAGE_SIZE);
}

/** Mebibytes to pages. */
export function mibToPages(mib: number): number {
  return Math.round((mib * 1024 * 1024) / PAGE_SIZE);
}
