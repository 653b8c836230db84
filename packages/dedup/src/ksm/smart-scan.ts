/** Largest age an rmap item records (the kernel's u8 rmap_age_t saturates there). */
export const MAX_RMAP_AGE = 255;

/**
 * Full scans a page that never merged may skip once it reaches `age` (the kernel's `skip_age`):
 * 1 up to age 3, 2 up to 5, 4 up to 8, then 8.
 */
export function skipAge(age: number): number {
  if (age <= 3) return 1;
  if (age <= 5) return 2;
  if (age <= 8) return 4;
  return 8;
}

/**
 * smart_scan's decision for item `i` at a full scan (the kernel's `should_skip_rmap_item`, for a
 * page that is not a KSM page): ages the item, and says whether to skip it this time. Items
 * younger than 3 scans are never skipped; then each skip run of `skipAge(age)` scans is followed
 * by one scan. `age` and `remainingSkips` are the items' per-item bytes.
 */
export function shouldSkipItem(age: Uint8Array, remainingSkips: Uint8Array, i: number): boolean {
  const a = age[i]!;
  if (a !== MAX_RMAP_AGE) age[i] = a + 1;
  if (a < 3) return false;
  const left = remainingSkips[i]!;
  if (left === 0) {
    remainingSkips[i] = skipAge(a);
    return false;
  }
  remainingSkips[i] = left - 1;
  return true;
}
