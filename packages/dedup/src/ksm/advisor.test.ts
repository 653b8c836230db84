import { describe, expect, it } from 'vitest';
import { ScanTimeAdvisor } from './advisor.js';
import { DEFAULT_KSM_OPTIONS, type KsmKnobValues } from './ksm-options.js';

const S = 1e9;
const MS = 1e6;

describe('the scan-time advisor', () => {
  const knobs = (over: Partial<KsmKnobValues>): KsmKnobValues => ({ ...DEFAULT_KSM_OPTIONS, advisor_mode: 1, ...over });

  it("aims a full scan at the target time: 100 s scans at 500 pages for a 200 s target halve the rate, smoothed", () => {
    const a = new ScanTimeAdvisor();
    a.startScan(0);
    // 100 s, 2 s of CPU (2%): factor 200, change ewma(0, 100) = 30: 500 * 100 / 200 * 30 / 100 = 75,
    // held at or above 10% of a CPU at this cost per page (500 / 2 * 10 = 2500).
    expect(a.stopScan(100 * S, 2 * S, knobs({ pages_to_scan: 500 }))).toBe(2500);
    a.startScan(100 * S);
    // Next: 50 s, 0.5 s more CPU (1%): factor 400, change ewma(30, 50) = 36: 2500 / 4 * 36 / 100 = 225,
    // at least 2500 / 1 * 10.
    expect(a.stopScan(150 * S, 2.5 * S, knobs({ pages_to_scan: 2500 }))).toBe(25000);
  });

  it('caps the rate at advisor_max_cpu and advisor_max_pages_to_scan', () => {
    const a = new ScanTimeAdvisor();
    a.startScan(0);
    // A 100 s scan aiming at 1 s wants 100x the pages (30x, smoothed); at 50% CPU now, 70% allows 1.4x.
    expect(a.stopScan(100 * S, 50 * S, knobs({ pages_to_scan: 1000, advisor_target_scan_time: 1, advisor_max_pages_to_scan: 1e9 }))).toBe(1400);
    // A 1 s scan aiming at 1000 s wants 1/1000 of the pages: held at 10% of a CPU (at 50%: 1/5).
    const slow = new ScanTimeAdvisor();
    slow.startScan(0);
    expect(slow.stopScan(1 * S, 0.5 * S, knobs({ pages_to_scan: 1000, advisor_target_scan_time: 1000 }))).toBe(200);
    const b = new ScanTimeAdvisor();
    b.startScan(0);
    expect(b.stopScan(1 * S, 0, knobs({ pages_to_scan: 1000, advisor_max_pages_to_scan: 8 }))).toBe(8);
  });

  it('counts in whole seconds (at least 1) and whole percent of CPU (at least 1), as the kernel', () => {
    const a = new ScanTimeAdvisor();
    a.startScan(5 * S);
    // 1.9 s is 1 s; 19 ms of CPU in it is 1%: change ewma(0, 100) = 30 of 8 pages is 2, raised to 8 * 10.
    expect(a.stopScan(5 * S + 1.9 * S, 19 * MS, knobs({ pages_to_scan: 8, advisor_target_scan_time: 1 }))).toBe(80);
    // The figures of the repo's ksm-advisor scenario, which the kernel gives too: 80, then 800, then 8000.
    a.startScan(7 * S);
    expect(a.stopScan(7.06 * S, 20 * MS, knobs({ pages_to_scan: 80, advisor_target_scan_time: 1 }))).toBe(800);
    a.reset();
    a.startScan(0);
    expect(a.stopScan(0, 0, knobs({ pages_to_scan: 8, advisor_target_scan_time: 1 }))).toBe(80);
  });
});
