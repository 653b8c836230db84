import { performance } from 'node:perf_hooks';
import { HypercallClient } from '@pagevisor/hypercall-abi';
import { Hypervisor } from '@pagevisor/hypervisor';
import { Fingerprinter } from '@pagevisor/machine';
import { InvariantError, invariant, mibToPages, mixSeed, NS_PER_MS, NS_PER_S, SimClock, type AuditDepth, type DedupIndex, type DomId } from '@pagevisor/types';
import { domainNames, MAX_SAMPLES, parseScenario, ScenarioError, SyntheticGuest, type Scenario } from '@pagevisor/workloads';
import { makeSwap, type SwapSetup } from './make-swap.js';
import { convergedAtNs } from './convergence.js';
import { EventQueue } from './event-queue.js';
import { makeAllocator, makeDedup, partsContext } from './make-parts.js';
import type { LoadedPlugin } from './plugins.js';
import { fullScansOf, StepRunner, type StepGuest } from './step-runner.js';
import type { FailureRecord, GuestRecord, MemoryReport, PauseRecord, Report, SwapReport, TimelineSample } from './report.js';
import { Verifier, type VerifierOptions } from './verify.js';
import { VERSION } from './version.js';

/** Where a run is, for progress displays. */
export interface RunProgress {
  /** Simulated time reached, in ns. */
  readonly simNs: number;
  /**
   * Simulated time the run should end at, in ns: the guests' ends, or their boot plus the steps'
   * waits if later (a wait_full_scans may take longer).
   */
  readonly totalNs: number;
  /** Guest pages booted so far. */
  readonly bootPagesDone: number;
  /** Guest pages to boot: every guest's pages, but only those it booted for a guest that failed. */
  readonly bootPagesTotal: number;
  /** Guest writes and reads done after boot so far. */
  readonly accessesDone: number;
  /** Writes and reads the guests plan after boot (a guest that failed: those it did). */
  readonly accessesTotal: number;
}

/** Options of {@link runScenario}. */
export interface RunOptions {
  /** Called every `progressEverySteps` events and once at the end. */
  readonly onProgress?: (progress: RunProgress) => void;
  /** Events (guest steps, scanner wake-ups, scenario steps) between progress calls (default 64). */
  readonly progressEverySteps?: number;
  /**
   * A strategy instance of your own, used instead of the scenario's `dedup` (whose options are
   * then ignored). A fresh one per run: a strategy attaches to one hypervisor.
   */
  readonly dedup?: DedupIndex;
  /**
   * Directory that the scenario's plugin specifiers (`./my-dedup.mjs`) and relative paths are
   * resolved from: the scenario file's (default the working directory).
   */
  readonly baseDir?: string;
  /**
   * Read the guests' pages back and compare them with what was written (`pagevisor run --verify`):
   * `true`, or options (`samplePages`: pages drawn per guest at each timeline sample). The report
   * gets a `verify` section; every other figure stays what the run without it reports (see
   * {@link Verifier}). Default false.
   */
  readonly verify?: boolean | VerifierOptions;
  /**
   * The end-of-run audit: `'full'` (default) checks everything; `'sample'` lets the strategy check
   * its costliest invariants on a sample (InlineDedup re-hashes one indexed frame in 64), what
   * `pagevisor run` does unless `--audit full`.
   */
  readonly audit?: AuditDepth;
  /** Called at each timeline sample, before its verification reads, with the hypervisor (for tests). */
  readonly onSample?: (hv: Hypervisor, tNs: number) => void;
  /**
   * Called with `verify` once the report's figures are taken, just before the final read-back
   * (for tests: a frame corrupted here behind the hypervisor's back must be reported).
   */
  readonly beforeVerify?: (hv: Hypervisor) => void;
  /** Called once every guest has booted, as the steps start, with each guest's domain by name (ksm-diff reads the booted memory here). */
  readonly onStepsStart?: (hv: Hypervisor, domains: ReadonlyMap<string, DomId>) => void;
}

interface NamedGuest {
  readonly name: string;
  readonly guest: SyntheticGuest;
}

function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * Runs `scenario` (validated again here) and returns its report. Builds a hypervisor of
 * `machine.memoryMiB` MiB with the scenario's allocator, NUMA nodes and dedup strategy (or
 * `opts.dedup`), a domain per guest (marked mergeable unless its spec says `mergeable: false`)
 * and a {@link SyntheticGuest} for it (all starting to boot at time 0, seeded from the scenario
 * seed and the guest's index), then drives them on a simulated clock.
 *
 * Events: guest steps, the scanner's wake-ups (`dedup.nextWakeNs()` / `wake()`, for strategies
 * that scan) and the scenario's steps, which start once every guest has booted. The earliest
 * event goes first; at equal times guests go first (lower index first), then the scanner, then
 * the steps. The host is sampled every `sampleIntervalS`. The run ends once every guest is done
 * (or failed) and every step has run (or one failed); the scanner alone never keeps it going.
 * With `machine.swap` the hypervisor pages to the area(s) `makeSwap` builds (closed, temporary
 * files removed, at the end); a guest paused by a failed swap-in (EIO) or EAGAIN is unpaused
 * (`unpauseDomain`) at its retry and its pauses go to `swap.pauses`. `compareBaseline` first runs
 * the scenario in the other swap mode without faults (with the scenario's own dedup strategy,
 * even when `opts.dedup` is given) and reports its disk peak beside this run's.
 * With `verify`, guests record what each page should hold, a sample of pages is compared at each
 * timeline sample without changing the simulation, and once every figure of the report is taken
 * every page is read back through `readPage` and compared: the report is the one without
 * `verify` plus its `verify` section (and `wall.verifyMs`).
 * Everything in the report but `wall` depends only on the scenario, its seed and the strategy.
 * @throws ScenarioError when the scenario is invalid, the strategy refuses its options, or a
 *   wait_full_scans step meets a strategy without a full_scans counter.
 * @throws InvariantError when the hypervisor's audit finds a broken invariant at the end (a bug).
 */
export async function runScenario(scenario: Scenario, opts: RunOptions = {}): Promise<Report> {
  const s = parseScenario(scenario);
  const swapConfig = s.machine.swap;
  let baselinePeak: number | null = null;
  if (swapConfig?.compareBaseline === true) {
    // The other mode, same scenario, no injected faults: only its disk peak is reported.
    const other = swapConfig.mode === 'shared' ? 'per-domain' : 'shared';
    const { faults: _faults, ...rest } = swapConfig;
    const baseline = await runScenario({ ...s, machine: { ...s.machine, swap: { ...rest, mode: other, compareBaseline: false } } });
    baselinePeak = baseline.swap!.mode === 'shared' ? baseline.swap!.swapDiskBytesShared : baseline.swap!.swapDiskBytesPerDomain;
  }
  const tStart = performance.now();
  const frames = mibToPages(s.machine.memoryMiB);
  const { context, bind } = partsContext(frames, s.machine.numaNodes, s.seed, opts.baseDir ?? process.cwd());
  // Every plugin is loaded and built before anything runs: a bad one stops the run here.
  const built = opts.dedup === undefined ? await makeDedup(s.dedup, context) : undefined;
  const dedup = opts.dedup ?? built!.part;
  const allocator = await makeAllocator(s.machine.allocator, context);
  let swap: SwapSetup | undefined;
  try {
    if (swapConfig !== undefined) {
      const pages = s.guests.map((g) => mibToPages(g.memoryMiB));
      swap = await makeSwap(swapConfig, {
        ...context,
        guestPages: s.guests.reduce((n, g, i) => n + g.count * pages[i]!, 0),
        largestGuestPages: Math.max(...pages),
      });
    }
    const hv = await Hypervisor.create({
      frames,
      contents: s.machine.contents,
      allocator: allocator.part,
      dedup,
      numaNodes: s.machine.numaNodes,
      mitigations: s.machine.mitigations,
      ...(swap === undefined ? {} : { swap: swap.options }),
    });
    bind(hv);
    const plugins: RunPlugins = { dedup: built?.loaded, allocator: allocator.loaded, swap };
    return run(s, hv, dedup, opts, tStart, baselinePeak, plugins);
  } finally {
    swap?.close();
  }
}

/** The plugins a run was built from, for the report. */
interface RunPlugins {
  readonly dedup: LoadedPlugin<'dedup'> | undefined;
  readonly allocator: LoadedPlugin<'allocator'>;
  readonly swap: SwapSetup | undefined;
}

/**
 * The module specifiers of the parts that are not built-ins, for a report (`{ plugins: { strategy:
 * "./mine.mjs" } }`); nothing when every part is built in, so reports of built-ins stay as they were.
 */
/** What a timeline sample records of `hv` at simulated time `tNs`: O(domains), whatever the RAM size. */
export function timelineSample(hv: Hypervisor, tNs: number): TimelineSample {
  const t = hv.totals();
  const w = hv.swapStats();
  return {
    tNs,
    guestPages: t.guestPages,
    machineFramesUsed: t.machineFramesUsed,
    pagesShared: t.pagesShared,
    pagesSharing: t.pagesSharing,
    zeroPages: t.zeroPages,
    cowFaults: t.cowFaults,
    zeroFaults: t.zeroFaults,
    pagedPages: t.pagedPages,
    swapOuts: w?.swapOuts ?? 0,
    swapIns: w?.swapIns ?? 0,
    swapSlotsUsed: w?.swapSlotsUsed ?? 0,
    swapDiskBytes: w?.diskBytesUsed ?? 0,
  };
}

/** The machine's page buffers that it hashes in place, for the guests' scratch pages, when it has them. */
function pageBufferOf(hv: Hypervisor): { pageBuffer?: (pages: number) => Uint8Array } {
  const memory = hv.memory;
  return memory.pageBuffer === undefined ? {} : { pageBuffer: (pages) => memory.pageBuffer!(pages) };
}

function pluginsOf(parts: Readonly<Record<string, LoadedPlugin>>): { plugins?: Record<string, string> } {
  const specifiers = Object.fromEntries(Object.entries(parts).filter(([, l]) => !l.builtIn).map(([k, l]) => [k, l.specifier]));
  return Object.keys(specifiers).length === 0 ? {} : { plugins: specifiers };
}

function run(s: Scenario, hv: Hypervisor, dedup: DedupIndex, opts: RunOptions, tStart: number, baselinePeak: number | null, plugins: RunPlugins): Report {
  const frames = mibToPages(s.machine.memoryMiB);
  checkStepsAgainst(hv, s);
  const durationNs = Math.round(s.durationS * NS_PER_S);

  const verifyOptions = opts.verify === undefined || opts.verify === false ? undefined : opts.verify === true ? {} : opts.verify;
  // On a machine of fingerprints a guest reads back bytes generated from them: the content models predict those.
  const contentFingerprints = verifyOptions !== undefined && hv.memory.contents === 'fingerprints' ? new Fingerprinter() : null;
  const guests: NamedGuest[] = [];
  const stepGuests = new Map<string, StepGuest>();
  for (const spec of s.guests) {
    for (const name of domainNames(spec)) {
      const domId = hv.createDomain({ name, maxPages: mibToPages(spec.memoryMiB), trustGroup: spec.trustGroup });
      if (spec.mergeable) hv.setDomainMergeable(domId, true);
      const seed = mixSeed(s.seed, guests.length);
      const hypercalls = new HypercallClient(hv, domId);
      const guest = new SyntheticGuest(spec, domId, seed, { memory: hv, hypercalls, control: hv, ...pageBufferOf(hv) }, { durationNs, trackContent: verifyOptions !== undefined, contentFingerprints });
      guests.push({ name, guest });
      stepGuests.set(name, guest.content === null ? { domId, shim: guest.shim } : { domId, shim: guest.shim, content: guest.content });
    }
  }
  const verifier =
    verifyOptions === undefined
      ? undefined
      : new Verifier(
          hv,
          guests.map(({ name, guest }) => ({
            name,
            domId: guest.domId,
            pages: guest.pages,
            content: guest.content!,
            notVerifiedReason: () => (guest.failure === null ? null : `failed: ${guest.failure.errno} at ${guest.failure.op}`),
          })),
          s.seed,
          verifyOptions,
        );
  const steps = new StepRunner(s.steps, hv, stepGuests, (name, child) => {
    if (verifier === undefined) return;
    verifier.addGuest({ name, domId: child.domId, pages: child.content!.pages, content: child.content!, notVerifiedReason: () => null });
  });
  const waitsNs = s.steps.reduce((ns, st) => ns + (st.op === 'wait' ? Math.round(st.ms * NS_PER_MS) : 0), 0);
  const totalNs = Math.max(...guests.map((g) => Math.max(g.guest.endNs, g.guest.bootEndNs + waitsNs)));
  const tSetup = performance.now();

  const queue = new EventQueue(guests.length);
  guests.forEach((g, i) => queue.push(i, g.guest.nextEventNs()));
  const clock = new SimClock();
  const sampleNs = Math.round(s.sampleIntervalS * NS_PER_S);
  const timeline: TimelineSample[] = [];
  const failures: FailureRecord[] = [];
  const sample = (): void => {
    timeline.push(timelineSample(hv, clock.nowNs()));
    opts.onSample?.(hv, clock.nowNs());
    verifier?.sample(clock.nowNs());
  };
  const pauses: PauseRecord[] = [];
  const progress = (simNs: number): RunProgress => {
    let bootPagesDone = 0;
    let bootPagesTotal = 0;
    let accessesDone = 0;
    let accessesTotal = 0;
    for (const { guest } of guests) {
      const failed = guest.failure !== null;
      const accesses = guest.writesDone + guest.readsDone;
      bootPagesDone += guest.pagesBooted;
      bootPagesTotal += failed ? guest.pagesBooted : guest.pages;
      accessesDone += accesses;
      accessesTotal += failed ? accesses : guest.writesPlanned + guest.readsPlanned;
    }
    return { simNs, totalNs, bootPagesDone, bootPagesTotal, accessesDone, accessesTotal };
  };
  const everySteps = opts.progressEverySteps ?? 64;
  let samples = 0;
  let events = 0;

  // The scanner is not in the queue: its next wake-up can move after any event (a step sets
  // run = 1, a guest populates its first pages), so it is asked again after each one.
  const scans = typeof dedup.nextWakeNs === 'function' && typeof dedup.wake === 'function';
  const scannerAfter = (t: number): number => {
    if (!scans) return Infinity;
    const next = dedup.nextWakeNs!();
    invariant(next === next, `dedup strategy ${dedup.name}: nextWakeNs() is NaN`);
    return next < t ? t : next;
  };
  let scanNs = scannerAfter(0);
  let booting = guests.filter((g) => g.guest.state === 'booting').length;
  const startSteps = (t: number): void => {
    opts.onStepsStart?.(hv, new Map(guests.map(({ name, guest }) => [name, guest.domId])));
    steps.start(t);
  };
  if (booting === 0) startSteps(0);

  while (queue.size > 0 || !steps.done) {
    if (queue.size === 0 && scanNs === Infinity && steps.waitingForScans) {
      steps.stall(clock.nowNs());
      continue;
    }
    const tg = queue.peekTimeNs();
    const tp = steps.nextNs;
    const t = Math.min(tg, scanNs, tp);
    invariant(t !== Infinity, 'event loop: nothing to do, yet the run is not over');
    // A sample at time T shows the state after every event before T.
    while (samples * sampleNs <= t) {
      // The schema bounds the run's length; an event far beyond it is a bug (say, of a strategy).
      invariant(samples <= MAX_SAMPLES + 1, `event loop: an event at ${t} ns is past any end the scenario allows`);
      clock.advanceTo(samples++ * sampleNs);
      sample();
    }
    clock.advanceTo(t);
    if (tg === t) {
      const i = queue.pop();
      const { name, guest } = guests[i]!;
      const wasBooting = guest.state === 'booting';
      // A failed swap-in paused the domain; its retry is due now.
      if (guest.paused && hv.isPaused(guest.domId)) hv.unpauseDomain(guest.domId);
      guest.step(t);
      const failure = guest.failure;
      if (failure !== null) {
        failures.push({ guest: name, domId: guest.domId, ...failure });
      } else {
        if (guest.paused) pauses.push({ guest: name, domId: guest.domId, ...guest.lastPause! });
        const next = guest.nextEventNs();
        invariant(next >= t, `guest ${name} asked for an event at ${next} ns, before now (${t} ns)`);
        if (next !== Infinity) queue.push(i, next);
      }
      if (wasBooting && guest.state !== 'booting' && --booting === 0) startSteps(t);
    } else if (scanNs === t) {
      hv.wakeDedup(t);
      const next = dedup.nextWakeNs!();
      invariant(next > t, `dedup strategy ${dedup.name} asked to wake at ${next} ns right after waking at ${t} ns`);
      scanNs = next;
      steps.afterScannerWake(t);
    } else {
      steps.run(t);
    }
    if (scans) scanNs = scannerAfter(t);
    if (opts.onProgress !== undefined && ++events % everySteps === 0) {
      opts.onProgress(progress(t));
    }
  }
  const simulatedNs = clock.nowNs();
  while (samples * sampleNs <= simulatedNs) {
    clock.advanceTo(samples++ * sampleNs);
    sample();
  }
  if (timeline.at(-1)!.tNs !== simulatedNs) sample();

  const problems = hv.audit(opts.audit ?? 'full');
  if (problems.length > 0) {
    throw new InvariantError(`hypervisor audit failed after the run:\n  ${problems.join('\n  ')}`);
  }
  const end = progress(simulatedNs);
  opts.onProgress?.(end);
  // Guest page operations done: pages booted, writes and reads.
  const done = end.bootPagesDone + end.accessesDone;
  const tEnd = performance.now();

  const guestRecords: GuestRecord[] = guests.map(({ name, guest }) => ({
    name,
    domId: guest.domId,
    state: guest.state,
    pages: guest.pages,
    pagesBooted: guest.pagesBooted,
    writes: guest.writesDone,
    wholePageWrites: guest.wholePageWrites,
    ...(guest.readsPlanned > 0 ? { reads: guest.readsDone } : {}),
    ...(guest.pauses > 0 ? { pauses: guest.pauses } : {}),
  }));
  const swapConfig = s.machine.swap;
  let swapReport: SwapReport | undefined;
  if (swapConfig !== undefined) {
    const st = hv.swapStats()!;
    const shared = swapConfig.mode === 'shared';
    swapReport = {
      mode: swapConfig.mode,
      device: plugins.swap!.device.plugin.name,
      compression: swapConfig.compression ?? 'none',
      policy: plugins.swap!.policy.loaded.plugin.name,
      backend: plugins.swap!.backend.plugin.name,
      ...pluginsOf({ policy: plugins.swap!.policy.loaded, backend: plugins.swap!.backend, device: plugins.swap!.device }),
      swapOuts: st.swapOuts,
      swapIns: st.swapIns,
      swapInsCached: st.swapInsCached,
      swapInsDeduped: st.swapInsDeduped,
      swapSlotsUsed: st.swapSlotsUsed,
      swapBytesWritten: st.swapBytesWritten,
      slotsSavedByDedup: st.slotsSavedByDedup,
      compressionRatio: st.compressionRatio,
      evictionFailures: st.evictionFailures,
      swapInFailures: st.swapInFailures,
      swapDiskBytesShared: shared ? st.diskBytesPeak : baselinePeak,
      swapDiskBytesPerDomain: shared ? baselinePeak : st.diskBytesPeak,
      pauses,
    };
  }
  const totals = hv.totals();
  const runMs = tEnd - tSetup;
  const report: Report = {
    pagevisor: VERSION,
    scenario: s.name,
    seed: s.seed,
    config: {
      machine: {
        memoryMiB: s.machine.memoryMiB,
        frames,
        contents: s.machine.contents,
        allocator: plugins.allocator.plugin.name,
        ...pluginsOf({ allocator: plugins.allocator }),
        numaNodes: s.machine.numaNodes,
        ...(swapConfig === undefined ? {} : { swap: withoutPath(swapConfig) }),
      },
      dedup: opts.dedup === undefined ? { ...s.dedup } : { strategy: dedup.name },
      durationS: s.durationS,
      sampleIntervalS: s.sampleIntervalS,
      guests: s.guests,
      steps: s.steps,
    },
    simulatedNs,
    totals: { ...totals, failedGuests: failures.length, failedSteps: steps.failed ? 1 : 0, duplicateFrames: hv.duplicateFrames() },
    cpu: { guestNs: totals.cpuNs, dedupNs: totals.dedupCpuNs, totalNs: totals.cpuNs + totals.dedupCpuNs },
    memory: memoryReport(hv, totals.guestPages),
    domains: hv.allDomainStats(),
    dedup: {
      strategy: plugins.dedup?.plugin.name ?? dedup.name,
      ...(plugins.dedup === undefined ? {} : pluginsOf({ strategy: plugins.dedup })),
      convergedAtNs: convergedAtNs(timeline, (x) => x.machineFramesUsed),
      stats: { ...dedup.stats() },
      knobs: { ...(dedup.knobs?.() ?? {}) },
    },
    guests: guestRecords,
    ...(swapReport === undefined ? {} : { swap: swapReport }),
    timeline,
    failures,
    steps: steps.results,
    checkpoints: steps.checkpoints,
    wall: {
      setupMs: roundMs(tSetup - tStart),
      runMs: roundMs(runMs),
      totalMs: roundMs(tEnd - tStart),
      guestPagesPerS: runMs > 0 ? Math.round((done * 1000) / runMs) : 0,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    },
  };
  if (verifier === undefined) return report;
  // Every figure above is taken: the read-back may fault pages in and evict others.
  opts.beforeVerify?.(hv);
  const tVerify = performance.now();
  const verify = verifier.finish(simulatedNs);
  const tDone = performance.now();
  const { wall, ...figures } = report;
  return {
    ...figures,
    verify,
    wall: { ...wall, totalMs: roundMs(tDone - tStart), peakRssBytes: process.resourceUsage().maxRSS * 1024, verifyMs: roundMs(tDone - tVerify) },
  };
}

/** The hypervisor's metadata by part; the parts add up to `hv.metadataBytes()`. */
function memoryReport(hv: Hypervisor, guestPages: number): MemoryReport {
  const metadataBytes = hv.metadataBytes();
  const reverseMapBytes = hv.p2m.rmap.metadataBytes();
  const frameTableBytes = hv.frames.metadataBytes();
  const p2mTableBytes = hv.p2m.metadataBytes() - reverseMapBytes;
  const dedupBytes = hv.dedup.metadataBytes();
  return {
    metadataBytes,
    metadataBytesPerGuestPage: guestPages === 0 ? 0 : Math.round((metadataBytes / guestPages) * 100) / 100,
    frameTableBytes,
    p2mTableBytes,
    reverseMapBytes,
    dedupBytes,
    hypervisorBytes: metadataBytes - frameTableBytes - p2mTableBytes - reverseMapBytes - dedupBytes,
  };
}

/** Refuses, before anything runs, wait_full_scans steps under a strategy that counts no full scans. */
function checkStepsAgainst(hv: Hypervisor, s: Scenario): void {
  if (fullScansOf(hv) !== undefined) return;
  const issues: string[] = [];
  s.steps.forEach((step, i) => {
    if (step.op === 'wait_full_scans') {
      issues.push(`steps[${i}].op: wait_full_scans needs a strategy that counts full_scans; "${hv.dedup.name}" does not (use wait)`);
    }
  });
  if (issues.length > 0) throw new ScenarioError(issues);
}

/** The swap configuration as reports show it: a file path differs between runs, so it is left out. */
function withoutPath(config: NonNullable<Scenario['machine']['swap']>): Omit<typeof config, 'path'> {
  const { path: _path, ...rest } = config;
  return rest;
}
