import type { Hypervisor } from '@pagevisor/hypervisor';
import { asGfn, HypervisorError, mixSeed, P2mType, PAGE_SIZE, Prng, type DomId } from '@pagevisor/types';
import { ImageError, type ExpectedContent } from '@pagevisor/workloads';
import type { VerifyDifference, VerifyReport, VerifyUnreadable } from './report.js';

/** Pages drawn per guest at each timeline sample, by default. */
export const DEFAULT_VERIFY_SAMPLE_PAGES = 64;
/** Differences (and unreadable pages) listed in the report; the counts cover them all. */
export const MAX_LISTED_DIFFERENCES = 10;
/**
 * Attempts of one read at the end before the page counts as unreadable: a swap-in refused with
 * EIO (injected device faults; it pauses the domain) or ENOMEM/EAGAIN is retried, as a guest
 * retries, after unpausing the domain.
 */
const READ_ATTEMPTS = 17;
const RETRIED = new Set(['EIO', 'EAGAIN', 'ENOMEM']);
/** Seed tag of the sample draws: their own stream, so the simulation draws nothing else. */
const SAMPLE_SEED_TAG = 0x7e41f1;

/** A guest as the verifier sees it. */
export interface VerifiedGuest {
  /** Domain name. */
  readonly name: string;
  /** Its domain. */
  readonly domId: DomId;
  /** Guest pages, gfns `[0, pages)`. */
  readonly pages: number;
  /** What each page should hold. */
  readonly content: ExpectedContent;
  /** Why the guest is not to be verified (it failed), or null. */
  notVerifiedReason(): string | null;
}

/** Options of {@link Verifier}. */
export interface VerifierOptions {
  /** Pages drawn per guest at each timeline sample (default {@link DEFAULT_VERIFY_SAMPLE_PAGES}; 0: none). */
  readonly samplePages?: number;
}

const UNPOPULATED = 0;
const READ = 1;
const SKIPPED = 2;

/**
 * Reads guests' pages back and compares them with their {@link ExpectedContent}.
 *
 * {@link sample} (at each timeline sample) draws `samplePages` gfns per live guest from a stream of
 * its own and compares those it can read without changing the simulation: without swap through
 * `hypervisor.readPage` (a resident page's load then only copies bytes), with swap by reading
 * the frame a resident page maps (what readPage would copy, without faulting anything in or
 * touching the eviction policy); paged pages are skipped.
 *
 * {@link finish} (once the report's figures are taken) reads every gfn of every guest that did not
 * fail through `hypervisor.readPage`, the guest load path: paged pages fault back in, and a
 * refused swap-in is retried after unpausing the domain.
 *
 * On a machine whose frames hold fingerprints (`machine.contents: "fingerprints"`) a load returns
 * bytes(F) of the frame's fingerprint F, not the bytes the guest stored; the guests' models then
 * predict bytes(F') of the fingerprint F' each page should hold (H of its base content, then its
 * partial writes in order through afterWrite: see ExpectedContent), and the page read is compared
 * with that, byte for byte. bytes() is one-to-one, so the comparison is exactly F = F': as exact
 * as in bytes mode, but for the 2^-64 chance of two contents sharing a fingerprint. A difference
 * lists the first differing byte of the generated pages (one of the first 8, the fingerprint's
 * encoding).
 */
export class Verifier {
  private readonly hv: Hypervisor;
  private readonly guests: VerifiedGuest[];
  private readonly samplePages: number;
  private readonly prng: Prng;
  private readonly mode: 'read_page' | 'resident';
  private readonly buf = Buffer.alloc(PAGE_SIZE);
  private readonly endDifferences: VerifyDifference[] = [];
  private readonly sampleDifferences: VerifyDifference[] = [];
  private readonly unreadable: VerifyUnreadable[] = [];
  private retries = 0;
  private sampleChecks = 0;
  private samplePagesVerified = 0;
  private samplePagesSkipped = 0;
  private samplePagesDiffered = 0;

  constructor(hv: Hypervisor, guests: readonly VerifiedGuest[], seed: number, options: VerifierOptions = {}) {
    const samplePages = options.samplePages ?? DEFAULT_VERIFY_SAMPLE_PAGES;
    if (!(Number.isInteger(samplePages) && samplePages >= 0)) throw new RangeError(`verify: samplePages must be an integer >= 0, got ${samplePages}`);
    this.hv = hv;
    this.guests = [...guests];
    this.samplePages = samplePages;
    this.prng = new Prng(mixSeed(seed, SAMPLE_SEED_TAG));
    this.mode = hv.pager === undefined ? 'read_page' : 'resident';
  }

  /** Verifies `g` too from now on (a guest forked during the run). */
  addGuest(g: VerifiedGuest): void {
    this.guests.push(g);
  }

  /** Checks a sample of pages of each live guest at simulated time `tNs`, changing nothing. */
  sample(tNs: number): void {
    if (this.samplePages === 0) return;
    this.sampleChecks++;
    for (const g of this.guests) {
      if (g.notVerifiedReason() !== null) continue;
      for (let i = 0; i < this.samplePages; i++) {
        // Drawn whatever happens next, so that the draws depend on the scenario alone.
        const gfn = this.prng.nextInt(g.pages);
        const got = this.peek(g.domId, gfn);
        if (got === SKIPPED) {
          this.samplePagesSkipped++;
          continue;
        }
        let same: boolean;
        try {
          same = this.compare(g, gfn, got === READ, this.sampleDifferences, tNs);
        } catch (e) {
          // The image file changed under the run: the guest's own boot reports it; skip the page.
          if (!(e instanceof ImageError)) throw e;
          this.samplePagesSkipped++;
          continue;
        }
        this.samplePagesVerified++;
        if (!same) this.samplePagesDiffered++;
      }
    }
  }

  /** Reads back every page of every guest that did not fail, at simulated time `tNs`; the report's `verify`. */
  finish(tNs: number): VerifyReport {
    const hv = this.hv;
    const swapInsBefore = hv.swapStats()?.swapIns ?? 0;
    const notVerified: { guest: string; domId: number; reason: string }[] = [];
    let verified = 0;
    let pages = 0;
    let pagesVerified = 0;
    let pagesUnpopulated = 0;
    let pagesDiffered = 0;
    let pagesUnreadable = 0;
    let bytes = 0;
    let overlaidPages = 0;
    let exactPages = 0;
    for (const g of this.guests) {
      const reason = g.notVerifiedReason();
      if (reason !== null) {
        notVerified.push({ guest: g.name, domId: g.domId, reason });
        continue;
      }
      // A domain left paused by a failed swap-in is unpaused for the read-back, as its retry would.
      if (hv.isPaused(g.domId)) hv.unpauseDomain(g.domId);
      const counts = { verified: 0, unpopulated: 0, differed: 0, unreadable: 0 };
      const listed = [this.endDifferences.length, this.unreadable.length] as const;
      try {
        for (let gfn = 0; gfn < g.pages; gfn++) {
          const got = this.load(g, gfn);
          if (got === SKIPPED) {
            counts.unreadable++;
            continue;
          }
          const same = this.compare(g, gfn, got === READ, this.endDifferences, tNs);
          if (got === READ) counts.verified++;
          else if (same) counts.unpopulated++;
          if (!same) counts.differed++;
        }
      } catch (e) {
        // The image file changed since it was validated: this guest's pages cannot be told.
        if (!(e instanceof ImageError)) throw e;
        this.endDifferences.length = listed[0];
        this.unreadable.length = listed[1];
        notVerified.push({ guest: g.name, domId: g.domId, reason: `image file unreadable: ${e.message}` });
        continue;
      }
      const st = g.content.stats();
      bytes += st.bytes;
      overlaidPages += st.overlaidPages;
      exactPages += st.exactPages;
      verified++;
      pages += g.pages;
      pagesVerified += counts.verified;
      pagesUnpopulated += counts.unpopulated;
      pagesDiffered += counts.differed;
      pagesUnreadable += counts.unreadable;
    }
    return {
      passed: notVerified.length === 0 && pagesDiffered === 0 && pagesUnreadable === 0 && this.samplePagesDiffered === 0,
      guests: { verified, notVerified },
      end: { pages, pagesVerified, pagesUnpopulated, pagesDiffered, pagesUnreadable, swapIns: (hv.swapStats()?.swapIns ?? 0) - swapInsBefore, retries: this.retries },
      samples: {
        mode: this.mode,
        pagesPerGuest: this.samplePages,
        checks: this.sampleChecks,
        pagesVerified: this.samplePagesVerified,
        pagesSkipped: this.samplePagesSkipped,
        pagesDiffered: this.samplePagesDiffered,
        differences: this.sampleDifferences,
      },
      differences: this.endDifferences,
      unreadable: this.unreadable,
      model: { bytes, bytesPerGuestPage: pages === 0 ? 0 : Math.round((bytes / pages) * 100) / 100, overlaidPages, exactPages },
    };
  }

  /** A sample's read of `gfn` into the buffer, without side effects: READ, UNPOPULATED or SKIPPED. */
  private peek(dom: DomId, gfn: number): number {
    const hv = this.hv;
    if (this.mode === 'read_page') {
      try {
        hv.readPage(dom, asGfn(gfn), 0, this.buf, 0, PAGE_SIZE);
        return READ;
      } catch (e) {
        if (!(e instanceof HypervisorError)) throw e;
        if (e.errnoName === 'EINVAL') return UNPOPULATED;
        return SKIPPED;
      }
    }
    const table = hv.p2m.table(dom)!;
    const t = table.type(asGfn(gfn));
    if (t === P2mType.invalid) return UNPOPULATED;
    if (t === P2mType.populate_on_demand) {
      this.buf.fill(0);
      return READ;
    }
    if (t === P2mType.ram_rw || t === P2mType.ram_shared || t === P2mType.paging_out) {
      hv.memory.read(table.mfn(asGfn(gfn)), 0, this.buf, 0, PAGE_SIZE);
      return READ;
    }
    return SKIPPED;
  }

  /** The final read of `gfn` through readPage, retried: READ, UNPOPULATED or SKIPPED (unreadable, recorded). */
  private load(g: VerifiedGuest, gfn: number): number {
    const hv = this.hv;
    for (let attempt = 1; ; attempt++) {
      try {
        hv.readPage(g.domId, asGfn(gfn), 0, this.buf, 0, PAGE_SIZE);
        return READ;
      } catch (e) {
        if (!(e instanceof HypervisorError)) throw e;
        if (e.errnoName === 'EINVAL') return UNPOPULATED;
        if (RETRIED.has(e.errnoName) && attempt < READ_ATTEMPTS) {
          this.retries++;
          if (hv.isPaused(g.domId)) hv.unpauseDomain(g.domId);
          continue;
        }
        if (hv.isPaused(g.domId)) hv.unpauseDomain(g.domId);
        if (this.unreadable.length < MAX_LISTED_DIFFERENCES) {
          this.unreadable.push({ guest: g.name, domId: g.domId, gfn, errno: e.errnoName, message: e.message });
        }
        return SKIPPED;
      }
    }
  }

  /** Compares what was read (the buffer, or "unpopulated") with what `gfn` should hold; records a difference. */
  private compare(g: VerifiedGuest, gfn: number, read: boolean, list: VerifyDifference[], tNs: number): boolean {
    const want = g.content.expectedPage(gfn);
    if (want === null && !read) return true;
    if (want !== null && read && this.buf.equals(want)) return true;
    let offset: number | null = null;
    let differingBytes = PAGE_SIZE;
    if (want !== null && read) {
      differingBytes = 0;
      for (let i = 0; i < PAGE_SIZE; i++) {
        if (want[i] !== this.buf[i]) {
          offset ??= i;
          differingBytes++;
        }
      }
    }
    if (list.length < MAX_LISTED_DIFFERENCES) {
      list.push({
        guest: g.name,
        domId: g.domId,
        gfn,
        tNs,
        offset,
        expected: offset === null ? null : want![offset]!,
        actual: offset === null ? null : this.buf[offset]!,
        differingBytes,
        ...(offset === null ? { state: want === null ? 'expected unpopulated, read a page' : 'expected a page, refused as unpopulated' } : {}),
      });
    }
    return false;
  }
}
