import { HypervisorError, PAGE_SIZE, Prng } from '@pagevisor/types';

/** A page of seeded random bytes. */
export function page(seed: number): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  new Prng(seed).fillBytes(p);
  return p;
}

/** The errno name `fn` is refused with, or `"none"` when it succeeds. */
export function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof HypervisorError) return e.errnoName;
    throw e;
  }
  return 'none';
}
