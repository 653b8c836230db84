import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KsmDedup, knobText } from '@pagevisor/dedup';
import { asGfn, P2mType, PAGE_SIZE } from '@pagevisor/types';
import { dedupOptionsOf, domainNames, fillSeededPage, type Scenario } from '@pagevisor/workloads';
import type { CheckpointRecord, Report } from './report.js';
import { runScenario } from './run-scenario.js';

/** The replayer's C source, in the repository's tools (it is built with `cc` on first use). */
export const REPLAY_SOURCE = fileURLToPath(new URL('../../../tools/ksm-replay/ksm-replay.c', import.meta.url));

/** KSM's global counters compared (sysfs names; cumulative ones from the scenario's start). */
export const GLOBAL_COUNTERS = [
  'pages_shared',
  'pages_sharing',
  'pages_unshared',
  'pages_volatile',
  'full_scans',
  'pages_scanned',
  'pages_skipped',
  'ksm_zero_pages',
  'general_profit',
  'stable_node_chains',
  'stable_node_dups',
] as const;

/** Knobs compared at every checkpoint, for the advisor sets them (sysfs names). */
export const COMPARED_KNOBS = ['pages_to_scan'] as const;

/** Linux's madvise(2) advice numbers. */
const MADVICE = { dontneed: 4, mergeable: 12, unmergeable: 13 } as const;

/**
 * Per-process counters compared: the row's name, pagevisor's domainStats name, the kernel's
 * (/proc/PID/ksm_stat's, and PR_GET_MEMORY_MERGE as the process itself gets it).
 */
export const GUEST_COUNTERS = [
  ['rmap_items', 'rmap_items', 'ksm_rmap_items'],
  ['merging_pages', 'merging_pages', 'ksm_merging_pages'],
  ['zero_pages', 'zero_pages', 'ksm_zero_pages'],
  ['profit', 'profit', 'ksm_process_profit'],
  ['merge_any', 'merge_any', 'ksm_merge_any'],
  ['mergeable', 'mergeable', 'ksm_mergeable'],
  ['PR_GET_MEMORY_MERGE', 'merge_any', 'prctl_memory_merge'],
] as const;

/** Why the host cannot be the oracle: no KSM, no permission, another process using KSM, no `cc`. */
export class HostUnavailable extends Error {
  override readonly name = 'HostUnavailable';
}

/** A scenario the replayer cannot play on the kernel (another strategy, guests that run on their own). */
export class NotReplayable extends Error {
  override readonly name = 'NotReplayable';
}

/** One counter at one checkpoint: pagevisor's value and the kernel's. */
export interface CounterRow {
  readonly checkpoint: string;
  /** `global`, or the guest's domain name. */
  readonly scope: string;
  readonly counter: string;
  readonly pagevisor: number;
  readonly kernel: number;
}

/** A step whose outcome differs (a knob write refused on one side only, say). */
export interface StepRow {
  readonly step: number;
  readonly op: string;
  readonly pagevisor: string;
  readonly kernel: string;
}

/** The two runs side by side. */
export interface KsmDiff {
  readonly scenario: string;
  readonly rows: readonly CounterRow[];
  readonly steps: readonly StepRow[];
  /** Rows and steps that differ. */
  readonly differences: number;
}

interface KernelCheckpoint {
  readonly checkpoint: string;
  readonly global: Readonly<Record<string, number>>;
  readonly guests: readonly Readonly<Record<string, number>>[];
}

/**
 * The guests' memory once booted, as the steps start: per guest (in domain order), the pages
 * with a frame of their own, and what they hold (null: zeros). The replay touches each, as a
 * process that wrote it; the others (unpopulated, or on the zero frame) stay untouched.
 */
export type BootedMemory = readonly { readonly gfn: number; readonly page: Uint8Array | null }[][];

/**
 * The guests a scenario starts, in domain order, with their pages, then the children of its
 * fork steps in step order (the replayer numbers its processes so); refuses guests that run on
 * their own.
 */
function replayedGuests(scenario: Scenario): { name: string; pages: number; forked: boolean }[] {
  if (scenario.dedup.strategy !== 'ksm') throw new NotReplayable(`ksm-diff replays KSM scenarios; this one's strategy is ${JSON.stringify(scenario.dedup.strategy)}`);
  const guests: { name: string; pages: number; forked: boolean }[] = [];
  for (const g of scenario.guests) {
    if (g.writeRatePagesPerS !== 0 || g.image.path !== undefined) {
      throw new NotReplayable(`guest ${g.name}: ksm-diff replays guests that boot (synthetic image, zeros, private pages) and then write only through the steps: writeRatePagesPerS must be 0, and the image synthetic`);
    }
    if (g.mergeable !== false) throw new NotReplayable(`guest ${g.name}: ksm-diff needs "mergeable": false, as a process starts (the steps madvise its pages)`);
    for (const name of domainNames(g)) guests.push({ name, pages: g.memoryMiB * 256, forked: false });
  }
  for (const s of scenario.steps) {
    if (s.op === 'fork') guests.push({ name: s.child, pages: guests.find((g) => g.name === s.guest)!.pages, forked: true });
  }
  return guests;
}

/**
 * The commands that replay `scenario` on the kernel (see tools/ksm-replay/ksm-replay.c): the
 * knobs, the guests with their `booted` memory, then the steps; and the index of the scenario
 * step each result line answers (-1 for the set-up lines).
 */
export function replayScript(scenario: Scenario, booted: BootedMemory = []): { script: Uint8Array; stepOf: number[] } {
  const guests = replayedGuests(scenario);
  const index = new Map(guests.map((g, i) => [g.name, i]));
  const guestOf = (name: string): number => index.get(name)!;
  const parts: Buffer[] = [];
  const stepOf: number[] = [];
  const line = (text: string, step = -1): void => {
    parts.push(Buffer.from(`${text}\n`));
    if (!text.startsWith('checkpoint ')) stepOf.push(step);
  };
  for (const l of knobLines(new KsmDedup(dedupOptionsOf(scenario.dedup) as ConstructorParameters<typeof KsmDedup>[0]).knobs())) line(l);
  const started = guests.filter((g) => !g.forked);
  line(`guests ${started.length} ${started.map((g) => g.pages).join(' ')}`);
  booted.forEach((pages, g) => {
    for (let i = 0; i < pages.length; i++) {
      const { gfn, page } = pages[i]!;
      if (page !== null) {
        line(`data ${g} ${gfn} 1`);
        parts.push(Buffer.from(page.buffer, page.byteOffset, PAGE_SIZE));
        continue;
      }
      // A run of pages of zeros, in one memset.
      let n = 1;
      while (pages[i + n]?.page === null && pages[i + n]!.gfn === gfn + n) n++;
      line(`fill ${g} ${gfn} ${n} 0`);
      i += n - 1;
    }
  });
  const page32 = new Uint32Array(PAGE_SIZE / 4);
  (scenario.steps ?? []).forEach((s, i) => {
    switch (s.op) {
      case 'fill':
        if (s.pattern !== undefined) {
          line(`fill ${guestOf(s.guest)} ${s.gfn} ${s.count} ${s.pattern}`, i);
        } else {
          const data = Buffer.alloc(s.count * PAGE_SIZE);
          for (let p = 0; p < s.count; p++) {
            fillSeededPage(page32, s.seed!, s.distinct === true ? p : 0);
            data.set(new Uint8Array(page32.buffer), p * PAGE_SIZE);
          }
          line(`data ${guestOf(s.guest)} ${s.gfn} ${s.count}`, i);
          parts.push(data);
        }
        return;
      case 'write':
        line(`write ${guestOf(s.guest)} ${s.gfn} ${s.offset} ${s.bytes.length}`, i);
        parts.push(Buffer.from(s.bytes));
        return;
      case 'madvise':
        line(`madvise ${guestOf(s.guest)} ${s.gfn} ${s.count} ${MADVICE[s.advice]}`, i);
        return;
      case 'set_memory_merge':
        line(`merge ${guestOf(s.guest)} ${s.on ? 1 : 0}`, i);
        return;
      case 'discard':
        line(`munmap ${guestOf(s.guest)} ${s.gfn} ${s.count}`, i);
        return;
      case 'populate':
        line(`mmap ${guestOf(s.guest)} ${s.gfn} ${s.count}`, i);
        return;
      case 'fork':
        line(`fork ${guestOf(s.guest)}`, i);
        return;
      case 'set':
        line(`set ${s.knob} ${knobText(s.knob, s.value)}`, i);
        return;
      case 'wait':
        line(`wait ${s.ms}`, i);
        return;
      case 'wait_full_scans':
        // The kernel gets the simulated timeout in wall time, and at least a minute.
        line(`wait_full_scans ${s.count} ${Math.max(60_000, s.timeoutS * 1000)}`, i);
        return;
      case 'checkpoint':
        line(`checkpoint ${s.label}`, i);
        return;
    }
  });
  line('end');
  return { script: Buffer.concat(parts), stepOf };
}

/**
 * The replayer's `knob` commands that give the kernel's KSM `knobs` (a KsmDedup's `knobs()`), so
 * that both sides start alike: the advisor off first, for pages_to_scan cannot be written while
 * it is on, and advisor_mode as its word (last, as the list has it).
 */
export function knobLines(knobs: Readonly<Record<string, number>>): string[] {
  return ['knob advisor_mode none', ...Object.entries(knobs).map(([name, value]) => `knob ${name} ${knobText(name, value)}`)];
}

/** Builds the replayer with `cc` (once per source version) and returns its path. */
export function buildReplayer(source = REPLAY_SOURCE): string {
  if (!existsSync(source)) throw new HostUnavailable(`the replayer's source ${source} is missing (ksm-diff runs from the pagevisor repository)`);
  const text = readFileSync(source);
  const out = join(tmpdir(), `pagevisor-ksm-replay-${createHash('sha256').update(text).digest('hex').slice(0, 16)}`);
  if (existsSync(out)) return out;
  const cc = spawnSync('cc', ['-O2', '-Wall', '-o', out, source], { encoding: 'utf8' });
  if (cc.error !== undefined) throw new HostUnavailable(`cannot build the replayer: ${cc.error.message} (install a C compiler, e.g. apt-get install gcc)`);
  if (cc.status !== 0) throw new Error(`cc failed on ${source}:\n${cc.stderr}`);
  return out;
}

/** Exit codes of the replayer that mean the host cannot serve (see ksm-replay.c). */
const HOST_CODES: Readonly<Record<number, string>> = { 4: 'no KSM', 5: 'no permission', 6: 'KSM in use' };

/** Runs `script` (see {@link replayScript}) on the host's KSM; returns each command's result line in order, and the checkpoints. */
export function replayOnKernel(script: Uint8Array, replayer = buildReplayer()): { results: unknown[]; checkpoints: KernelCheckpoint[] } {
  const run = spawnSync(replayer, [], { input: script, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.error !== undefined) throw run.error;
  const why = HOST_CODES[run.status ?? -1];
  if (why !== undefined) throw new HostUnavailable(`${why}: ${run.stderr.trim()}`);
  if (run.status !== 0) throw new Error(`the replayer exited ${run.status ?? run.signal}: ${run.stderr.trim()}`);
  const results: unknown[] = [];
  const checkpoints: KernelCheckpoint[] = [];
  for (const text of run.stdout.split('\n')) {
    if (text === '') continue;
    const parsed = JSON.parse(text) as Record<string, unknown>;
    if ('checkpoint' in parsed) checkpoints.push(parsed as unknown as KernelCheckpoint);
    else results.push(parsed);
  }
  return { results, checkpoints };
}

/** Runs `scenario` on pagevisor and on the host's KSM and sets every counter side by side. */
export async function ksmDiff(scenario: Scenario, replayer?: string): Promise<KsmDiff> {
  const guests = replayedGuests(scenario); // refuses what it cannot replay before anything runs
  const booted: { gfn: number; page: Uint8Array | null }[][] = guests.map(() => []);
  const report: Report = await runScenario(scenario, {
    onStepsStart: (hv, domains) => {
      guests.forEach((g, i) => {
        const dom = domains.get(g.name);
        if (dom === undefined) return; // a fork's child, not there yet
        const table = hv.domain('ksm_diff', dom).table;
        const page = new Uint8Array(PAGE_SIZE);
        for (let gfn = 0; gfn < g.pages; gfn++) {
          const t = table.type(asGfn(gfn));
          if ((t !== P2mType.ram_rw && t !== P2mType.ram_shared) || table.mfn(asGfn(gfn)) === hv.zeroMfn) continue;
          hv.readPage(dom, asGfn(gfn), 0, page, 0, PAGE_SIZE);
          booted[i]!.push({ gfn, page: page.some((b) => b !== 0) ? page.slice() : null });
        }
      });
    },
  });
  const { script, stepOf } = replayScript(scenario, booted);
  const kernel = replayOnKernel(script, replayer);
  const rows: CounterRow[] = [];
  const steps: StepRow[] = [];
  const names = guests.map((g) => g.name);
  for (const cp of kernel.checkpoints) {
    const mine: CheckpointRecord | undefined = report.checkpoints.find((c) => c.label === cp.checkpoint);
    if (mine === undefined) {
      // pagevisor's run stopped earlier (its failed step is in the report).
      const step = (scenario.steps ?? []).findIndex((st) => st.op === 'checkpoint' && st.label === cp.checkpoint);
      steps.push({ step, op: 'checkpoint', pagevisor: 'not reached', kernel: 'ok' });
      continue;
    }
    for (const c of GLOBAL_COUNTERS) rows.push({ checkpoint: cp.checkpoint, scope: 'global', counter: c, pagevisor: mine.dedup[c] ?? NaN, kernel: cp.global[c] ?? NaN });
    for (const c of COMPARED_KNOBS) rows.push({ checkpoint: cp.checkpoint, scope: 'global', counter: c, pagevisor: mine.knobs[c] ?? NaN, kernel: cp.global[c] ?? NaN });
    // The guests that exist at this checkpoint: a fork's child from its step on.
    names.slice(0, cp.guests.length).forEach((name, i) => {
      const dom = mine.domains.find((d) => d.name === name);
      for (const [counter, ours, theirs] of GUEST_COUNTERS) {
        rows.push({ checkpoint: cp.checkpoint, scope: name, counter, pagevisor: Number(dom?.[ours] ?? NaN), kernel: cp.guests[i]?.[theirs] ?? NaN });
      }
    });
  }
  kernel.results.forEach((r, line) => {
    const step = stepOf[line] ?? -1;
    if (step < 0) return;
    const k = r as { op: string; ok: boolean; error?: string };
    const mine = report.steps[step];
    const ours = mine === undefined ? 'not run' : mine.ok ? 'ok' : (mine.errno ?? 'failed');
    const theirs = k.ok ? 'ok' : (k.error ?? 'failed');
    if (ours !== theirs) steps.push({ step, op: scenario.steps![step]!.op, pagevisor: ours, kernel: theirs });
  });
  const differences = rows.filter((r) => r.pagevisor !== r.kernel).length + steps.length;
  return { scenario: scenario.name, rows, steps, differences };
}

/** The diff as a table: every counter at every checkpoint, differences marked. */
export function formatKsmDiff(d: KsmDiff): string {
  const out: string[] = [`ksm-diff ${d.scenario}: pagevisor's KSM against this host's (${d.differences === 0 ? 'all equal' : `${d.differences} differ`})`];
  let last = '';
  for (const r of d.rows) {
    if (r.checkpoint !== last) out.push(`\n${r.checkpoint}`, `  ${'scope'.padEnd(10)} ${'counter'.padEnd(20)} ${'pagevisor'.padStart(12)} ${'kernel'.padStart(12)}`);
    last = r.checkpoint;
    out.push(`  ${r.scope.padEnd(10)} ${r.counter.padEnd(20)} ${String(r.pagevisor).padStart(12)} ${String(r.kernel).padStart(12)}${r.pagevisor === r.kernel ? '' : '  <- differs'}`);
  }
  for (const s of d.steps) out.push(`step ${s.step} (${s.op}): pagevisor ${s.pagevisor}, kernel ${s.kernel}  <- differs`);
  return `${out.join('\n')}\n`;
}
