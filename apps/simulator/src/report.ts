import type { DomainStats, TotalsStats } from '@pagevisor/types';
import type { GuestSpec } from '@pagevisor/workloads';

/** One sample of the host's memory figures on the simulated clock. */
export interface TimelineSample {
  /** Simulated time of the sample, in ns. */
  readonly tNs: number;
  /** Populated guest pages over all domains. */
  readonly guestPages: number;
  /** Machine frames in use, the zero frame included. */
  readonly machineFramesUsed: number;
  /** Shared frames other than the zero frame mapped by two or more pages. */
  readonly pagesShared: number;
  /** Extra mappings of those frames: the pages sharing saves. */
  readonly pagesSharing: number;
  /** Pages mapping the zero frame. */
  readonly zeroPages: number;
  /** Copy-on-write faults on shared frames so far. */
  readonly cowFaults: number;
  /** Zero-frame write faults so far. */
  readonly zeroFaults: number;
}

/** A guest the hypervisor stopped with an error. */
export interface FailureRecord {
  /** Domain name of the guest. */
  readonly guest: string;
  /** Its domain id. */
  readonly domId: number;
  /** The refused operation, e.g. `"populate_physmap"`. */
  readonly op: string;
  /** Errno name, e.g. `"ENOMEM"`. */
  readonly errno: string;
  /** The error's message. */
  readonly message: string;
  /** Simulated time of the failure, in ns. */
  readonly atNs: number;
}

/** What one guest did. */
export interface GuestRecord {
  /** Domain name. */
  readonly name: string;
  /** Domain id. */
  readonly domId: number;
  /** `"done"` or `"failed"`. */
  readonly state: string;
  /** Guest pages. */
  readonly pages: number;
  /** Pages populated and filled at boot. */
  readonly pagesBooted: number;
  /** Steady-state writes done. */
  readonly writes: number;
  /** Of those, whole-page writes. */
  readonly wholePageWrites: number;
}

/** The configuration a report was produced with (the scenario minus its name and seed). */
export interface ReportConfig {
  /** Machine RAM, its size in frames, and the frame allocator. */
  readonly machine: { readonly memoryMiB: number; readonly frames: number; readonly allocator: string };
  /** The de-duplication strategy. */
  readonly dedup: { readonly strategy: string };
  /** Simulated seconds of steady state after each guest's boot. */
  readonly durationS: number;
  /** Simulated seconds between timeline samples. */
  readonly sampleIntervalS: number;
  /** The guest specs, defaults filled in. */
  readonly guests: readonly GuestSpec[];
}

/** Wall-clock figures: the only part of a report that differs between runs of one seed. */
export interface WallStats {
  /** Creating the hypervisor, domains and guests, in ms. */
  readonly setupMs: number;
  /** Running the event loop and the audit, in ms. */
  readonly runMs: number;
  /** Whole call, in ms. */
  readonly totalMs: number;
  /** Guest page operations (pages booted + writes) per wall-clock second of the run. */
  readonly guestPagesPerS: number;
}

/** Result of running a scenario; serialises to the JSON report. */
export interface Report {
  /** Version of the simulator. */
  readonly pagevisor: string;
  /** Scenario name. */
  readonly scenario: string;
  /** Seed of the run. */
  readonly seed: number;
  /** The configuration. */
  readonly config: ReportConfig;
  /** Simulated time at the end of the run, in ns. */
  readonly simulatedNs: number;
  /** Host totals at the end, with the number of guests that failed. */
  readonly totals: TotalsStats & { readonly failedGuests: number };
  /** Per-domain figures at the end. */
  readonly domains: readonly DomainStats[];
  /** The dedup strategy's counters. */
  readonly dedup: Readonly<Record<string, number>>;
  /** Per-guest activity. */
  readonly guests: readonly GuestRecord[];
  /** Host figures every sampleIntervalS, and at the end. */
  readonly timeline: readonly TimelineSample[];
  /** Guests the hypervisor stopped, in order of failure. */
  readonly failures: readonly FailureRecord[];
  /** Wall-clock figures (not deterministic). */
  readonly wall: WallStats;
}
