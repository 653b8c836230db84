import { performance } from 'node:perf_hooks';
import { HypercallClient } from '@pagevisor/hypercall-abi';
import { Hypervisor } from '@pagevisor/hypervisor';
import { InvariantError, invariant, mibToPages, mixSeed, NS_PER_MS, NS_PER_S, SimClock, type DedupIndex } from '@pagevisor/types';
import { domainNames, MAX_SAMPLES, parseScenario, ScenarioError, SyntheticGuest, type Scenario } from '@pagevisor/workloads';
import { convergedAtNs } from './convergence.js';
import { EventQueue } from './event-queue.js';
import { makeDedup } from './make-dedup.js';
import { fullScansOf, StepRunner, type StepGuest } from './step-runner.js';
import type { FailureRecord, GuestRecord, Report, TimelineSample } from './report.js';
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
  /** Guest page operations done so far (pages booted + writes). */
  readonly pagesDone: number;
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
 * Everything in the report but `wall` depends only on the scenario, its seed and the strategy.
 * @throws ScenarioError when the scenario is invalid, the strategy refuses its options, or a
 *   wait_full_scans step meets a strategy without a full_scans counter.
 * @throws InvariantError when the hypervisor's audit finds a broken invariant at the end (a bug).
 */
export async function runScenario(scenario: Scenario, opts: RunOptions = {}): Promise<Report> {
  const tStart = performance.now();
  const s = parseScenario(scenario);
  const frames = mibToPages(s.machine.memoryMiB);
  const dedup = opts.dedup ?? makeDedup(s.dedup, s.seed);
  const hv = await Hypervisor.create({ frames, allocator: s.machine.allocator, dedup, numaNodes: s.machine.numaNodes });
  checkStepsAgainst(hv, s);
  const durationNs = Math.round(s.durationS * NS_PER_S);

  const guests: NamedGuest[] = [];
  const stepGuests = new Map<string, StepGuest>();
  for (const spec of s.guests) {
    for (const name of domainNames(spec)) {
      const domId = hv.createDomain({ name, maxPages: mibToPages(spec.memoryMiB) });
      if (spec.mergeable) hv.setDomainMergeable(domId, true);
      const seed = mixSeed(s.seed, guests.length);
      const hypercalls = new HypercallClient(hv, domId);
      guests.push({ name, guest: new SyntheticGuest(spec, domId, seed, { memory: hv, hypercalls }, { durationNs }) });
      stepGuests.set(name, { domId, hypercalls });
    }
  }
  const steps = new StepRunner(s.steps, hv, stepGuests);
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
    const t = hv.totals();
    timeline.push({
      tNs: clock.nowNs(),
      guestPages: t.guestPages,
      machineFramesUsed: t.machineFramesUsed,
      pagesShared: t.pagesShared,
      pagesSharing: t.pagesSharing,
      zeroPages: t.zeroPages,
      cowFaults: t.cowFaults,
      zeroFaults: t.zeroFaults,
    });
  };
  const pagesDone = (): number => guests.reduce((n, g) => n + g.guest.opsDone, 0);
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
  if (booting === 0) steps.start(0);

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
      guest.step(t);
      const failure = guest.failure;
      if (failure !== null) {
        failures.push({ guest: name, domId: guest.domId, ...failure });
      } else {
        const next = guest.nextEventNs();
        invariant(next >= t, `guest ${name} asked for an event at ${next} ns, before now (${t} ns)`);
        if (next !== Infinity) queue.push(i, next);
      }
      if (wasBooting && guest.state !== 'booting' && --booting === 0) steps.start(t);
    } else if (scanNs === t) {
      dedup.wake!(t);
      const next = dedup.nextWakeNs!();
      invariant(next > t, `dedup strategy ${dedup.name} asked to wake at ${next} ns right after waking at ${t} ns`);
      scanNs = next;
      steps.afterScannerWake(t);
    } else {
      steps.run(t);
    }
    if (scans) scanNs = scannerAfter(t);
    if (opts.onProgress !== undefined && ++events % everySteps === 0) {
      opts.onProgress({ simNs: t, totalNs, pagesDone: pagesDone() });
    }
  }
  const simulatedNs = clock.nowNs();
  while (samples * sampleNs <= simulatedNs) {
    clock.advanceTo(samples++ * sampleNs);
    sample();
  }
  if (timeline.at(-1)!.tNs !== simulatedNs) sample();

  const problems = hv.audit();
  if (problems.length > 0) {
    throw new InvariantError(`hypervisor audit failed after the run:\n  ${problems.join('\n  ')}`);
  }
  const done = pagesDone();
  opts.onProgress?.({ simNs: simulatedNs, totalNs, pagesDone: done });
  const tEnd = performance.now();

  const guestRecords: GuestRecord[] = guests.map(({ name, guest }) => ({
    name,
    domId: guest.domId,
    state: guest.state,
    pages: guest.pages,
    pagesBooted: guest.pagesBooted,
    writes: guest.writesDone,
    wholePageWrites: guest.wholePageWrites,
  }));
  const totals = hv.totals();
  const runMs = tEnd - tSetup;
  return {
    pagevisor: VERSION,
    scenario: s.name,
    seed: s.seed,
    config: {
      machine: { memoryMiB: s.machine.memoryMiB, frames, allocator: s.machine.allocator, numaNodes: s.machine.numaNodes },
      dedup: opts.dedup === undefined ? { ...s.dedup } : { strategy: dedup.name },
      durationS: s.durationS,
      sampleIntervalS: s.sampleIntervalS,
      guests: s.guests,
      steps: s.steps,
    },
    simulatedNs,
    totals: { ...totals, failedGuests: failures.length, failedSteps: steps.failed ? 1 : 0 },
    cpu: { guestNs: totals.cpuNs, dedupNs: totals.dedupCpuNs, totalNs: totals.cpuNs + totals.dedupCpuNs },
    domains: hv.allDomainStats(),
    dedup: {
      strategy: dedup.name,
      convergedAtNs: convergedAtNs(timeline, (x) => x.machineFramesUsed),
      stats: { ...dedup.stats() },
      knobs: { ...(dedup.knobs?.() ?? {}) },
    },
    guests: guestRecords,
    timeline,
    failures,
    steps: steps.results,
    checkpoints: steps.checkpoints,
    wall: {
      setupMs: roundMs(tSetup - tStart),
      runMs: roundMs(runMs),
      totalMs: roundMs(tEnd - tStart),
      guestPagesPerS: runMs > 0 ? Math.round((done * 1000) / runMs) : 0,
    },
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
