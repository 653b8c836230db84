import type { PagerStats } from '@pagevisor/hypervisor';
import type { DomainStats, TotalsStats } from '@pagevisor/types';
import type { GuestSpec, MachineContents, Step, SwapConfig } from '@pagevisor/workloads';

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
  /** Pages whose content is in swap (0 without swap). */
  readonly pagedPages: number;
  /** Pages stored to swap so far (0 without swap). */
  readonly swapOuts: number;
  /** Pages read back from swap so far (0 without swap). */
  readonly swapIns: number;
  /** Swap slots holding a page (0 without swap). */
  readonly swapSlotsUsed: number;
  /** Swap device bytes in use, after compression (0 without swap). */
  readonly swapDiskBytes: number;
}

/** A guest paused by an EIO (failed swap-in) or EAGAIN (paused domain); it retried later. */
export type PauseRecord = FailureRecord;

/** The swap area(s): configuration, counters at the end, disk peaks and the guests' pauses. */
export interface SwapReport
  extends Pick<
    PagerStats,
    'swapOuts' | 'swapIns' | 'swapInsCached' | 'swapInsDeduped' | 'swapSlotsUsed' | 'swapBytesWritten' | 'slotsSavedByDedup' | 'compressionRatio' | 'evictionFailures' | 'swapInFailures'
  > {
  /** `"shared"` or `"per-domain"`. */
  readonly mode: string;
  /** The device's plugin name: `"memory"`, `"file"` or a plugin's. */
  readonly device: string;
  /** `"none"`, `"deflate"` or `"lz4"`. */
  readonly compression: string;
  /** The eviction policy's plugin name: `"clock"`, `"lru"`, `"random"` or a plugin's. */
  readonly policy: string;
  /** The swap backend's plugin name: `"shared-swap"` or a plugin's. */
  readonly backend: string;
  /** Module specifiers of the parts above that are plugins, not built-ins (absent when none is). */
  readonly plugins?: Readonly<Record<string, string>>;
  /** Peak device bytes of the shared-mode run (this run's, or the baseline's); null when not run. */
  readonly swapDiskBytesShared: number | null;
  /** Peak device bytes the per-domain areas needed together (this run's, or the baseline's); null when not run. */
  readonly swapDiskBytesPerDomain: number | null;
  /** Each pause of a guest, in order. */
  readonly pauses: readonly PauseRecord[];
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
  /** Steady-state reads done (absent when the guest reads nothing). */
  readonly reads?: number;
  /** Times the guest paused (absent when it never did). */
  readonly pauses?: number;
}

/** What one step of the scenario did, in the order the steps ran. */
export interface StepResult {
  /** The step's `op`, e.g. `"fill"`. */
  readonly op: string;
  /** Simulated time the step ran (a wait: the time it ended), in ns. */
  readonly tNs: number;
  /** True when the operation succeeded. */
  readonly ok: boolean;
  /** Errno name of a refusal, e.g. `"EBUSY"` (absent when ok). */
  readonly errno?: string;
  /** The refusal's message, or why the step failed (absent when ok and not failed). */
  readonly message?: string;
  /** The step's `expect`, when it had one. */
  readonly expect?: string;
  /**
   * True when the step failed the run: its outcome differed from its `expect`, or a
   * wait_full_scans could not see the scans rise. No further step runs; the CLI exits 2.
   */
  readonly failed: boolean;
}

/** Every statistic, global and per domain, at a `checkpoint` step. */
export interface CheckpointRecord {
  /** The step's label. */
  readonly label: string;
  /** Simulated time, in ns. */
  readonly tNs: number;
  /** The hypervisor's totals. */
  readonly totals: TotalsStats;
  /** The strategy's counters (`stats()`), e.g. KSM's pages_shared, full_scans. */
  readonly dedup: Readonly<Record<string, number>>;
  /** The strategy's tunables (`knobs()`; empty for a strategy without any). */
  readonly knobs: Readonly<Record<string, number>>;
  /** Per live domain: the hypervisor's DomainStats merged with the strategy's `domainStats(dom)`. */
  readonly domains: readonly (DomainStats & Readonly<Record<string, number | string>>)[];
}

/** Simulated CPU time of the run. */
export interface CpuStats {
  /** Spent by the hypervisor for the guests (faults, hypercalls, inline dedup), in ns. */
  readonly guestNs: number;
  /** Spent by the dedup strategy on its own (scanning, merging), in ns. */
  readonly dedupNs: number;
  /** Both, in ns. */
  readonly totalNs: number;
}

/** The de-duplication strategy's results. */
export interface DedupReport {
  /** Name of the strategy's plugin, e.g. `"ksm"` (a strategy instance given to runScenario: its name). */
  readonly strategy: string;
  /** The strategy's module specifier when it is a plugin, not a built-in (`{ strategy: "./mine.mjs" }`). */
  readonly plugins?: Readonly<Record<string, string>>;
  /**
   * Time of the first timeline sample from which machineFramesUsed stays within 0.5% of its
   * final value, in ns (computed by `convergedAtNs` in convergence.ts); equal to the last sample's time when it was
   * still moving at the end.
   */
  readonly convergedAtNs: number;
  /** The strategy's counters at the end. */
  readonly stats: Readonly<Record<string, number>>;
  /** Its tunables at the end (empty for a strategy without any). */
  readonly knobs: Readonly<Record<string, number>>;
}

/** The configuration a report was produced with (the scenario minus its name and seed). */
export interface ReportConfig {
  /** Machine RAM, its size in frames, what its frames hold, the frame allocator and the NUMA nodes. */
  readonly machine: {
    readonly memoryMiB: number;
    readonly frames: number;
    /** What each frame holds: `"bytes"` or `"fingerprints"` (`machine.contents`). */
    readonly contents: MachineContents;
    /** The allocator's plugin name. */
    readonly allocator: string;
    /** The allocator's module specifier when it is a plugin (absent for a built-in). */
    readonly plugins?: Readonly<Record<string, string>>;
    readonly numaNodes: number;
    /** The swap configuration without its file path (absent without swap). */
    readonly swap?: Omit<SwapConfig, 'path'>;
  };
  /** The de-duplication strategy and the options it was given. */
  readonly dedup: { readonly strategy: string } & Readonly<Record<string, unknown>>;
  /** Simulated seconds of steady state after each guest's boot. */
  readonly durationS: number;
  /** Simulated seconds between timeline samples. */
  readonly sampleIntervalS: number;
  /** The guest specs, defaults filled in. */
  readonly guests: readonly GuestSpec[];
  /** The steps, defaults filled in. */
  readonly steps: readonly Step[];
}

/**
 * Metadata the memory manager holds at the end of the run, in bytes of typed arrays, by part
 * (frame contents not counted). Depends only on the scenario, like everything outside `wall`.
 */
export interface MemoryReport {
  /** Every part together: `Hypervisor.metadataBytes()`. */
  readonly metadataBytes: number;
  /** metadataBytes over the populated guest pages (0 when none); DESIGN.md aims for at most 16. */
  readonly metadataBytesPerGuestPage: number;
  /** The frame table with its allocator. */
  readonly frameTableBytes: number;
  /** The domains' p2m tables. */
  readonly p2mTableBytes: number;
  /** The reverse map of shared frames. */
  readonly reverseMapBytes: number;
  /** The dedup strategy's index. */
  readonly dedupBytes: number;
  /** The hypervisor's own per-frame arrays (and the pager's, with swap). */
  readonly hypervisorBytes: number;
}

/** A page whose content read back differs from what its guest (and the steps) last wrote there. */
export interface VerifyDifference {
  /** Domain name of the guest. */
  readonly guest: string;
  /** Its domain id. */
  readonly domId: number;
  /** The guest frame. */
  readonly gfn: number;
  /** Simulated time of the check, in ns. */
  readonly tNs: number;
  /** Offset of the first differing byte; null when the page's populated state differs. */
  readonly offset: number | null;
  /** The byte expected at `offset` (null: the page was expected unpopulated). */
  readonly expected: number | null;
  /** The byte read at `offset` (null: the page was refused as unpopulated). */
  readonly actual: number | null;
  /** Bytes of the page that differ (4096 when the populated state differs). */
  readonly differingBytes: number;
  /**
   * Only when the populated state differs: `"expected unpopulated, read a page"` or `"expected
   * a page, refused as unpopulated"`.
   */
  readonly state?: string;
}

/** A page the final read-back could not read (refused with an errno other than "not populated", retries spent). */
export interface VerifyUnreadable {
  readonly guest: string;
  readonly domId: number;
  readonly gfn: number;
  /** Errno name, e.g. `"EIO"`. */
  readonly errno: string;
  readonly message: string;
}

/**
 * `pagevisor run --verify`: every page of every guest read back at the end through the
 * hypervisor's guest load path and compared with what was last written to it, and a sample of
 * pages at each timeline sample. Taken after every other figure of the report, which it does
 * not change.
 */
export interface VerifyReport {
  /** True when every guest was verified and no page differed or was unreadable. */
  readonly passed: boolean;
  /** Guests verified, and those not verified (a failed guest) with the reason. */
  readonly guests: {
    readonly verified: number;
    readonly notVerified: readonly { readonly guest: string; readonly domId: number; readonly reason: string }[];
  };
  /** The final read-back of every gfn of every verified guest. */
  readonly end: {
    /** Gfns checked: every page of every verified guest. */
    readonly pages: number;
    /** Populated pages read (readPage) and compared. */
    readonly pagesVerified: number;
    /** Gfns expected unpopulated (a discard step) and refused as such. */
    readonly pagesUnpopulated: number;
    /** Pages that differed (content, or populated state). */
    readonly pagesDiffered: number;
    /** Pages that could not be read (e.g. EIO on every retry of a swap-in). */
    readonly pagesUnreadable: number;
    /** Swap-ins the read-back caused (paged pages fault back in): after the report's figures were taken. */
    readonly swapIns: number;
    /** Reads retried after a refusal (EIO: a failed swap-in, which pauses the domain; EAGAIN; ENOMEM). */
    readonly retries: number;
  };
  /** The checks at timeline samples. */
  readonly samples: {
    /**
     * `"read_page"` (no swap: hypervisor.readPage, which then changes nothing) or `"resident"`
     * (with swap: the frame a resident page maps is read directly, without the fault-in and
     * eviction-policy side effects of readPage; paged pages are skipped).
     */
    readonly mode: 'read_page' | 'resident';
    /** Pages drawn per guest per sample. */
    readonly pagesPerGuest: number;
    /** Samples at which pages were checked. */
    readonly checks: number;
    /** Sampled pages compared (an unpopulated one counts when it was refused as expected). */
    readonly pagesVerified: number;
    /** Sampled pages not compared: paged out (resident mode) or their domain paused. */
    readonly pagesSkipped: number;
    /** Sampled pages that differed. */
    readonly pagesDiffered: number;
    /** The first of them, in time order. */
    readonly differences: readonly VerifyDifference[];
  };
  /** The first pages that differed at the end, by guest and gfn (up to 10; `end.pagesDiffered` counts them all). */
  readonly differences: readonly VerifyDifference[];
  /** The first unreadable pages. */
  readonly unreadable: readonly VerifyUnreadable[];
  /** What the expected-content model held at the end (see `ExpectedContent` of `@pagevisor/workloads`). */
  readonly model: {
    /** Bytes over every verified guest. */
    readonly bytes: number;
    /** Those bytes per guest page. */
    readonly bytesPerGuestPage: number;
    /** Pages with partial writes recorded on top of a regenerated base. */
    readonly overlaidPages: number;
    /** Pages kept as exact 4 KiB copies. */
    readonly exactPages: number;
  };
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
  /** Peak resident set size of the process so far (`process.resourceUsage().maxRSS`), in bytes. */
  readonly peakRssBytes: number;
  /** The final read-back of `--verify`, in ms (absent without it; included in totalMs). */
  readonly verifyMs?: number;
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
  /**
   * Host totals at the end, with the number of guests that failed and of steps that failed, and
   * `duplicateFrames`: resident frames holding a content another resident frame holds already
   * (0: RAM holds each content once; `Hypervisor.duplicateFrames`, computed once at the end).
   */
  readonly totals: TotalsStats & { readonly failedGuests: number; readonly failedSteps: number; readonly duplicateFrames: number };
  /** Simulated CPU time: guests' and the dedup strategy's. */
  readonly cpu: CpuStats;
  /** Metadata bytes at the end, by part and per guest page. */
  readonly memory: MemoryReport;
  /** Per-domain figures at the end. */
  readonly domains: readonly DomainStats[];
  /** The dedup strategy: name, convergence time, counters and tunables. */
  readonly dedup: DedupReport;
  /** Per-guest activity. */
  readonly guests: readonly GuestRecord[];
  /** Swap figures (absent when the machine has no swap). */
  readonly swap?: SwapReport;
  /** Host figures every sampleIntervalS, and at the end. */
  readonly timeline: readonly TimelineSample[];
  /** Guests the hypervisor stopped, in order of failure. */
  readonly failures: readonly FailureRecord[];
  /** What each step did, in order (up to the first failed step). */
  readonly steps: readonly StepResult[];
  /** The `checkpoint` steps' records, in order. */
  readonly checkpoints: readonly CheckpointRecord[];
  /** Pages read back and compared with what was written (only with `--verify` / `verify: true`). */
  readonly verify?: VerifyReport;
  /** Wall-clock figures (not deterministic). */
  readonly wall: WallStats;
}
