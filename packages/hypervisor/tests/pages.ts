import { asGfn, PAGE_SIZE, Prng, type DomId } from '@pagevisor/types';
import type { Hypervisor } from '../src/hypervisor.js';

/** A page of seeded random bytes: equal seeds, equal pages. */
export function pageOf(seed: number): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  new Prng(seed).fillBytes(p);
  return p;
}

/** What `dom` reads at page `gfn`, whole. */
export function read(hv: Hypervisor, dom: DomId, gfn: number): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE);
  hv.readPage(dom, asGfn(gfn), 0, out, 0, PAGE_SIZE);
  return out;
}
