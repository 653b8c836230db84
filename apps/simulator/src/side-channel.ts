import { createDedup } from '@pagevisor/dedup';
import { Hypervisor, type Mitigations } from '@pagevisor/hypervisor';
import { asGfn, mixSeed, PAGE_SIZE, Prng } from '@pagevisor/types';
import { parseScenario, type Scenario } from '@pagevisor/workloads';
import { runScenario } from './run-scenario.js';
import { count } from './summary.js';

/** The mitigations an attack can run against ('none': no mitigation). */
export const MITIGATION_NAMES = ['none', 'trust-groups', 'zero-pages-only', 'uniform-writes'] as const;

/** Name of a mitigation. */
export type MitigationName = (typeof MITIGATION_NAMES)[number];

/** Strategies the attack runs against: one that merges at write time, one that scans. */
export const ATTACKED_STRATEGIES = ['inline', 'ksm'] as const;

/** A strategy the attack runs against. */
export type AttackedStrategy = (typeof ATTACKED_STRATEGIES)[number];

/** Options of {@link runAttack}. */
export interface AttackOptions {
  readonly strategy: AttackedStrategy;
  readonly mitigation: MitigationName;
  /** Trials (one guess each), at least 1; run in batches of {@link TRIALS_PER_HOST} per host. */
  readonly trials: number;
  readonly seed: number;
}

/** What the attacker achieved. */
export interface AttackResult {
  readonly strategy: AttackedStrategy;
  readonly mitigation: MitigationName;
  readonly trials: number;
  /** Trials in which the victim held the guessed page. */
  readonly victimHeld: number;
  /** Trials the attacker decided right. */
  readonly correct: number;
  /** correct / trials. */
  readonly accuracy: number;
  /** Mean simulated ns of the timed write when the victim held the page, and when it did not. */
  readonly meanWriteNsHeld: number;
  readonly meanWriteNsNotHeld: number;
}

/** Guesses tested on one host: each is an independent trial (distinct random contents). */
export const TRIALS_PER_HOST = 100;

const VICTIM_GROUP = 1;
const ATTACKER_GROUP = 2;
// Enough full scans for KSM to merge a page seen unchanged in two scans, with margin.
const MERGE_WINDOW_FULL_SCANS = 3;

/**
 * The published de-duplication attack (Suzaki et al.; Bosman et al.'s Dedup Est Machina) on the
 * simulated clock: a victim domain holds, or not (a fair coin per trial), a secret page; the
 * attacker plants a page with the guessed content, waits for the merge window, then times a
 * one-byte write to it. A write to a merged page takes a copy-on-write fault, so it is slower
 * than a write to a private page: the attacker calibrates "private" with pages of content nobody
 * else has, planted alongside and timed the same way, and decides "held" when the guess's write
 * is slower than the slowest calibration write. Time is the attacker domain's simulated CPU, its
 * `rdtsc`.
 */
export async function runAttack(opts: AttackOptions): Promise<AttackResult> {
  const { strategy, mitigation, trials, seed } = opts;
  if (!Number.isSafeInteger(trials) || trials < 1) throw new RangeError(`trials must be a positive integer, got ${trials}`);
  let victimHeld = 0;
  let correct = 0;
  let heldNs = 0;
  let notHeldNs = 0;
  for (let done = 0, batch = 0; done < trials; batch++) {
    const n = Math.min(TRIALS_PER_HOST, trials - done);
    const r = await attackBatch(strategy, mitigation, n, mixSeed(seed, batch));
    victimHeld += r.held;
    correct += r.correct;
    heldNs += r.heldNs;
    notHeldNs += r.notHeldNs;
    done += n;
  }
  return {
    strategy,
    mitigation,
    trials,
    victimHeld,
    correct,
    accuracy: correct / trials,
    meanWriteNsHeld: victimHeld === 0 ? 0 : heldNs / victimHeld,
    meanWriteNsNotHeld: trials === victimHeld ? 0 : notHeldNs / (trials - victimHeld),
  };
}

interface BatchResult {
  held: number;
  correct: number;
  heldNs: number;
  notHeldNs: number;
}

async function attackBatch(strategy: AttackedStrategy, mitigation: MitigationName, n: number, seed: number): Promise<BatchResult> {
  const rng = new Prng(seed);
  const hv = await Hypervisor.create({
    frames: 8 * n + 64,
    dedup: createDedup(strategy, mitigation === 'trust-groups' ? { trustGroups: true } : {}),
    mitigations: mitigationsOf(mitigation),
  });
  const groups = mitigation === 'trust-groups';
  const victim = hv.createDomain({ name: 'victim', maxPages: 2 * n, trustGroup: groups ? VICTIM_GROUP : 0 });
  const attacker = hv.createDomain({ name: 'attacker', maxPages: 2 * n, trustGroup: groups ? ATTACKER_GROUP : 0 });
  hv.setDomainMergeable(victim, true);
  hv.setDomainMergeable(attacker, true);
  hv.populatePhysmap(victim, range(n));
  hv.populatePhysmap(attacker, range(2 * n));

  const page = new Uint8Array(PAGE_SIZE);
  const held: boolean[] = [];
  for (let i = 0; i < n; i++) {
    // The secret: the guessed content (trial i's), or other content of the victim's own.
    held.push(rng.nextU32() % 2 === 0);
    const guess = mixSeed(seed, i + 1);
    fill(page, held[i]! ? guess : mixSeed(guess, 0x5ec));
    hv.writePage(victim, asGfn(i), 0, page, 0, PAGE_SIZE);
  }
  // The attacker plants its guesses at 0..n-1 and its calibration pages at n..2n-1.
  for (let i = 0; i < n; i++) {
    fill(page, mixSeed(seed, i + 1));
    hv.writePage(attacker, asGfn(i), 0, page, 0, PAGE_SIZE);
    fill(page, mixSeed(seed, 0xca1 + i) ^ 0x9e3779b9);
    hv.writePage(attacker, asGfn(n + i), 0, page, 0, PAGE_SIZE);
  }
  waitForMergeWindow(hv);

  const time = (gfn: number): number => {
    const before = hv.domainStats(attacker).cpuNs;
    hv.writePage(attacker, asGfn(gfn), 0, ONE_BYTE, 0, 1);
    return hv.domainStats(attacker).cpuNs - before;
  };
  let threshold = 0;
  for (let i = 0; i < n; i++) threshold = Math.max(threshold, time(n + i));
  const r: BatchResult = { held: 0, correct: 0, heldNs: 0, notHeldNs: 0 };
  for (let i = 0; i < n; i++) {
    const ns = time(i);
    const saysHeld = ns > threshold;
    if (saysHeld === held[i]) r.correct++;
    if (held[i]) {
      r.held++;
      r.heldNs += ns;
    } else r.notHeldNs += ns;
  }
  const problems = hv.audit();
  if (problems.length > 0) throw new Error(`side-channel attack: audit failed: ${problems.join('; ')}`);
  return r;
}

const ONE_BYTE = Uint8Array.of(0xa5);

/** Wakes a scanning strategy until it has made MERGE_WINDOW_FULL_SCANS full scans; inline merges at write. */
function waitForMergeWindow(hv: Hypervisor): void {
  const dedup = hv.dedup;
  if (dedup.nextWakeNs === undefined) return;
  const scans = (): number => dedup.stats()['full_scans'] ?? 0;
  const target = scans() + MERGE_WINDOW_FULL_SCANS;
  while (scans() < target) hv.wakeDedup(dedup.nextWakeNs());
}

function mitigationsOf(m: MitigationName): Mitigations {
  return { zeroPagesOnly: m === 'zero-pages-only', uniformWrites: m === 'uniform-writes' };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Fills `page` with pseudo-random words from `seed`: distinct seeds give distinct pages. */
function fill(page: Uint8Array, seed: number): void {
  const words = new Uint32Array(page.buffer, page.byteOffset, PAGE_SIZE / 4);
  const rng = new Prng(seed);
  for (let i = 0; i < words.length; i++) words[i] = rng.nextU32();
}

/** The savings a mitigation keeps: frames and saved share of a multi-tenant scenario under it. */
export interface SavingsResult {
  readonly mitigation: MitigationName;
  readonly guestPages: number;
  readonly machineFramesUsed: number;
  readonly savedPct: number;
  readonly cowFaults: number;
}

/**
 * The multi-tenant scenario the savings are measured on: four guests of two tenants (trust
 * groups 0 and 1 under the trust-groups mitigation, else all in 0), booting one image (half
 * their pages) plus 20% zero pages, with KSM (or the given strategy) until it converges.
 */
export function savingsScenario(strategy: AttackedStrategy, mitigation: MitigationName, seed: number): Scenario {
  const groups = mitigation === 'trust-groups';
  return parseScenario({
    name: `side-channel-savings-${mitigation}`,
    seed,
    machine: { memoryMiB: 96, mitigations: mitigationsOf(mitigation) },
    dedup: { strategy, ...(groups ? { trustGroups: true } : {}) },
    durationS: strategy === 'ksm' ? 20 : 1,
    sampleIntervalS: 1,
    guests: [0, 1, 2, 3].map((i) => ({
      name: `tenant${i % 2}-vm${i >> 1}`,
      memoryMiB: 16,
      image: { id: 'debian-12', fraction: 0.5 },
      zeroFraction: 0.2,
      writeRatePagesPerS: 0,
      trustGroup: groups ? i % 2 : 0,
    })),
  });
}

/** Runs {@link savingsScenario} and returns its end figures. */
export async function measureSavings(strategy: AttackedStrategy, mitigation: MitigationName, seed: number): Promise<SavingsResult> {
  const report = await runScenario(savingsScenario(strategy, mitigation, seed));
  const t = report.totals;
  return { mitigation, guestPages: t.guestPages, machineFramesUsed: t.machineFramesUsed, savedPct: t.savedPct, cowFaults: t.cowFaults };
}

/** One row of {@link SideChannelReport}: the attack and the savings under one mitigation. */
export interface SideChannelRow {
  readonly attack: AttackResult;
  readonly savings: SavingsResult;
}

/** `pagevisor attack`'s report: every mitigation against one strategy. */
export interface SideChannelReport {
  readonly strategy: AttackedStrategy;
  readonly trials: number;
  readonly seed: number;
  readonly rows: readonly SideChannelRow[];
}

/** Runs the attack and the savings scenario under every mitigation. */
export async function sideChannelReport(strategy: AttackedStrategy, trials: number, seed: number): Promise<SideChannelReport> {
  const rows: SideChannelRow[] = [];
  for (const mitigation of MITIGATION_NAMES) {
    rows.push({ attack: await runAttack({ strategy, mitigation, trials, seed }), savings: await measureSavings(strategy, mitigation, seed) });
  }
  return { strategy, trials, seed, rows };
}

/** The report as a table: accuracy, write times, frames and savings per mitigation. */
export function formatSideChannel(r: SideChannelReport): string {
  const lines = [
    `De-duplication timing attack, ${r.strategy}, ${count(r.trials)} trials (seed ${r.seed}); savings on 4 guests of 2 tenants`,
    '',
    `${'mitigation'.padEnd(16)}${'accuracy'.padStart(9)}${'write held'.padStart(12)}${'not held'.padStart(10)}${'frames'.padStart(8)}${'saved'.padStart(8)}${'cow faults'.padStart(12)}`,
  ];
  for (const { attack: a, savings: s } of r.rows) {
    lines.push(
      `${a.mitigation.padEnd(16)}${`${(a.accuracy * 100).toFixed(1)}%`.padStart(9)}${`${count(Math.round(a.meanWriteNsHeld))} ns`.padStart(12)}${`${count(Math.round(a.meanWriteNsNotHeld))} ns`.padStart(10)}${count(s.machineFramesUsed).padStart(8)}${`${s.savedPct.toFixed(1)}%`.padStart(8)}${count(s.cowFaults).padStart(12)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
