import { performance } from 'node:perf_hooks';
import { NS_PER_S } from '@pagevisor/types';
import type { RunProgress } from './run-scenario.js';
import { count } from './summary.js';

/** Where the progress bar writes: a terminal. */
export interface ProgressSink {
  write(text: string): unknown;
}

/**
 * A one-line progress bar (simulated time, guest pages booted, ETA) redrawn in place at most
 * every `minIntervalMs` of wall time. The ETA is the only use of the wall clock besides the
 * report's `wall` figures; nothing it reads feeds back into the simulation.
 */
export class ProgressBar<P = RunProgress> {
  private readonly startMs = performance.now();
  private lastDrawMs = -Infinity;
  private drawn = false;

  /** `format` gives the text of progress `p` after `elapsedMs` (default: a run's, {@link formatProgress}). */
  constructor(
    private readonly sink: ProgressSink,
    private readonly width = 30,
    private readonly minIntervalMs = 100,
    private readonly format: (p: P, elapsedMs: number, width: number) => string = formatProgress as unknown as (p: P, elapsedMs: number, width: number) => string,
  ) {}

  /** Redraws the bar for `p` unless it was drawn less than `minIntervalMs` ago. */
  update(p: P): void {
    const now = performance.now();
    if (now - this.lastDrawMs < this.minIntervalMs) return;
    this.lastDrawMs = now;
    this.sink.write(`\r\x1b[K${this.format(p, now - this.startMs, this.width)}`);
    this.drawn = true;
  }

  /** Erases the bar. */
  clear(): void {
    if (this.drawn) this.sink.write('\r\x1b[K');
    this.drawn = false;
  }
}

/**
 * Share of the run's work done, 0 to 1, in what costs wall time: guest pages booted and guest
 * accesses (writes, reads) against all there will be, one unit each. Guests that plan no accesses
 * (only a scanner or steps run after boot) weigh the boot and the simulated time half each.
 */
function workDone(p: RunProgress): number {
  const sim = p.totalNs > 0 ? Math.min(1, p.simNs / p.totalNs) : 1;
  const boot = p.bootPagesTotal > 0 ? p.bootPagesDone / p.bootPagesTotal : 1;
  if (p.accessesTotal === 0) return (boot + sim) / 2;
  return (p.bootPagesDone + p.accessesDone) / (p.bootPagesTotal + p.accessesTotal);
}

/**
 * The bar's text for progress `p` after `elapsedMs` of wall time, e.g.
 * `[####------] 12.0/60.0 s simulated  pages 12,345 / 4,194,304  ETA 3 s`: the bar and the ETA
 * follow {@link workDone}.
 */
export function formatProgress(p: RunProgress, elapsedMs: number, width = 30): string {
  const f = workDone(p);
  // A wait_full_scans may run past the planned end: the end shown moves with it.
  const sim = `${(p.simNs / NS_PER_S).toFixed(1)}/${(Math.max(p.simNs, p.totalNs) / NS_PER_S).toFixed(1)} s simulated`;
  return `${barText(f, width)} ${sim}  pages ${count(p.bootPagesDone)} / ${count(p.bootPagesTotal)}  ${etaText(f, elapsedMs)}`;
}

/** A bar `width` wide, `f` (0 to 1) of it filled: `[####------]`. */
export function barText(f: number, width: number): string {
  const filled = Math.round(Math.min(1, f) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/** The time left when `f` of the work took `elapsedMs`: `ETA 3 s`. */
export function etaText(f: number, elapsedMs: number): string {
  return f > 0 ? `ETA ${Math.ceil((elapsedMs * (1 - f)) / f / 1000)} s` : 'ETA ?';
}
