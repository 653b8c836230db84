import { HypervisorError, invariant, PAGE_SIZE, SimClock, type DedupIndex, type DomId, type Gfn } from '@pagevisor/types';
import { PAGE_WORDS } from '../page-content.js';
import { fillFingerprintPage } from './fingerprint-page.js';
import { TRACE_EVENT_KIND_NAMES, TraceEventKind } from './trace-format.js';
import type { TraceReader } from './trace-reader.js';

/** What a replay drives: the parts of the hypervisor it uses (`Hypervisor` has all of them). */
export interface TraceReplayTarget {
  /** The strategy: a scanner (one with `nextWakeNs`) is woken between events. */
  readonly dedup: Pick<DedupIndex, 'name' | 'nextWakeNs'>;
  /** Creates a domain with no memory. */
  createDomain(opts: { readonly name: string; readonly maxPages: number }): DomId;
  /** Marks every page of `dom` a merge candidate (for scanners). */
  setDomainMergeable(dom: DomId, on: boolean): void;
  /** Populates the pages at `gfns`. */
  populatePhysmap(dom: DomId, gfns: ArrayLike<number>): number;
  /** Releases the pages at `gfns`. */
  decreaseReservation(dom: DomId, gfns: ArrayLike<number>): number;
  /** A guest store. */
  writePage(dom: DomId, gfn: Gfn, offset: number, src: Uint8Array, srcOffset: number, length: number): void;
  /** Wakes the scanning strategy at `nowNs`. */
  wakeDedup(nowNs: number): void;
}

/** Options of {@link replayTraceEvents}. */
export interface TraceReplayOptions {
  /** Events between samples of the process's resident set size (default 4096; 0: never). */
  readonly rssEveryEvents?: number;
  /** Simulated ns the scanner keeps running after the last event (default 0). */
  readonly settleNs?: number;
  /** Mark every domain mergeable, for scanners (default true). */
  readonly mergeable?: boolean;
  /** Called every `progressEveryEvents` events with the events done and the simulated time. */
  readonly onProgress?: (events: number, timeNs: number) => void;
  /** Events between progress calls (default 65536). */
  readonly progressEveryEvents?: number;
  /**
   * Builds the page a fingerprint write stores, into `dst` (PAGE_WORDS words, zeros but for what
   * this function sets: it is the same buffer every time). Default {@link fillFingerprintPage}, a
   * whole page of content; a machine that holds fingerprints gives one that sets only the words
   * its memory reads as that fingerprint (`FingerprintMemory`'s generated page), so that no page is
   * generated per event.
   */
  readonly fingerprintPage?: (dst: Uint32Array, lo: number, hi: number) => void;
}

/** Defaults of {@link TraceReplayOptions}. */
export const DEFAULT_TRACE_REPLAY_OPTIONS = Object.freeze({
  rssEveryEvents: 4096,
  settleNs: 0,
  mergeable: true,
  progressEveryEvents: 65536,
  fingerprintPage: fillFingerprintPage,
});

/** The first event the hypervisor refused. */
export interface TraceRefusal {
  /** Index of the event in the trace. */
  readonly event: number;
  /** Byte offset of the event in the file. */
  readonly offset: number;
  /** Its kind's name, e.g. `"populate"`. */
  readonly kind: string;
  /** Its domain index. */
  readonly domain: number;
  /** Its gfn. */
  readonly gfn: number;
  /** Simulated time, in ns. */
  readonly timeNs: number;
  /** Errno name, e.g. `"ENOMEM"`. */
  readonly errno: string;
  /** The error's message. */
  readonly message: string;
}

/** What {@link replayTraceEvents} did. */
export interface TraceReplayResult {
  /** The domain created for each header domain, in order. */
  readonly domIds: readonly DomId[];
  /** Events replayed (refused ones included). */
  readonly events: number;
  /** Events by kind. */
  readonly eventsByKind: { readonly populate: number; readonly write: number; readonly writeFingerprint: number; readonly free: number };
  /** Events the hypervisor refused (a HypervisorError: ENOMEM, E2BIG ...); the replay went on. */
  readonly refused: number;
  /** Refused events by errno name. */
  readonly refusedByErrno: Readonly<Record<string, number>>;
  /** The first refused event, or null. */
  readonly firstRefusal: TraceRefusal | null;
  /** Times the scanner was woken. */
  readonly scannerWakes: number;
  /** Simulated time at the end: the last event's, plus `settleNs`. */
  readonly simulatedNs: number;
  /** Largest resident set size sampled, in bytes (0 when never sampled). */
  readonly peakRssBytes: number;
  /** RSS samples taken (at the start, every `rssEveryEvents` events, at the end). */
  readonly rssSamples: number;
}

/**
 * Replays the events of `reader` (its header read, no event yet) on `target`: creates a domain per
 * header domain (`name`, `maxPages`; mergeable unless `mergeable: false`), then applies each event
 * in order on a simulated clock: populate → `populatePhysmap`, write → `writePage` of its 4 KiB
 * (a fingerprint write: of the `fingerprintPage` option's page), free → `decreaseReservation`. A
 * scanning strategy's wake-ups due at or before an event's time run first (`wakeDedup`), then
 * until `settleNs` after the last event. A refused event (HypervisorError) is counted and the
 * replay goes on; anything else, a malformed trace included (TraceFormatError), stops it.
 * Memory stays at the reader's chunk and page whatever the trace's length; nothing is allocated
 * per event. Everything but the RSS figures depends only on the trace and the target.
 */
export function replayTraceEvents(reader: TraceReader, target: TraceReplayTarget, options: TraceReplayOptions = {}): TraceReplayResult {
  const o = { ...DEFAULT_TRACE_REPLAY_OPTIONS, ...options };
  if (!(Number.isSafeInteger(o.rssEveryEvents) && o.rssEveryEvents >= 0)) {
    throw new RangeError(`replayTraceEvents: rssEveryEvents must be a non-negative integer, got ${o.rssEveryEvents}`);
  }
  if (!(Number.isSafeInteger(o.progressEveryEvents) && o.progressEveryEvents >= 1)) {
    throw new RangeError(`replayTraceEvents: progressEveryEvents must be a positive integer, got ${o.progressEveryEvents}`);
  }
  if (!(Number.isSafeInteger(o.settleNs) && o.settleNs >= 0)) {
    throw new RangeError(`replayTraceEvents: settleNs must be a non-negative integer, got ${o.settleNs}`);
  }
  const domIds = reader.header.domains.map((d) => target.createDomain({ name: d.name, maxPages: d.maxPages }));
  if (o.mergeable) for (const dom of domIds) target.setDomainMergeable(dom, true);

  const clock = new SimClock();
  const dedup = target.dedup;
  const scans = typeof dedup.nextWakeNs === 'function';
  let scannerWakes = 0;
  /** Runs every wake-up due at or before `t`. */
  const wakeUntil = (t: number): void => {
    for (;;) {
      const due = dedup.nextWakeNs!();
      invariant(due === due, `dedup strategy ${dedup.name}: nextWakeNs() is NaN`);
      if (!(due <= t)) return;
      // A wake-up that fell due while nothing was happening runs now.
      const at = due < clock.nowNs() ? clock.nowNs() : due;
      clock.advanceTo(at);
      target.wakeDedup(at);
      scannerWakes++;
      const next = dedup.nextWakeNs!();
      invariant(next > at, `dedup strategy ${dedup.name} asked to wake at ${next} ns right after waking at ${at} ns`);
    }
  };

  let peakRss = 0;
  let rssSamples = 0;
  const sampleRss = (): void => {
    const rss = process.memoryUsage.rss();
    if (rss > peakRss) peakRss = rss;
    rssSamples++;
  };
  if (o.rssEveryEvents > 0) sampleRss();

  const one = new Uint32Array(1);
  const fp32 = new Uint32Array(PAGE_WORDS);
  const fp8 = new Uint8Array(fp32.buffer, 0, PAGE_SIZE);
  const byKind = new Float64Array(4);
  const refusedByErrno: Record<string, number> = {};
  let refused = 0;
  let firstRefusal: TraceRefusal | null = null;
  let events = 0;

  for (let e = reader.read(); e !== null; e = reader.read()) {
    const t = e.timeNs;
    if (scans) wakeUntil(t);
    clock.advanceTo(t);
    const dom = domIds[e.domain]!;
    try {
      switch (e.kind) {
        case TraceEventKind.populate:
          one[0] = e.gfn;
          target.populatePhysmap(dom, one);
          break;
        case TraceEventKind.write:
          target.writePage(dom, e.gfn as Gfn, 0, e.page, 0, PAGE_SIZE);
          break;
        case TraceEventKind.writeFingerprint:
          o.fingerprintPage(fp32, e.fingerprintLo, e.fingerprintHi);
          target.writePage(dom, e.gfn as Gfn, 0, fp8, 0, PAGE_SIZE);
          break;
        case TraceEventKind.free:
          one[0] = e.gfn;
          target.decreaseReservation(dom, one);
          break;
      }
    } catch (err) {
      if (!(err instanceof HypervisorError)) throw err;
      refused++;
      refusedByErrno[err.errnoName] = (refusedByErrno[err.errnoName] ?? 0) + 1;
      firstRefusal ??= {
        event: events,
        offset: reader.eventOffset,
        kind: TRACE_EVENT_KIND_NAMES[e.kind],
        domain: e.domain,
        gfn: e.gfn,
        timeNs: t,
        errno: err.errnoName,
        message: err.message,
      };
    }
    byKind[e.kind]!++;
    events++;
    if (o.rssEveryEvents > 0 && events % o.rssEveryEvents === 0) sampleRss();
    if (o.onProgress !== undefined && events % o.progressEveryEvents === 0) o.onProgress(events, t);
  }
  const endNs = clock.nowNs() + o.settleNs;
  if (scans) wakeUntil(endNs);
  clock.advanceTo(endNs);
  if (o.rssEveryEvents > 0) sampleRss();
  o.onProgress?.(events, endNs);

  return {
    domIds,
    events,
    eventsByKind: { populate: byKind[0]!, write: byKind[1]!, writeFingerprint: byKind[2]!, free: byKind[3]! },
    refused,
    refusedByErrno,
    firstRefusal,
    scannerWakes,
    simulatedNs: endNs,
    peakRssBytes: peakRss,
    rssSamples,
  };
}
