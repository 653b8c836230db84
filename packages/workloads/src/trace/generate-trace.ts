import { PAGE_SIZE, Prng } from '@pagevisor/types';
import { PAGE_WORDS } from '../page-content.js';
import { fillFingerprintPage } from './fingerprint-page.js';
import { TraceWriter } from './trace-writer.js';
import type { TraceDomain } from './trace-format.js';

/** Options of {@link generateTrace}. */
export interface GenerateTraceOptions {
  /** Events in the trace, boot included (required; a positive integer). */
  readonly events: number;
  /** Domains, named `guest-0`, `guest-1`, ... (default 4). */
  readonly domains?: number;
  /** Pages of each domain (default 1024). */
  readonly pagesPerDomain?: number;
  /** Seed of the trace's randomness (default 1): one seed, one byte-identical file. */
  readonly seed?: number;
  /** True (default): writes carry fingerprints; false: whole page contents (4 KiB an event). */
  readonly fingerprint?: boolean;
  /** Fraction of each domain booted with the shared image (default 0.5). */
  readonly imageFraction?: number;
  /** Fraction of each domain left zero at boot, after the image (default 0.125). */
  readonly zeroFraction?: number;
  /** Mean simulated ns between events (default 10 µs). */
  readonly meanGapNs?: number;
}

/** Defaults of the optional {@link GenerateTraceOptions}. */
export const DEFAULT_GENERATE_TRACE_OPTIONS = Object.freeze({
  domains: 4,
  pagesPerDomain: 1024,
  seed: 1,
  fingerprint: true,
  imageFraction: 0.5,
  zeroFraction: 0.125,
  meanGapNs: 10_000,
});

/** What {@link generateTrace} wrote. */
export interface GeneratedTrace {
  /** The file. */
  readonly path: string;
  /** Events written. */
  readonly events: number;
  /** Bytes of the file. */
  readonly bytes: number;
  /** The domains of its header. */
  readonly domains: readonly TraceDomain[];
}

/** High word of the shared image's fingerprints (their low word is the gfn). */
const IMAGE_FP_HI = 0x8000_0001;
/** High word of the shared "library" pool's fingerprints (their low word is the pool index). */
const POOL_FP_HI = 0x4000_0002;
/** Contents in the shared pool that steady-state writes draw from. */
const POOL_SIZE = 256;
/** Pages each domain boots in a row before the next domain's turn. */
const BOOT_BATCH = 64;

/**
 * Writes a synthetic trace to `path`: `domains` guests booting a shared image, then rewriting
 * pages. Boot goes round-robin in batches of 64 pages: each page is populated, then written with
 * its content unless it is zero: gfns `[0, imageFraction × pages)` get image page `gfn` (the same
 * in every domain), the next `zeroFraction × pages` stay zero, the rest get private contents.
 * The steady state then picks a domain and a page at random for each event: an unpopulated page
 * is populated; a populated one is freed (5%), rewritten with its image page (15%), zeroed (5%),
 * given one of 256 contents shared by every domain (15%), or rewritten with new private content
 * (60%). Pages are only written while populated, so a replay refuses nothing for lack of a page.
 * Events are spaced by seeded gaps of mean `meanGapNs` (a page's populate and first write share a
 * time). Memory stays at one page bit per guest page whatever `events` is.
 * @throws RangeError on a bad option.
 */
export function generateTrace(path: string, options: GenerateTraceOptions): GeneratedTrace {
  const o = { ...DEFAULT_GENERATE_TRACE_OPTIONS, ...options };
  const checks: [boolean, string][] = [
    [Number.isSafeInteger(o.events) && o.events >= 1, `events must be a positive integer, got ${o.events}`],
    [Number.isInteger(o.domains) && o.domains >= 1 && o.domains <= 4096, `domains must be an integer in [1, 4096], got ${o.domains}`],
    [Number.isInteger(o.pagesPerDomain) && o.pagesPerDomain >= 1 && o.pagesPerDomain <= 2 ** 30, `pagesPerDomain must be an integer in [1, 2^30], got ${o.pagesPerDomain}`],
    [o.imageFraction >= 0 && o.zeroFraction >= 0 && o.imageFraction + o.zeroFraction <= 1, 'imageFraction and zeroFraction must be >= 0 with a sum <= 1'],
    [Number.isSafeInteger(o.meanGapNs) && o.meanGapNs >= 0, `meanGapNs must be a non-negative integer, got ${o.meanGapNs}`],
  ];
  for (const [ok, message] of checks) if (!ok) throw new RangeError(`generateTrace: ${message}`);

  const pages = o.pagesPerDomain;
  const imagePages = Math.floor(o.imageFraction * pages);
  const zeroEnd = imagePages + Math.floor(o.zeroFraction * pages);
  const domains: TraceDomain[] = Array.from({ length: o.domains }, (_, i) => ({ name: `guest-${i}`, maxPages: pages }));
  const prng = new Prng(o.seed);
  const populated = new Uint8Array(o.domains * pages);
  const page32 = new Uint32Array(PAGE_WORDS);
  const page8 = new Uint8Array(page32.buffer, 0, PAGE_SIZE);
  const w = TraceWriter.create(path, { fingerprint: o.fingerprint, domains });
  let t = 0;
  let left = o.events;

  const write = (dom: number, gfn: number, lo: number, hi: number): void => {
    if (o.fingerprint) {
      w.writeFingerprint(t, dom, gfn, lo, hi);
    } else {
      fillFingerprintPage(page32, lo, hi);
      w.write(t, dom, gfn, page8);
    }
    left--;
  };
  const gap = (): void => {
    t += o.meanGapNs === 0 ? 0 : prng.nextInt(2 * o.meanGapNs + 1);
  };
  const privateWrite = (dom: number, gfn: number): void => {
    // Top bits clear: never an image or pool fingerprint; low word 1 when both are 0: never zero.
    const hi = prng.nextU32() & 0x3fff_ffff;
    const lo = prng.nextU32();
    write(dom, gfn, hi === 0 && lo === 0 ? 1 : lo, hi);
  };

  try {
    // Boot, round-robin in batches, while events are left.
    boot: for (let first = 0; first < pages; first += BOOT_BATCH) {
      for (let dom = 0; dom < o.domains; dom++) {
        for (let gfn = first; gfn < Math.min(first + BOOT_BATCH, pages); gfn++) {
          if (left === 0) break boot;
          gap();
          w.populate(t, dom, gfn);
          left--;
          populated[dom * pages + gfn] = 1;
          if (left === 0) break boot;
          if (gfn < imagePages) write(dom, gfn, gfn, IMAGE_FP_HI);
          else if (gfn >= zeroEnd) privateWrite(dom, gfn);
        }
      }
    }
    while (left > 0) {
      gap();
      const dom = prng.nextInt(o.domains);
      const gfn = prng.nextInt(pages);
      const at = dom * pages + gfn;
      if (populated[at] === 0) {
        w.populate(t, dom, gfn);
        populated[at] = 1;
        left--;
        continue;
      }
      const r = prng.nextFloat();
      if (r < 0.05) {
        w.free(t, dom, gfn);
        populated[at] = 0;
        left--;
      } else if (r < 0.2) write(dom, gfn, gfn, IMAGE_FP_HI);
      else if (r < 0.25) write(dom, gfn, 0, 0);
      else if (r < 0.4) write(dom, gfn, prng.nextInt(POOL_SIZE), POOL_FP_HI);
      else privateWrite(dom, gfn);
    }
  } catch (e) {
    w.abandon();
    throw e;
  }
  const { events, bytes } = w.close();
  return { path, events, bytes, domains };
}
