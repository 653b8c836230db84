import { HypercallClient } from '@pagevisor/hypercall-abi';
import { Hypervisor } from '@pagevisor/hypervisor';
import { makeAllocator, makeDedup, partsContext } from '@pagevisor/simulator';
import { mibToPages, mixSeed, NS_PER_S } from '@pagevisor/types';
import { domainNames, parseScenario, SyntheticGuest, type Scenario } from '@pagevisor/workloads';
import { throwProblems } from '../suite-context.js';

/** Where a scenario driven in this process ended. */
export interface DrivenScenario {
  /** The hypervisor, for figures the simulator's report does not carry (metadata bytes). */
  readonly hv: Hypervisor;
  /** Guests that failed (e.g. ENOMEM). */
  readonly failedGuests: number;
  /** Simulated time at the end, in ns. */
  readonly simulatedNs: number;
  /** Name of the strategy's plugin (`inline`, or a plugin's name). */
  readonly strategy: string;
}

/** Options of {@link driveScenario}. */
export interface DriveOptions {
  /** Where the scenario's plugin specifiers are resolved from (default: the working directory). */
  readonly baseDir?: string;
}

/**
 * Runs `scenario`'s guests to their end in this process, in the simulator's event order (the
 * earliest event first; at equal times guests by index, then the scanner), without swap, steps,
 * samples or report: enough to look at the hypervisor's state afterwards. The strategy and the
 * allocator are built by the simulator's own `makeDedup` and `makeAllocator` (built-ins or
 * plugins), from the same context as a run of the simulator. A scenario with steps or swap is
 * refused (the simulator's `runScenario` is the reference for those).
 * @throws PluginError when the strategy or the allocator cannot be built.
 */
export async function driveScenario(scenario: Scenario, opts: DriveOptions = {}): Promise<DrivenScenario> {
  const s = parseScenario(scenario);
  if (s.steps.length > 0 || s.machine.swap !== undefined) throw new Error(`driveScenario: scenario "${s.name}" has steps or swap; run it with the simulator`);
  const frames = mibToPages(s.machine.memoryMiB);
  const { context, bind } = partsContext(frames, s.machine.numaNodes, s.seed, opts.baseDir ?? process.cwd());
  const built = await makeDedup(s.dedup, context);
  const dedup = built.part;
  const allocator = await makeAllocator(s.machine.allocator, context);
  const hv = await Hypervisor.create({ frames, allocator: allocator.part, dedup, numaNodes: s.machine.numaNodes, mitigations: s.machine.mitigations });
  bind(hv);
  const durationNs = Math.round(s.durationS * NS_PER_S);
  const guests: SyntheticGuest[] = [];
  for (const spec of s.guests) {
    for (const name of domainNames(spec)) {
      const domId = hv.createDomain({ name, maxPages: mibToPages(spec.memoryMiB), trustGroup: spec.trustGroup });
      if (spec.mergeable) hv.setDomainMergeable(domId, true);
      const seed = mixSeed(s.seed, guests.length);
      guests.push(new SyntheticGuest(spec, domId, seed, { memory: hv, hypercalls: new HypercallClient(hv, domId) }, { durationNs }));
    }
  }
  const scans = typeof dedup.nextWakeNs === 'function' && typeof dedup.wake === 'function';
  const next = guests.map((g) => g.nextEventNs());
  let failed = 0;
  let now = 0;
  for (;;) {
    let i = -1;
    for (let k = 0; k < next.length; k++) if (next[k]! !== Infinity && (i < 0 || next[k]! < next[i]!)) i = k;
    const tg = i < 0 ? Infinity : next[i]!;
    // Like the simulator, the scanner alone does not keep the run going.
    if (tg === Infinity) break;
    const ts = scans ? Math.max(now, dedup.nextWakeNs!()) : Infinity;
    if (ts < tg) {
      now = ts;
      hv.wakeDedup(ts);
      continue;
    }
    now = tg;
    const g = guests[i]!;
    if (g.paused && hv.isPaused(g.domId)) hv.unpauseDomain(g.domId);
    g.step(tg);
    if (g.failure !== null) {
      failed++;
      next[i] = Infinity;
    } else {
      next[i] = g.nextEventNs();
    }
  }
  throwProblems(`driveScenario: audit after "${s.name}"`, hv.audit());
  return { hv, failedGuests: failed, simulatedNs: now, strategy: built.loaded.plugin.name };
}
