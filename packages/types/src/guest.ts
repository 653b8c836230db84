import type { DomId, Gfn } from './ids.js';

/**
 * How a guest touches its memory: loads and stores that the hardware would do, faulting into the
 * hypervisor where the p2m says so. Not hypercalls.
 */
export interface GuestMemoryAccess {
  /** Reads `length` bytes at `offset` of page `gfn` into `dst` at `dstOffset`. */
  readPage(dom: DomId, gfn: Gfn, offset: number, dst: Uint8Array, dstOffset: number, length: number): void;
  /** Writes `length` bytes of `src` from `srcOffset` into page `gfn` at `offset`. */
  writePage(dom: DomId, gfn: Gfn, offset: number, src: Uint8Array, srcOffset: number, length: number): void;
}

/** The hypercall gate: one binary request in, one binary response out. */
export interface HypercallPort {
  /** Issues the hypercall in `request` as domain `caller`; returns the encoded response. */
  hypercall(caller: DomId, request: Uint8Array): Uint8Array;
}
