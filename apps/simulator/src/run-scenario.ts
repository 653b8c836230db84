import { performance } from 'node:perf_hooks';
import { createDedup } from '@pagevisor/dedup';
import { HypercallClient } from '@pagevisor/hypercall-abi';
import { Hypervisor } from '@pagevisor/hypervisor';
import { InvariantError, invariant, mibToPages, mixSeed, NS_PER_S, SimClock } from '@pagevisor/types';
import { domainNames, parseScenario, SyntheticGuest, type Scenario } from '@pagevisor/workloads';
import { EventQueue } from './event-queue.js';
import type { FailureRecord, GuestRecord, Report, TimelineSample } from './report.js';
import { VERSION } from './version.js';

/** Where a run is, for progress displays. */
export interface RunProgress {
  /** Simulated time reached, in ns. */
  readonly simNs: number;
  /** Simulated time the run will end at if no guest fails, in ns. */
  readonly totalNs: number;
  /** Guest page operations done so far (pages booted + writes). */
  readonly pagesDone: number;
}

/** Options of {@link runScenario}. */
export interface RunOptions {
  /** Called every `progressEverySteps` guest steps and once at the end. */
  readonly onProgress?: (progress: RunProgress) => void;
  /** Guest steps between progress calls (default 64). */
  readonly progressEverySteps?: number;
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
 * `machine.memoryMiB` MiB with the scenario's allocator and dedup strategy, a domain and a
 * {@link SyntheticGuest} per guest (all starting to boot at time 0, seeded from the scenario
 * seed and the guest's index), then drives them on a simulated clock, always stepping the guest
 * with the earliest next event (ties: lower index), sampling the host every `sampleIntervalS`.
 * Everything in the report but `wall` depends only on the scenario and its seed.
 * @throws InvariantError when the hypervisor's audit finds a broken invariant at the end (a bug).
 */
export async function runScenario(scenario: Scenario, opts: RunOptions = {}): Promise<Report> {
  const tStart = performance.now();
  const s = parseScenario(scenario);
  const frames = mibToPages(s.machine.memoryMiB);
  const hv = await Hypervisor.create({ frames, allocator: s.machine.allocator, dedup: createDedup(s.dedup.strategy) });
  const durationNs = Math.round(s.durationS * NS_PER_S);

  const guests: NamedGuest[] = [];
  for (const spec of s.guests) {
    for (const name of domainNames(spec)) {
      const domId = hv.createDomain({ name, maxPages: mibToPages(spec.memoryMiB) });
      const seed = mixSeed(s.seed, guests.length);
      const ports = { memory: hv, hypercalls: new HypercallClient(hv, domId) };
      guests.push({ name, guest: new SyntheticGuest(spec, domId, seed, ports, { durationNs }) });
    }
  }
  const totalNs = Math.max(...guests.map((g) => g.guest.endNs));
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
  let steps = 0;

  while (queue.size > 0) {
    const t = queue.peekTimeNs();
    // A sample at time T shows the state after every event before T.
    while (samples * sampleNs <= t) {
      clock.advanceTo(samples++ * sampleNs);
      sample();
    }
    const i = queue.pop();
    clock.advanceTo(t);
    const { name, guest } = guests[i]!;
    guest.step(t);
    const failure = guest.failure;
    if (failure !== null) {
      failures.push({ guest: name, domId: guest.domId, ...failure });
    } else {
      const next = guest.nextEventNs();
      invariant(next >= t, `guest ${name} asked for an event at ${next} ns, before now (${t} ns)`);
      if (next !== Infinity) queue.push(i, next);
    }
    if (opts.onProgress !== undefined && ++steps % everySteps === 0) {
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
  const runMs = tEnd - tSetup;
  return {
    pagevisor: VERSION,
    scenario: s.name,
    seed: s.seed,
    config: {
      machine: { memoryMiB: s.machine.memoryMiB, frames, allocator: s.machine.allocator },
      dedup: { strategy: s.dedup.strategy },
      durationS: s.durationS,
      sampleIntervalS: s.sampleIntervalS,
      guests: s.guests,
    },
    simulatedNs,
    totals: { ...hv.totals(), failedGuests: failures.length },
    domains: hv.allDomainStats(),
    dedup: { ...hv.dedup.stats() },
    guests: guestRecords,
    timeline,
    failures,
    wall: {
      setupMs: roundMs(tSetup - tStart),
      runMs: roundMs(runMs),
      totalMs: roundMs(tEnd - tStart),
      guestPagesPerS: runMs > 0 ? Math.round((done * 1000) / runMs) : 0,
    },
  };
}
