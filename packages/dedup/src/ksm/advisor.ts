import type { KsmKnobValues } from './ksm-options.js';

/** Weight of the newest scan in the advisor's moving average of changes, in percent (Linux's EWMA_WEIGHT). */
const EWMA_WEIGHT = 30;
/** Least CPU the advisor plans for, in percent (Linux's KSM_ADVISOR_MIN_CPU). */
const MIN_CPU = 10;

/**
 * Linux's scan-time advisor (mm/ksm.c, Linux 6.7 and later) on the simulated clock and ksmd's
 * simulated CPU: after every full scan it sets pages_to_scan so that a full scan would take
 * advisor_target_scan_time seconds, smoothed by a moving average of the scan time's changes and
 * held between 10% and advisor_max_cpu of one CPU (at this scan's cost per page) and under
 * advisor_max_pages_to_scan. Its arithmetic is the kernel's, in integers: times in whole
 * seconds (at least 1), CPU in whole percent (at least 1).
 */
export class ScanTimeAdvisor {
  /** When the current full scan started, in simulated ns. */
  private startNs = 0;
  /** The previous full scan's seconds; 0 before the first. */
  private lastScanS = 0;
  /** Moving average of the scan time's change, in percent. */
  private change = 0;
  /** ksmd's CPU at the end of the previous full scan, in ns. */
  private cpuNs = 0;

  /** Forgets every scan (the advisor was just switched on): the next start is its first. */
  reset(): void {
    this.startNs = 0;
    this.lastScanS = 0;
    this.change = 0;
    this.cpuNs = 0;
  }

  /** A full scan starts at `nowNs`. */
  startScan(nowNs: number): void {
    this.startNs = nowNs;
  }

  /**
   * The full scan ends at `nowNs`, ksmd having used `ksmdCpuNs` of CPU in all (since the
   * strategy started; the kernel: since ksmd started). Returns the new pages_to_scan.
   */
  stopScan(nowNs: number, ksmdCpuNs: number, k: Readonly<KsmKnobValues>): number {
    const scanS = Math.max(1, Math.floor(Math.floor((nowNs - this.startNs) / 1e6) / 1000));
    const cpuMs = Math.floor((ksmdCpuNs - this.cpuNs) / 1e6);
    const cpuPercent = Math.max(1, Math.floor((cpuMs * 100) / (scanS * 1000)));
    const lastS = this.lastScanS === 0 ? scanS : this.lastScanS;
    const factor = Math.max(1, Math.floor((k.advisor_target_scan_time * 100) / scanS));
    const sample = Math.max(1, Math.floor((scanS * 100) / lastS));
    const change = Math.floor(((100 - EWMA_WEIGHT) * this.change + EWMA_WEIGHT * sample) / 100);
    let pages = Math.floor((k.pages_to_scan * 100) / factor);
    pages = Math.floor((pages * change) / 100);
    const perPageCost = Math.max(1, Math.floor(k.pages_to_scan / cpuPercent));
    pages = Math.min(pages, perPageCost * k.advisor_max_cpu);
    pages = Math.max(pages, perPageCost * MIN_CPU);
    pages = Math.min(pages, k.advisor_max_pages_to_scan);
    this.change = change;
    this.lastScanS = scanS;
    this.cpuNs = ksmdCpuNs;
    return pages;
  }
}
