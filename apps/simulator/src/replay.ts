import { performance } from 'node:perf_hooks';
import { Hypervisor } from '@pagevisor/hypervisor';
import { setGeneratedPage, ZERO_FINGERPRINT_HIGH, ZERO_FINGERPRINT_LOW, type MachineContents } from '@pagevisor/machine';
import { InvariantError, mibToPages, NS_PER_MS, NS_PER_S, PAGE_SIZE, type DomainStats, type TotalsStats } from '@pagevisor/types';
import { replayTraceEvents, TraceReader, type DedupConfig, type TraceDomain, type TraceRefusal } from '@pagevisor/workloads';
import { makeDedup, partsContext } from './make-parts.js';
import { count } from './summary.js';
import { VERSION } from './version.js';

/** Options of {@link replayTrace}. */
export interface ReplayOptions {
  /** De-duplication strategy: `inline` (default), `ksm`, `esx`, `none`, or a plugin's module specifier. */
  readonly dedup?: string;
  /** The strategy's options, as a scenario's `dedup` field gives them (default none). */
  readonly dedupOptions?: Readonly<Record<string, unknown>>;
  /** Directory a plugin's relative specifier is resolved from (default the working directory). */
  readonly baseDir?: string;
  /**
   * Machine RAM in MiB (default: room for every domain's max pages without any sharing, plus the
   * zero frame, rounded up to a whole MiB).
   */
  readonly memoryMiB?: number;
  /** Seed given to strategies that draw random numbers (ESX) (default 0). */
  readonly seed?: number;
  /** Events between samples of the process's RSS (default 4096). */
  readonly rssEveryEvents?: number;
  /** Simulated ms the scanner keeps running after the last event (default 0). */
  readonly settleMs?: number;
  /** Called every 65536 events with the events done and the simulated time. */
  readonly onProgress?: (events: number, timeNs: number) => void;
  /**
   * What each frame holds (default `"bytes"`): with `"fingerprints"` a fingerprint write of the
   * trace sets its frame's fingerprint to the trace's (no page is generated: see
   * {@link fingerprintTracePage}), and a content write that of its page.
   */
  readonly contents?: MachineContents;
}

/**
 * A fingerprint trace's page on a machine of fingerprints: the page FingerprintMemory holds as the
 * trace's fingerprint (its encoding in words 0 and 1; `dst` keeps zeros elsewhere), and fingerprint
 * 0, the zero page in bytes mode, the zero page.
 */
export function fingerprintTracePage(dst: Uint32Array, lo: number, hi: number): void {
  if ((lo | hi) === 0) setGeneratedPage(dst, ZERO_FINGERPRINT_LOW, ZERO_FINGERPRINT_HIGH);
  else setGeneratedPage(dst, lo, hi);
}

/** Result of {@link replayTrace}; serialises to the JSON report of `pagevisor replay --json`. */
export interface ReplayReport {
  /** Version of the simulator. */
  readonly pagevisor: string;
  /** The trace: file, size, format version, mode and domains. */
  readonly trace: {
    readonly path: string;
    readonly bytes: number;
    readonly version: number;
    readonly fingerprint: boolean;
    readonly domains: readonly TraceDomain[];
  };
  /** The machine and strategy replayed on. */
  readonly config: {
    readonly memoryMiB: number;
    readonly frames: number;
    readonly contents: MachineContents;
    readonly dedup: { readonly strategy: string } & Readonly<Record<string, unknown>>;
  };
  /** Events replayed, refused ones included. */
  readonly events: number;
  /** Events by kind. */
  readonly eventsByKind: { readonly populate: number; readonly write: number; readonly writeFingerprint: number; readonly free: number };
  /** Events the hypervisor refused (the replay went on): count, by errno, and the first one. */
  readonly refused: { readonly count: number; readonly byErrno: Readonly<Record<string, number>>; readonly first: TraceRefusal | null };
  /** Simulated time at the end (the last event's, plus the settle time), in ns. */
  readonly simulatedNs: number;
  /** Host totals at the end. */
  readonly totals: TotalsStats;
  /** Per-domain figures at the end, in header order. */
  readonly domains: readonly DomainStats[];
  /** The strategy: name, counters, tunables and the times the scanner was woken. */
  readonly dedup: {
    readonly strategy: string;
    readonly stats: Readonly<Record<string, number>>;
    readonly knobs: Readonly<Record<string, number>>;
    readonly scannerWakes: number;
  };
  /** Wall-clock figures (not deterministic). */
  readonly wall: { readonly setupMs: number; readonly runMs: number; readonly totalMs: number; readonly eventsPerS: number };
  /** The process's memory while replaying (not deterministic). */
  readonly memory: { readonly peakRssBytes: number; readonly rssSamples: number; readonly rssEveryEvents: number };
}

const MIB = 1024 * 1024;

function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * Replays the trace at `path` (see `@pagevisor/workloads`' TraceReader for the format) on a new
 * hypervisor: a domain per header domain (mergeable), its events in order on the simulated
 * clock with the scanner's wake-ups between them, then the audit. The trace is streamed: memory
 * does not grow with its length (`memory.peakRssBytes` shows it). Events the hypervisor refuses
 * (ENOMEM with too little RAM, say) are counted in `refused` and the replay goes on. Everything
 * but `wall` and `memory` depends only on the trace and the options.
 * @throws TraceFormatError when the trace is malformed or cut short (at the point it is met).
 * @throws PluginError when the strategy cannot be loaded or refuses its options.
 * @throws RangeError on a bad option; the `fs` error when the file cannot be read.
 * @throws InvariantError when the hypervisor's audit finds a broken invariant at the end (a bug).
 */
export async function replayTrace(path: string, options: ReplayOptions = {}): Promise<ReplayReport> {
  const tStart = performance.now();
  const strategy = options.dedup ?? 'inline';
  const dedupOptions = options.dedupOptions ?? {};
  const rssEveryEvents = options.rssEveryEvents ?? 4096;
  const settleMs = options.settleMs ?? 0;
  if (options.memoryMiB !== undefined && !(Number.isInteger(options.memoryMiB) && options.memoryMiB >= 1)) {
    throw new RangeError(`replayTrace: memoryMiB must be a positive integer, got ${options.memoryMiB}`);
  }
  if (!(settleMs >= 0 && Number.isFinite(settleMs))) throw new RangeError(`replayTrace: settleMs must be >= 0, got ${settleMs}`);
  const reader = TraceReader.open(path);
  try {
    const { header } = reader;
    const pagesMax = header.domains.reduce((n, d) => n + d.maxPages, 0);
    const memoryMiB = options.memoryMiB ?? Math.ceil(((pagesMax + 1) * PAGE_SIZE) / MIB);
    const frames = mibToPages(memoryMiB);
    const { context, bind } = partsContext(frames, 1, options.seed ?? 0, options.baseDir ?? process.cwd());
    const { part: dedup, loaded } = await makeDedup({ ...dedupOptions, strategy } as DedupConfig, context);
    const contents = options.contents ?? 'bytes';
    const hv = await Hypervisor.create({ frames, dedup, contents });
    bind(hv);
    const tSetup = performance.now();
    const r = replayTraceEvents(reader, hv, {
      rssEveryEvents,
      settleNs: Math.round(settleMs * NS_PER_MS),
      ...(contents === 'fingerprints' ? { fingerprintPage: fingerprintTracePage } : {}),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    });
    const problems = hv.audit();
    if (problems.length > 0) throw new InvariantError(`hypervisor audit failed after the replay:\n  ${problems.join('\n  ')}`);
    const tEnd = performance.now();
    const runMs = tEnd - tSetup;
    return {
      pagevisor: VERSION,
      trace: { path, bytes: reader.fileBytes, version: header.version, fingerprint: header.fingerprint, domains: header.domains },
      config: { memoryMiB, frames, contents, dedup: { ...dedupOptions, strategy: loaded.plugin.name, ...(loaded.builtIn ? {} : { plugin: loaded.specifier }) } },
      events: r.events,
      eventsByKind: r.eventsByKind,
      refused: { count: r.refused, byErrno: r.refusedByErrno, first: r.firstRefusal },
      simulatedNs: r.simulatedNs,
      totals: hv.totals(),
      domains: r.domIds.map((d) => hv.domainStats(d)),
      dedup: { strategy: dedup.name, stats: { ...dedup.stats() }, knobs: { ...(dedup.knobs?.() ?? {}) }, scannerWakes: r.scannerWakes },
      wall: {
        setupMs: roundMs(tSetup - tStart),
        runMs: roundMs(runMs),
        totalMs: roundMs(tEnd - tStart),
        eventsPerS: runMs > 0 ? Math.round((r.events * 1000) / runMs) : 0,
      },
      memory: { peakRssBytes: r.peakRssBytes, rssSamples: r.rssSamples, rssEveryEvents },
    };
  } finally {
    reader.close();
  }
}

/** The human-readable summary of a replay, as `pagevisor replay` prints it without `--json`. */
export function formatReplay(report: ReplayReport): string {
  const t = report.totals;
  const mib = (bytes: number): string => (bytes / MIB).toFixed(1);
  const k = report.eventsByKind;
  const lines = [
    `pagevisor ${report.pagevisor} replay of ${report.trace.path} (${mib(report.trace.bytes)} MiB, ${report.trace.fingerprint ? 'fingerprint' : 'content'} trace, ${report.trace.domains.length} domains)`,
    `  machine ${count(report.config.memoryMiB)} MiB (${count(report.config.frames)} frames), dedup ${report.dedup.strategy}`,
    `  events ${count(report.events)}: populate ${count(k.populate)}, write ${count(k.write + k.writeFingerprint)}, free ${count(k.free)}; refused ${count(report.refused.count)}` +
      (report.refused.first === null ? '' : ` (first: event ${count(report.refused.first.event)}, ${report.refused.first.message})`),
    `  simulated ${(report.simulatedNs / NS_PER_S).toFixed(3)} s${report.dedup.scannerWakes > 0 ? `, ${count(report.dedup.scannerWakes)} scanner wake-ups` : ''}`,
    `  guest pages ${count(t.guestPages)} in ${count(t.machineFramesUsed)} frames (saved ${t.savedPct.toFixed(2)}%): ${count(t.pagesShared)} shared frames, ${count(t.pagesSharing)} sharing, ${count(t.zeroPages)} zero pages, ${count(t.cowFaults)} CoW faults`,
  ];
  for (const d of report.domains) {
    lines.push(`    ${d.name.padEnd(16)} ${count(d.totPages).padStart(9)} pages: ${count(d.privatePages)} private, ${count(d.sharedPages)} shared, ${count(d.zeroPages)} zero`);
  }
  lines.push(
    `  wall ${(report.wall.totalMs / 1000).toFixed(2)} s, ${count(report.wall.eventsPerS)} events/s; peak RSS ${mib(report.memory.peakRssBytes)} MiB`,
  );
  return lines.join('\n') + '\n';
}
