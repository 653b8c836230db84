import { HypervisorError, PAGE_SIZE, type DomId, type Gfn, type GuestMemoryAccess } from '@pagevisor/types';
import type { GuestHypercalls } from '../src/index.js';

/** FNV-1a of bytes, to log written content compactly. */
export function hashBytes(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return (h >>> 0).toString(16);
}

/**
 * A Map-based stand-in for the hypervisor: every populated page is a fresh zeroed array,
 * every operation is logged, and at most `capacity` pages may be populated. Released pages are
 * forgotten; madvise is only logged.
 */
export class FakeHost implements GuestMemoryAccess, GuestHypercalls {
  readonly pages = new Map<string, Uint8Array>();
  readonly log: string[] = [];
  populateCalls = 0;

  constructor(
    private readonly capacity = Infinity,
    private readonly onFull: 'partial' | 'throw' = 'throw',
  ) {}

  page(dom: number, gfn: number): Uint8Array | undefined {
    return this.pages.get(`${dom}:${gfn}`);
  }

  populatePhysmap(domid: DomId, gfns: readonly number[]): number {
    this.populateCalls++;
    this.log.push(`populate ${domid} ${gfns[0]}+${gfns.length}`);
    let done = 0;
    for (const g of gfns) {
      if (this.pages.size >= this.capacity) {
        if (this.onFull === 'throw') throw new HypervisorError('ENOMEM', 'populate_physmap', 'fake host is full');
        return done;
      }
      this.pages.set(`${domid}:${g}`, new Uint8Array(PAGE_SIZE));
      done++;
    }
    return done;
  }

  decreaseReservation(domid: DomId, gfns: readonly number[]): number {
    this.log.push(`decrease ${domid} ${gfns[0]}+${gfns.length}`);
    let done = 0;
    for (const g of gfns) {
      if (!this.pages.delete(`${domid}:${g}`)) break;
      done++;
    }
    return done;
  }

  currentReservation(domid: DomId): number {
    let n = 0;
    for (const key of this.pages.keys()) if (key.startsWith(`${domid}:`)) n++;
    return n;
  }

  /** No max_pages of its own: `capacity` bounds every domain together. */
  maximumReservation(): number {
    return Number.MAX_SAFE_INTEGER;
  }

  madvise(domid: DomId, gfn: Gfn, count: number, advice: number): void {
    this.log.push(`madvise ${domid} ${gfn}+${count} ${advice}`);
  }

  readPage(dom: DomId, gfn: Gfn, offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    const p = this.mustGet(dom, gfn, 'read');
    dst.set(p.subarray(offset, offset + length), dstOffset);
  }

  writePage(dom: DomId, gfn: Gfn, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    const p = this.mustGet(dom, gfn, 'write');
    p.set(src.subarray(srcOffset, srcOffset + length), offset);
    this.log.push(`write ${dom} ${gfn} ${offset} ${length} ${hashBytes(src, srcOffset, srcOffset + length)}`);
  }

  private mustGet(dom: number, gfn: number, op: string): Uint8Array {
    const p = this.pages.get(`${dom}:${gfn}`);
    if (p === undefined) throw new HypervisorError('EINVAL', op, `gfn ${gfn} of d${dom} is not populated`);
    return p;
  }
}
