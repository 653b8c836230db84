import {
  asGfn,
  DOMID_CONTROL,
  HypervisorError,
  InvariantError,
  isRealDomId,
  type DomId,
  type ErrnoName,
  type Gfn,
  type HypercallPort,
} from '@pagevisor/types';
import { HypercallClient } from './client.js';
import { Madvise, MAX_EXTENTS, XENMEMF_populate_on_demand } from './op-numbers.js';

/** The hypercalls a {@link GuestShim} issues as its guest. */
export type GuestShimHypercalls = Pick<HypercallClient, 'populatePhysmap' | 'decreaseReservation' | 'madvise' | 'currentReservation' | 'maximumReservation'>;

/** Advice {@link GuestShim.madvise} accepts: Linux's MADV_DONTNEED, MADV_MERGEABLE, MADV_UNMERGEABLE. */
export type MadviseAdvice = 'dontneed' | 'mergeable' | 'unmergeable';

/** One mapped range of a guest's frames, as {@link GuestShim.regions} lists them. */
export interface GuestRegion {
  /** First gfn. */
  readonly start: Gfn;
  /** Pages, at least 1. */
  readonly pages: number;
  /** `'mmap'` for pages {@link GuestShim.mmap} mapped, `'heap'` for the program break's. */
  readonly kind: 'mmap' | 'heap';
}

/** How a {@link GuestShim} sees its guest. */
export interface GuestShimOptions {
  /**
   * Guest frames the shim manages, gfns `[0, gfnCount)`: the guest's memory size as its firmware
   * tells it (the domain's gfn count). Required.
   */
  readonly gfnCount: number;
  /** First gfn of the heap that {@link GuestShim.brk} grows (default 0). */
  readonly heapStart?: number;
  /**
   * Gfns per on-demand populate_physmap and per decrease_reservation hypercall (default 512);
   * a MAP_POPULATE mmap takes one populate_physmap of up to MAX_EXTENTS gfns.
   */
  readonly batchPages?: number;
  /** The domain's trust group, given to the child of {@link GuestShim.fork} (default 0). */
  readonly trustGroup?: number;
  /**
   * The toolstack's hypercall gate (default none: {@link GuestShim.fork} is refused with EPERM).
   * Fork issues domctl_createdomain and sharing_fork through it as the control domain, and the
   * child's shim issues its own hypercalls through it as the child.
   */
  readonly control?: HypercallPort;
}

/** Options of {@link GuestShim.mmap}. */
export interface MmapOptions {
  /** MAP_POPULATE: back the pages now (default false: populate on demand, the first access backs a page). */
  readonly populate?: boolean;
  /** MADV_MERGEABLE on the new pages (default false). */
  readonly mergeable?: boolean;
  /** MAP_FIXED_NOREPLACE: map at exactly this gfn, EEXIST when a region is there (default: the first range that fits). */
  readonly fixed?: Gfn;
}

/** Options of {@link GuestShim.fork}. */
export interface ForkOptions {
  /** The child's max_pages (default the parent's, asked with maximum_reservation). */
  readonly maxPages?: number;
  /**
   * An empty domain the toolstack has already made for the child (one that names it, say):
   * the fork fills it, and a refused fork leaves it to the caller. Default: the fork creates one.
   */
  readonly child?: DomId;
}

/** Defaults of the optional {@link GuestShimOptions}. */
export const DEFAULT_GUEST_SHIM_OPTIONS = Object.freeze({ heapStart: 0, batchPages: 512, trustGroup: 0 });

const ADVICE: Readonly<Record<MadviseAdvice, number>> = Object.freeze({
  dontneed: Madvise.dontneed,
  mergeable: Madvise.mergeable,
  unmergeable: Madvise.unmergeable,
});

/** A mapped range `[start, end)` of gfns. */
interface Span {
  start: number;
  end: number;
}

/**
 * The guest kernel's side of memory management: maps a guest OS's memory system calls onto
 * hypercalls, keeping the guest's list of mapped regions (its VMAs) as Linux does.
 *
 * - {@link mmap}: finds a free gfn range (first fit, or MAP_FIXED_NOREPLACE), populates it with
 *   populate_physmap (on demand in batches; MAP_POPULATE in one hypercall), advises it mergeable if asked.
 * - {@link munmap}: releases mapped pages with decrease_reservation.
 * - {@link brk}: grows (on demand) or shrinks the heap from `heapStart`.
 * - {@link madvise}: passes DONTNEED / MERGEABLE / UNMERGEABLE to the hypervisor.
 * - {@link fork}: through the toolstack, a new domain that is a copy-on-write copy of this one.
 *
 * Every page of a region is populated (backed, or populate-on-demand) and every populated page
 * the shim knows of is in a region, as long as the guest's reservation changes go through its
 * shim. A refused call changes nothing (mmap and a brk growth undo the batches they did), except
 * that a munmap or brk shrink refused part-way keeps what it released out of the regions.
 * Loads and stores do not come here: a guest touches its pages through GuestMemoryAccess.
 * Adjacent mmap regions are one region, as Linux merges adjacent anonymous VMAs.
 */
export class GuestShim {
  /** The guest's domain. */
  readonly domId: DomId;
  /** Guest frames the shim manages, gfns `[0, gfnCount)`. */
  readonly gfnCount: number;
  /** First gfn of the heap. */
  readonly heapStart: Gfn;

  private readonly client: GuestShimHypercalls;
  private readonly batchPages: number;
  private readonly trustGroup: number;
  private readonly control: HypercallPort | undefined;
  /** The mmap regions, sorted by start, none adjacent to another. */
  private readonly maps: Span[] = [];
  /** End of the heap (the program break): the heap is `[heapStart, breakEnd)`. */
  private breakEnd: number;
  /** Gfns of one hypercall, reused. */
  private readonly batch: number[] = [];

  /**
   * A shim for domain `domId` (a real domain id, not DOMID_SELF), issuing its hypercalls
   * through `client` (the guest's own: its caller is `domId`). It starts with no region.
   */
  constructor(client: GuestShimHypercalls, domId: DomId, options: GuestShimOptions) {
    const o = { ...DEFAULT_GUEST_SHIM_OPTIONS, ...options };
    if (!isRealDomId(domId)) throw new RangeError(`GuestShim: domId must be a real domain id, got ${domId}`);
    if (!(Number.isSafeInteger(o.gfnCount) && o.gfnCount >= 0)) {
      throw new RangeError(`GuestShim: gfnCount must be a non-negative integer, got ${o.gfnCount}`);
    }
    if (!(Number.isSafeInteger(o.heapStart) && o.heapStart >= 0 && o.heapStart <= o.gfnCount)) {
      throw new RangeError(`GuestShim: heapStart must be an integer in [0, ${o.gfnCount}], got ${o.heapStart}`);
    }
    if (!(Number.isSafeInteger(o.batchPages) && o.batchPages >= 1)) {
      throw new RangeError(`GuestShim: batchPages must be a positive integer, got ${o.batchPages}`);
    }
    if (!(Number.isInteger(o.trustGroup) && o.trustGroup >= 0 && o.trustGroup <= 0xffff)) {
      throw new RangeError(`GuestShim: trustGroup must be an integer in [0, 65535], got ${o.trustGroup}`);
    }
    this.client = client;
    this.domId = domId;
    this.gfnCount = o.gfnCount;
    this.heapStart = asGfn(o.heapStart);
    this.breakEnd = o.heapStart;
    this.batchPages = o.batchPages;
    this.trustGroup = o.trustGroup;
    this.control = o.control;
  }

  /**
   * Maps `pages` new pages; returns the first gfn. The range is the lowest free one that fits
   * (or `fixed`); it is populated with populate_physmap, on demand (in batches) unless `populate`,
   * then advised mergeable when asked. New pages read as zeros.
   * @throws HypervisorError EINVAL for a bad count or a fixed range outside the guest, EEXIST when
   *   a fixed range overlaps a region, ENOMEM when no free range fits, E2BIG past max_pages
   *   (nothing issued then); a refused hypercall's error
   *   (a populate_physmap that did part of a batch: ENOMEM). Nothing stays mapped then.
   */
  mmap(pages: number, opts: MmapOptions = {}): Gfn {
    const op = 'mmap';
    this.checkCount(op, pages);
    let start: number;
    if (opts.fixed !== undefined) {
      start = opts.fixed;
      this.checkInside(op, start, pages);
      const at = this.firstOverlap(start, start + pages);
      if (at >= 0) throw new HypervisorError('EEXIST', op, `gfn ${at} of dom ${this.domId} is mapped already`);
    } else {
      start = this.firstFit(pages);
      if (start < 0) {
        throw new HypervisorError('ENOMEM', op, `no ${pages} free contiguous pages among dom ${this.domId}'s ${this.gfnCount} guest frames`);
      }
    }
    this.populate(start, start + pages, opts.populate === true ? 0 : XENMEMF_populate_on_demand);
    if (opts.mergeable === true) {
      try {
        this.client.madvise(this.domId, asGfn(start), pages, Madvise.mergeable);
      } catch (e) {
        if (e instanceof HypervisorError) this.release(start, start + pages);
        throw e;
      }
    }
    this.addMap(start, start + pages);
    return asGfn(start);
  }

  /**
   * Unmaps `pages` pages from `gfn`, all inside mmap'd regions, releasing them with
   * decrease_reservation in batches. The region is split when the range is inside it.
   * @throws HypervisorError EINVAL for a bad range or one not all mmap'd (nothing issued then);
   *   a refused hypercall's error, its detail saying how many pages were released before.
   */
  munmap(gfn: Gfn, pages: number): void {
    const op = 'munmap';
    this.checkCount(op, pages);
    this.checkInside(op, gfn, pages);
    const i = this.mapAt(gfn);
    if (i < 0 || this.maps[i]!.end < gfn + pages) {
      throw new HypervisorError('EINVAL', op, `pages [${gfn}, ${gfn + pages}) of dom ${this.domId} are not all mapped by mmap`);
    }
    let done: number = gfn;
    try {
      for (let first: number = gfn; first < gfn + pages; first += this.batchPages) {
        const n = Math.min(this.batchPages, gfn + pages - first);
        this.releaseBatch(first, n);
        done = first + n;
      }
    } catch (e) {
      if (!(e instanceof HypervisorError)) throw e;
      this.removeMap(gfn, done);
      if (done === gfn) throw e;
      throw new HypervisorError(e.errnoName as ErrnoName, e.op, `${e.detail} (after ${done - gfn} of ${pages} pages)`);
    }
    this.removeMap(gfn, gfn + pages);
  }

  /**
   * The program break. With `newEnd`, first moves it there: growing populates `[break, newEnd)`
   * on demand, shrinking releases `[newEnd, break)`. As Linux's brk, it returns the break as it
   * is after the call: the old one when the move was refused (below heapStart, past the guest,
   * into a mapped region, or a hypercall refused; a growth then undoes what it did) and, for a
   * shrink refused part-way, the lowest gfn released.
   */
  brk(newEnd?: Gfn): Gfn {
    if (newEnd === undefined || newEnd === this.breakEnd) return asGfn(this.breakEnd);
    if (!Number.isSafeInteger(newEnd) || newEnd < this.heapStart || newEnd > this.gfnCount) return asGfn(this.breakEnd);
    const old = this.breakEnd;
    if (newEnd > old) {
      if (this.firstOverlap(old, newEnd) >= 0) return asGfn(old);
      try {
        this.populate(old, newEnd, XENMEMF_populate_on_demand);
      } catch (e) {
        if (!(e instanceof HypervisorError)) throw e;
        return asGfn(old);
      }
      this.breakEnd = newEnd;
    } else {
      // From the top down, so that a refusal part-way leaves the heap one range.
      try {
        for (let end = old; end > newEnd; end -= this.batchPages) {
          const n = Math.min(this.batchPages, end - newEnd);
          this.releaseBatch(end - n, n);
          this.breakEnd = end - n;
        }
      } catch (e) {
        if (!(e instanceof HypervisorError)) throw e;
      }
    }
    return asGfn(this.breakEnd);
  }

  /**
   * Linux madvise over `pages` mapped pages from `gfn` (mmap'd or heap), one madvise hypercall:
   * `'dontneed'` drops their contents (they read zeros and are backed again on the next write),
   * `'mergeable'` / `'unmergeable'` tell the dedup strategy to scan them or not.
   * @throws HypervisorError EINVAL for a bad range or advice, ENOMEM (as Linux) when part of the
   *   range is not mapped (nothing issued then); a refused hypercall's error.
   */
  madvise(gfn: Gfn, pages: number, advice: MadviseAdvice): void {
    const op = 'madvise';
    if (!Object.hasOwn(ADVICE, advice)) throw new HypervisorError('EINVAL', op, `unknown advice ${String(advice)}`);
    this.checkCount(op, pages);
    this.checkInside(op, gfn, pages);
    const hole = this.firstUnmapped(gfn, gfn + pages);
    if (hole >= 0) throw new HypervisorError('ENOMEM', op, `gfn ${hole} of dom ${this.domId} is not mapped`);
    this.client.madvise(this.domId, gfn, pages, ADVICE[advice]);
  }

  /**
   * Forks the guest through the toolstack: creates a domain with this one's max_pages (or
   * `maxPages`), gfn count and trust group, and makes it a copy-on-write copy of this one
   * (sharing_fork; the child then reads what this guest holds, and writes on either side stay
   * their own). Returns the child's shim, with this one's regions and break, issuing its
   * hypercalls as the child through the control port. A child the fork created is destroyed
   * when the fork is refused.
   * @throws HypervisorError EPERM when the shim has no control port; a refused hypercall's error.
   */
  fork(opts: ForkOptions = {}): GuestShim {
    const op = 'fork';
    const port = this.control;
    if (port === undefined) {
      throw new HypervisorError('EPERM', op, `dom ${this.domId}'s shim has no toolstack (control port) to fork through`);
    }
    const toolstack = new HypercallClient(port, DOMID_CONTROL);
    const child = opts.child ?? toolstack.createDomain(opts.maxPages ?? toolstack.maximumReservation(this.domId), this.gfnCount, this.trustGroup);
    try {
      toolstack.fork(child, this.domId);
    } catch (e) {
      if (e instanceof HypervisorError && opts.child === undefined) toolstack.destroyDomain(child);
      throw e;
    }
    const shim = new GuestShim(new HypercallClient(port, child), child, {
      gfnCount: this.gfnCount,
      heapStart: this.heapStart,
      batchPages: this.batchPages,
      trustGroup: this.trustGroup,
      control: port,
    });
    for (const m of this.maps) shim.maps.push({ start: m.start, end: m.end });
    shim.breakEnd = this.breakEnd;
    return shim;
  }

  /** The mapped regions in gfn order: mmap'd ones and the heap (when not empty). */
  regions(): readonly GuestRegion[] {
    const out: GuestRegion[] = this.maps.map((m) => ({ start: asGfn(m.start), pages: m.end - m.start, kind: 'mmap' as const }));
    if (this.breakEnd > this.heapStart) {
      const heap: GuestRegion = { start: this.heapStart, pages: this.breakEnd - this.heapStart, kind: 'heap' };
      const at = out.findIndex((r) => r.start > this.heapStart);
      out.splice(at < 0 ? out.length : at, 0, heap);
    }
    return out;
  }

  // ---- hypercalls ---------------------------------------------------------------------------

  /**
   * Populates `[start, end)` with `memFlags`; on a refusal, releases what it did and rethrows.
   * Past max_pages it is E2BIG before anything is issued. On-demand pages go in batches; backed
   * pages (MAP_POPULATE) in one hypercall of up to MAX_EXTENTS gfns, which the hypervisor does
   * whole or not at all: undoing earlier batches would give back their frames but not the claim
   * (XENMEM_claim_pages) they consumed.
   */
  private populate(start: number, end: number, memFlags: number): void {
    // max_pages is known up front: a growth past it is refused before any batch is issued (an
    // undone batch would still have cost its hypercalls).
    const tot = this.client.currentReservation(this.domId);
    const max = this.client.maximumReservation(this.domId);
    if (tot + end - start > max) {
      throw new HypervisorError('E2BIG', 'populate_physmap', `dom ${this.domId} would hold ${tot + end - start} pages, over its max_pages ${max}`);
    }
    const batch = memFlags === 0 ? MAX_EXTENTS : this.batchPages;
    let done = start;
    try {
      for (let first = start; first < end; first += batch) {
        const n = Math.min(batch, end - first);
        const gfns = this.fill(first, n);
        const ok = this.client.populatePhysmap(this.domId, gfns, 0, memFlags);
        done = first + ok;
        if (ok !== n) {
          throw new HypervisorError('ENOMEM', 'populate_physmap', `populated ${ok} of ${n} pages from gfn ${first}`);
        }
      }
    } catch (e) {
      if (e instanceof HypervisorError) this.release(start, done);
      throw e;
    }
  }

  /**
   * Releases `[start, end)`, pages this shim has just populated: a refusal here means the
   * hypervisor lost track of them, a bug.
   */
  private release(start: number, end: number): void {
    try {
      for (let first = start; first < end; first += this.batchPages) this.releaseBatch(first, Math.min(this.batchPages, end - first));
    } catch (e) {
      if (!(e instanceof HypervisorError)) throw e;
      throw new InvariantError(`GuestShim: dom ${this.domId} could not release pages it had just populated: ${e.message}`);
    }
  }

  private releaseBatch(first: number, n: number): void {
    const ok = this.client.decreaseReservation(this.domId, this.fill(first, n));
    if (ok !== n) {
      throw new HypervisorError('EINVAL', 'decrease_reservation', `released ${ok} of ${n} pages from gfn ${first}`);
    }
  }

  /** The reused batch array, holding `n` gfns from `first`. */
  private fill(first: number, n: number): number[] {
    const gfns = this.batch;
    gfns.length = n;
    for (let i = 0; i < n; i++) gfns[i] = first + i;
    return gfns;
  }

  // ---- regions ------------------------------------------------------------------------------

  private checkCount(op: string, pages: number): void {
    if (!(Number.isSafeInteger(pages) && pages >= 1)) {
      throw new HypervisorError('EINVAL', op, `page count must be a positive integer, got ${pages}`);
    }
  }

  private checkInside(op: string, gfn: number, pages: number): void {
    if (!(Number.isSafeInteger(gfn) && gfn >= 0 && gfn + pages <= this.gfnCount)) {
      throw new HypervisorError('EINVAL', op, `pages [${gfn}, ${gfn + pages}) are outside dom ${this.domId}'s ${this.gfnCount} guest frames`);
    }
  }

  /** Every region (mmap'd ones and a non-empty heap), sorted by start. */
  private taken(): Span[] {
    const spans = this.maps.slice();
    if (this.breakEnd > this.heapStart) {
      let i = 0;
      while (i < spans.length && spans[i]!.start < this.heapStart) i++;
      spans.splice(i, 0, { start: this.heapStart, end: this.breakEnd });
    }
    return spans;
  }

  /** Lowest start of `pages` free pages, or -1. */
  private firstFit(pages: number): number {
    let cursor = 0;
    for (const s of this.taken()) {
      if (s.start - cursor >= pages) return cursor;
      cursor = s.end;
    }
    return this.gfnCount - cursor >= pages ? cursor : -1;
  }

  /** First gfn of `[start, end)` in a region (mmap'd or heap), or -1. */
  private firstOverlap(start: number, end: number): number {
    for (const s of this.taken()) {
      if (s.start >= end) break;
      if (s.end > start) return Math.max(start, s.start);
    }
    return -1;
  }

  /** First gfn of `[start, end)` in no region, or -1. */
  private firstUnmapped(start: number, end: number): number {
    let g = start;
    for (const s of this.taken()) {
      if (s.end <= g) continue;
      if (s.start > g) break;
      g = s.end;
      if (g >= end) return -1;
    }
    return g < end ? g : -1;
  }

  /** Index of the mmap region holding `gfn`, or -1. */
  private mapAt(gfn: number): number {
    for (let i = 0; i < this.maps.length; i++) {
      const m = this.maps[i]!;
      if (m.start > gfn) break;
      if (gfn < m.end) return i;
    }
    return -1;
  }

  /** Adds the free range `[start, end)` to the mmap regions, merging it with its neighbours. */
  private addMap(start: number, end: number): void {
    const maps = this.maps;
    let i = 0;
    while (i < maps.length && maps[i]!.start < start) i++;
    const before = maps[i - 1];
    const after = maps[i];
    if (before !== undefined && before.end === start) {
      before.end = end;
      if (after !== undefined && after.start === end) {
        before.end = after.end;
        maps.splice(i, 1);
      }
    } else if (after !== undefined && after.start === end) {
      after.start = start;
    } else {
      maps.splice(i, 0, { start, end });
    }
  }

  /** Removes `[start, end)`, inside one mmap region, from the regions. */
  private removeMap(start: number, end: number): void {
    if (start === end) return;
    const i = this.mapAt(start);
    const m = this.maps[i]!;
    if (m.start === start && m.end === end) this.maps.splice(i, 1);
    else if (m.start === start) m.start = end;
    else if (m.end === end) m.end = start;
    else {
      this.maps.splice(i + 1, 0, { start: end, end: m.end });
      m.end = start;
    }
  }
}
