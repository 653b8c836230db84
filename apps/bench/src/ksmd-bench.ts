import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleepMs } from 'node:timers/promises';
import { EsxDedup, KsmDedup, type KsmOptions } from '@pagevisor/dedup';
import { Hypervisor } from '@pagevisor/hypervisor';
import { buildReplayer, HostUnavailable, knobLines, replayOnKernel } from '@pagevisor/simulator';
import { asGfn, PAGE_SIZE, Prng } from '@pagevisor/types';
import { throwProblems } from './suite-context.js';

/**
 * The four scan phases measured on both sides, each a full scan of the same pages:
 * - `checksum`: the first full scan of freshly written mergeable pages (every page gets its
 *   checksum, nothing merges);
 * - `unstable`: the second full scan of distinct pages (every page goes into the unstable tree);
 * - `merge`: the second full scan of identical pages (every page merges into the stable tree);
 * - `merged`: a further full scan once everything is merged.
 */
export const KSMD_PHASES = ['checksum', 'unstable', 'merge', 'merged'] as const;

/** One of {@link KSMD_PHASES}. */
export type KsmdPhase = (typeof KSMD_PHASES)[number];

/** The two page sets: one kernel run and one hypervisor per repeat each. */
export const KSMD_WORKLOADS = ['distinct', 'identical'] as const;

/** One of {@link KSMD_WORKLOADS}. */
export type KsmdWorkload = (typeof KSMD_WORKLOADS)[number];

/** What KSM's counters say after a scan: pages checksummed only, all in the unstable tree, all merged. */
type ScanState = 'checksummed' | 'unstable' | 'merged';

/** One full scan of a workload: its checkpoint label, the phase it measures (null: checked, not reported), the state after it. */
export interface WorkloadScan {
  readonly label: string;
  readonly phase: KsmdPhase | null;
  readonly state: ScanState;
}

/**
 * The full scans of each workload, in order. The identical pages' first scan is a checksum scan
 * too; it is checked, not reported (the distinct pages' first scan gives the phase's figure).
 */
export const WORKLOAD_SCANS: Readonly<Record<KsmdWorkload, readonly WorkloadScan[]>> = {
  distinct: [
    { label: 'checksum', phase: 'checksum', state: 'checksummed' },
    { label: 'unstable', phase: 'unstable', state: 'unstable' },
  ],
  identical: [
    { label: 'identical-checksum', phase: null, state: 'checksummed' },
    { label: 'merge', phase: 'merge', state: 'merged' },
    { label: 'merged', phase: 'merged', state: 'merged' },
  ],
};

/** Linux's madvise(2) MADV_MERGEABLE. */
const MADV_MERGEABLE = 12;
/** Wall-time limit of one `wait_full_scans` on the kernel. */
const SCAN_TIMEOUT_MS = 60_000;
/** ksmd is stopped this long more than sleep_millisecs before each timed scan (see {@link kernelScript}). */
const PAUSE_MARGIN_MS = 30;
/** Seed of the random base page every page is made from. */
const CONTENT_SEED = 0x6b736d64;

/**
 * The knobs both sides run with: pages_to_scan larger than the page count (one wake-up is one
 * full scan), smart_scan 0 (every page scanned every time), sleep_millisecs 20; the rest at
 * Linux's defaults (max_page_sharing 256, use_zero_pages 0, merge_across_nodes 1).
 */
export function ksmdKnobs(pages: number): KsmOptions {
  return { pages_to_scan: 2 * pages, smart_scan: 0, sleep_millisecs: 20 };
}

/**
 * The pages of both workloads, the same bytes on both sides: one random page (seeded); distinct
 * page `i` is that page with its first 32-bit word (little-endian) set to `i`; every identical
 * page is the random page itself.
 */
export class ScanPages {
  private readonly page = new Uint8Array(PAGE_SIZE);
  private readonly words = new Uint32Array(this.page.buffer);
  private readonly first: number;
  constructor(seed = CONTENT_SEED) {
    new Prng(seed).fillBytes(this.page);
    this.first = this.words[0]!;
  }
  /** Page `i` of `workload` (the same buffer each call: copy it to keep it). */
  at(workload: KsmdWorkload, i: number): Uint8Array {
    this.words[0] = workload === 'distinct' ? i : this.first;
    return this.page;
  }
}

/** Every counter a scan leaves, by sysfs name (global) and per guest (pagevisor's domainStats names). */
export interface ExpectedCounters {
  readonly global: Readonly<Record<string, number>>;
  readonly guest: { readonly rmap_items: number; readonly merging_pages: number };
}

/**
 * What KSM's counters must read after `fullScans` full scans of `pages` pages leaving `state`.
 * Merged identical pages fill KSM pages of `maxPageSharing` mappings each (dups of one
 * stable_node_chain once there are two or more): ceil(pages / maxPageSharing) pages_shared.
 */
export function expectedCounters(state: ScanState, fullScans: number, pages: number, maxPageSharing: number): ExpectedCounters {
  const kpages = state === 'merged' ? Math.ceil(pages / maxPageSharing) : 0;
  return {
    global: {
      full_scans: fullScans,
      pages_scanned: fullScans * pages,
      pages_skipped: 0,
      pages_shared: kpages,
      pages_sharing: state === 'merged' ? pages - kpages : 0,
      pages_unshared: state === 'unstable' ? pages : 0,
      pages_volatile: state === 'checksummed' ? pages : 0,
      ksm_zero_pages: 0,
      stable_node_chains: kpages > 1 ? 1 : 0,
      stable_node_dups: kpages > 1 ? kpages : 0,
    },
    guest: { rmap_items: pages, merging_pages: state === 'merged' ? pages : 0 },
  };
}

/** The differences of `global` and `guest` from `want`, one line each ("pages_sharing 10, expected 11"). */
export function counterProblems(global: Readonly<Record<string, number>>, guest: Readonly<Record<string, number>>, want: ExpectedCounters): string[] {
  const out: string[] = [];
  for (const [name, v] of Object.entries(want.global)) if (global[name] !== v) out.push(`${name} ${global[name]}, expected ${v}`);
  for (const [name, v] of Object.entries(want.guest)) if (guest[name] !== v) out.push(`guest ${name} ${guest[name]}, expected ${v}`);
  return out;
}

/**
 * The replayer's commands for `workload` (see tools/ksm-replay/ksm-replay.c): every knob as
 * pagevisor's KSM starts with `knobs`, one guest of `pages` pages written with the workload's
 * contents and madvised MERGEABLE, then per full scan of {@link WORKLOAD_SCANS}: ksmd kept
 * stopped for sleep_millisecs + 30 ms (`set run 0`, `wait`, `set run 1`: a `wait` while the
 * scenario's run is 0 only sleeps), `wait_full_scans 1`, and a checkpoint named after the scan.
 *
 * The pause matters: after a full scan ksmd sleeps sleep_millisecs on a wait queue that writing
 * `run` does not wake, so a scan started at once would count the rest of that sleep.
 */
export function kernelScript(workload: KsmdWorkload, pages: number, knobs: Readonly<Record<string, number>>, contents: ScanPages): Uint8Array {
  const parts: Buffer[] = [];
  const line = (text: string): void => {
    parts.push(Buffer.from(`${text}\n`));
  };
  for (const l of knobLines(knobs)) line(l);
  line(`guests 1 ${pages}`);
  line(`data 0 0 ${pages}`);
  const data = Buffer.alloc(pages * PAGE_SIZE);
  for (let i = 0; i < pages; i++) data.set(contents.at(workload, i), i * PAGE_SIZE);
  parts.push(data);
  line(`madvise 0 0 ${pages} ${MADV_MERGEABLE}`);
  const pause = (knobs['sleep_millisecs'] ?? 20) + PAUSE_MARGIN_MS;
  for (const scan of WORKLOAD_SCANS[workload]) {
    line('set run 0');
    line(`wait ${pause}`);
    line('set run 1');
    line(`wait_full_scans 1 ${SCAN_TIMEOUT_MS}`);
    line(`checkpoint ${scan.label}`);
  }
  line('end');
  return Buffer.concat(parts);
}

/** What the replayer printed: each command's result line, and the checkpoints (see `replayOnKernel`). */
export interface KernelRun {
  readonly results: readonly unknown[];
  readonly checkpoints: readonly { readonly checkpoint: string; readonly global: Readonly<Record<string, number>>; readonly guests: readonly Readonly<Record<string, number>>[] }[];
}

/** Runs a script on the host's KSM (default: the simulator's `replayOnKernel`). */
export type ReplayFn = (script: Uint8Array, replayer: string) => KernelRun;

/** True for the simulator's HostUnavailable (by class, or by name across module copies). */
export function isHostUnavailable(e: unknown): e is Error {
  return e instanceof HostUnavailable || (e instanceof Error && e.name === 'HostUnavailable');
}

/** True when the host is unavailable only because another process uses KSM now (worth a retry). */
export function isKsmInUse(e: unknown): boolean {
  return isHostUnavailable(e) && e.message.startsWith('KSM in use');
}

/**
 * The wall milliseconds of each full scan of `workload` on the kernel, from one replayer run;
 * throws when a command failed or a checkpoint's counters are not what the scan must leave.
 */
export function checkKernelRun(run: KernelRun, workload: KsmdWorkload, pages: number, maxPageSharing: number): number[] {
  const scans = WORKLOAD_SCANS[workload];
  const results = run.results as readonly { op?: unknown; ok?: unknown; ms?: unknown; error?: unknown }[];
  const failed = results.find((r) => r.ok !== true);
  if (failed !== undefined) throw new Error(`ksmd bench, kernel, ${workload} pages: ${String(failed.op)} failed (${String(failed.error)})`);
  const waits = results.filter((r) => r.op === 'wait_full_scans');
  if (waits.length !== scans.length) throw new Error(`ksmd bench, kernel, ${workload} pages: ${waits.length} full-scan waits answered, expected ${scans.length}`);
  return scans.map((scan, k) => {
    const ms = waits[k]!.ms;
    if (typeof ms !== 'number' || !(Number.isFinite(ms) && ms > 0)) throw new Error(`ksmd bench, kernel, the ${scan.label} scan: wall time ${String(ms)} ms`);
    const cp = run.checkpoints.find((c) => c.checkpoint === scan.label);
    if (cp === undefined) throw new Error(`ksmd bench, kernel: no checkpoint after the ${scan.label} scan`);
    const g = cp.guests[0] ?? {};
    const guest = { rmap_items: g['ksm_rmap_items'] ?? NaN, merging_pages: g['ksm_merging_pages'] ?? NaN };
    throwProblems(`ksmd bench, kernel, after the ${scan.label} scan (${workload} pages)`, counterProblems(cp.global, guest, expectedCounters(scan.state, k + 1, pages, maxPageSharing)));
    return ms;
  });
}

/**
 * pagevisor's side of `workload`: a fresh Hypervisor with a KsmDedup of `knobs` and one domain
 * of the workload's pages, written then made mergeable; each full scan of {@link WORKLOAD_SCANS}
 * timed with performance.now() around the wake-ups it takes (hv.wakeDedup(ksm.nextWakeNs())
 * until full_scans rises: one wake-up, which is checked), then its counters checked and the
 * hypervisor audited. Returns each scan's wall milliseconds.
 */
export async function pagevisorScans(workload: KsmdWorkload, pages: number, knobs: KsmOptions, contents: ScanPages): Promise<number[]> {
  const ksm = new KsmDedup(knobs);
  const mps = ksm.knobs()['max_page_sharing']!;
  const hv = await Hypervisor.create({ frames: pages + 16, dedup: ksm });
  const dom = hv.createDomain({ maxPages: pages });
  hv.populatePhysmap(dom, Array.from({ length: pages }, (_, i) => i));
  for (let g = 0; g < pages; g++) hv.writePage(dom, asGfn(g), 0, contents.at(workload, g), 0, PAGE_SIZE);
  hv.setDomainMergeable(dom, true);
  return WORKLOAD_SCANS[workload].map((scan, k) => {
    const target = ksm.stats()['full_scans']! + 1;
    let wakes = 0;
    const t0 = performance.now();
    while (ksm.stats()['full_scans']! < target && wakes < 2) {
      hv.wakeDedup(ksm.nextWakeNs());
      wakes++;
    }
    const ms = performance.now() - t0;
    if (wakes !== 1 || ksm.stats()['full_scans']! !== target) throw new Error(`ksmd bench, pagevisor, the ${scan.label} scan: ${wakes} wake-ups did not make exactly one full scan`);
    const where = `ksmd bench, pagevisor, after the ${scan.label} scan (${workload} pages)`;
    throwProblems(where, counterProblems(ksm.stats(), ksm.domainStats(dom), expectedCounters(scan.state, k + 1, pages, mps)));
    throwProblems(`${where}: audit`, hv.audit());
    return ms;
  });
}

/**
 * pagevisor's ESX-style scanner on the same pages: a fresh Hypervisor with an EsxDedup and one
 * domain of the workload's pages, written then made mergeable; two wake-ups draw 2 x pages
 * random candidates (at most one draw of a page a wake-up; each hashed, then its hint looked up,
 * compared and merged, or a hint left),
 * timed with performance.now(); then checked (every candidate had a frame; distinct pages merged
 * none, identical pages merged) and audited. Returns its wall milliseconds, to set beside ksmd's
 * first two full scans of the same pages (2 x pages scanned too).
 */
export async function esxScans(workload: KsmdWorkload, pages: number, contents: ScanPages): Promise<number> {
  const candidates = 2 * pages;
  const esx = new EsxDedup({ scanRatePerDomainPagesPerS: candidates * 10, scanRateGlobalPagesPerS: candidates * 10, wakeIntervalMs: 100, seed: 1 });
  const hv = await Hypervisor.create({ frames: pages + 16, dedup: esx });
  const dom = hv.createDomain({ maxPages: pages });
  hv.populatePhysmap(dom, Array.from({ length: pages }, (_, i) => i));
  for (let g = 0; g < pages; g++) hv.writePage(dom, asGfn(g), 0, contents.at(workload, g), 0, PAGE_SIZE);
  hv.setDomainMergeable(dom, true);
  const t0 = performance.now();
  hv.wakeDedup(esx.nextWakeNs());
  hv.wakeDedup(esx.nextWakeNs());
  const ms = performance.now() - t0;
  const s = esx.stats();
  const where = `ksmd bench, pagevisor's ESX scanner (${workload} pages)`;
  if (s['pages_scanned'] !== candidates || s['pages_skipped'] !== 0) throw new Error(`${where}: two wake-ups scanned ${s['pages_scanned']} candidates (${s['pages_skipped']} skipped), not ${candidates}`);
  if ((workload === 'distinct') !== (s['pages_merged'] === 0)) throw new Error(`${where}: ${s['pages_merged']} pages merged`);
  throwProblems(`${where}: audit`, hv.audit());
  return ms;
}

/** ksmd's scheduler counters: nanoseconds on a CPU and waiting (runnable) for one. */
export interface SchedCounters {
  readonly runNs: number;
  readonly waitNs: number;
}

let ksmdPid: number | null | undefined;

/**
 * ksmd's /proc/PID/schedstat (time on a CPU, time runnable waiting for one), or null when there is
 * no ksmd thread or it cannot be read. ksmd sleeps outside the scans (run is 0 but inside them),
 * so over a replayer run these count its scans only.
 */
export function ksmdSchedCounters(): SchedCounters | null {
  try {
    if (ksmdPid === undefined) {
      ksmdPid = null;
      for (const e of readdirSync('/proc')) {
        if (!/^\d+$/.test(e)) continue;
        try {
          if (readFileSync(`/proc/${e}/comm`, 'utf8') === 'ksmd\n') {
            ksmdPid = Number(e);
            break;
          }
        } catch {
          // gone while listing
        }
      }
    }
    if (ksmdPid === null) return null;
    const [run, wait] = readFileSync(`/proc/${ksmdPid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return Number.isFinite(run) && Number.isFinite(wait) ? { runNs: run!, waitNs: wait! } : null;
  } catch {
    return null;
  }
}

/** Options of {@link benchKsmd}. */
export interface KsmdBenchOptions {
  /** Pages of each workload (not 1 more than a multiple of max_page_sharing: that page would stay unmerged). */
  readonly pages: number;
  /** Timed repeats: per repeat one kernel run and one hypervisor of each workload. */
  readonly repeats: number;
  /** The replayer's path (default: the simulator's `buildReplayer`); HostUnavailable when the host cannot build it. */
  readonly replayer?: () => string;
  /** Runs a script on the kernel (default: the simulator's `replayOnKernel`). */
  readonly replay?: ReplayFn;
  /** Tries of one kernel run while another process uses KSM ("KSM in use"). Default 6. */
  readonly attempts?: number;
  /** Wait between those tries. Default 5,000 ms. */
  readonly retryDelayMs?: number;
  /** How to wait (tests pass one that does not). */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Pages the untimed warm-up scans at least, in whole rounds of both workloads (at least one
   * round). Default {@link WARMUP_PAGES}: one round of 4,096 pages leaves the JIT far from done,
   * and the first timed repeat of a quick run several times slower than the next.
   */
  readonly warmupPages?: number;
  /** ksmd's scheduler counters (default: {@link ksmdSchedCounters}). */
  readonly schedCounters?: () => SchedCounters | null;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/** Default of {@link KsmdBenchOptions.warmupPages}. */
export const WARMUP_PAGES = 65536;

/** What {@link benchKsmd} measured. */
export interface KsmdBenchResult {
  readonly pages: number;
  /** Every knob both sides ran with (pagevisor's KsmDedup's, written to the kernel's sysfs). */
  readonly knobs: Readonly<Record<string, number>>;
  /** pagevisor's pages/s per phase, one per repeat. */
  readonly pagevisor: Readonly<Record<KsmdPhase, readonly number[]>>;
  /** ksmd's pages/s per phase, one per repeat, or null when the host could not run it. */
  readonly kernel: Readonly<Record<KsmdPhase, readonly number[]>> | null;
  /** pagevisor / ksmd per phase and repeat (each pair timed side by side), or null. */
  readonly ratios: Readonly<Record<KsmdPhase, readonly number[]>> | null;
  /**
   * Per page set: pagevisor's ESX scanner's candidates/s over 2 x pages candidates
   * ({@link esxScans}), one per repeat; ksmd's pages/s over its first two full scans of the same
   * pages (null when not measured); and the per-repeat ratios (null likewise).
   */
  readonly esx: Readonly<Record<KsmdWorkload, { readonly pagevisor: readonly number[]; readonly kernel: readonly number[] | null; readonly ratios: readonly number[] | null }>>;
  /** Why the kernel was not measured (the HostUnavailable's message), when it was not. */
  readonly unavailable?: string;
  /** Kernel runs retried because KSM was in use elsewhere. */
  readonly retries: number;
  /**
   * Over the timed kernel runs: the wall time of all their full scans (the identical pages'
   * first one too) and what ksmd's schedstat says of that time, on a CPU and waiting for one
   * (a busy machine makes ksmd, at nice 5, wait); absent when unreadable or not measured.
   */
  readonly ksmdTime?: { readonly scanMs: number; readonly runMs: number; readonly waitMs: number };
}

function perPhase(): Record<KsmdPhase, number[]> {
  return { checksum: [], unstable: [], merge: [], merged: [] };
}

/**
 * pagevisor's KSM scanner beside the host's ksmd on the same pages and knobs: per repeat, for
 * each workload (distinct pages, identical pages), one replayer run on the kernel and one fresh
 * hypervisor, the two sides in turn (which goes first alternates by repeat), after an untimed
 * kernel run and an untimed warm-up of pagevisor's side (see {@link KsmdBenchOptions.warmupPages}).
 * Every scan's counters are checked on both sides (a bench that measured a wrong scan throws). When the host cannot run the replayer (HostUnavailable:
 * no KSM, not root, no cc, KSM still in use after `attempts` tries), the kernel's figures are
 * absent with the reason; pagevisor's are measured all the same.
 */
export async function benchKsmd(opts: KsmdBenchOptions): Promise<KsmdBenchResult> {
  const { pages, repeats } = opts;
  const log = opts.log ?? (() => {});
  const knobs = ksmdKnobs(pages);
  const all = new KsmDedup(knobs).knobs();
  const mps = all['max_page_sharing']!;
  if (!(Number.isInteger(pages) && pages >= 2) || pages % mps === 1) {
    throw new RangeError(`ksmd bench: ${pages} pages (an integer >= 2, not 1 more than a multiple of max_page_sharing ${mps}: that page would stay unmerged)`);
  }
  if (!(Number.isInteger(repeats) && repeats >= 1)) throw new RangeError(`ksmd bench: repeats must be a positive integer, got ${repeats}`);
  const replay = opts.replay ?? replayOnKernel;
  const attempts = opts.attempts ?? 6;
  const retryDelayMs = opts.retryDelayMs ?? 5000;
  const sleep = opts.sleep ?? ((ms: number) => sleepMs(ms));
  const contents = new ScanPages();

  let unavailable: string | undefined;
  let replayer: string | undefined;
  try {
    replayer = (opts.replayer ?? buildReplayer)();
  } catch (e) {
    if (!isHostUnavailable(e)) throw e;
    unavailable = e.message;
  }
  let scripts: Record<KsmdWorkload, Uint8Array> | null = replayer === undefined ? null : { distinct: kernelScript('distinct', pages, all, contents), identical: kernelScript('identical', pages, all, contents) };
  let retries = 0;

  const sched = opts.schedCounters ?? ksmdSchedCounters;
  const ksmdTime = { scanMs: 0, runMs: 0, waitMs: 0, readable: true };
  const timedKernelRun = async (workload: KsmdWorkload): Promise<number[]> => {
    const s0 = sched();
    const ms = await kernelRun(workload);
    const s1 = sched();
    if (s0 === null || s1 === null) ksmdTime.readable = false;
    else {
      ksmdTime.runMs += (s1.runNs - s0.runNs) / 1e6;
      ksmdTime.waitMs += (s1.waitNs - s0.waitNs) / 1e6;
    }
    for (const x of ms) ksmdTime.scanMs += x;
    return ms;
  };
  const kernelRun = async (workload: KsmdWorkload): Promise<number[]> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return checkKernelRun(replay(scripts![workload], replayer!), workload, pages, mps);
      } catch (e) {
        if (!isKsmInUse(e) || attempt >= attempts) throw e;
        retries++;
        log(`ksmd: ${(e as Error).message.split('\n')[0]}; retrying in ${retryDelayMs / 1000} s (try ${attempt + 1} of ${attempts})`);
        await sleep(retryDelayMs);
      }
    }
  };

  // One untimed kernel run first: it finds out whether the host can serve before anything else
  // runs, and the first replayer run slows the pagevisor scans just after it (2 to 4.5 times
  // slower in quick runs), which the warm-up then absorbs.
  if (scripts !== null) {
    log('ksmd: warm-up run of the replayer (untimed)');
    try {
      await kernelRun('distinct');
    } catch (e) {
      if (!isHostUnavailable(e)) throw e;
      unavailable = e.message;
      scripts = null;
    }
  }
  const warmRounds = Math.max(1, Math.ceil((opts.warmupPages ?? WARMUP_PAGES) / pages));
  log(`ksmd: warm-up of pagevisor's side (${warmRounds} round${warmRounds === 1 ? '' : 's'} of ${pages} pages, untimed)`);
  for (let k = 0; k < warmRounds; k++) {
    for (const w of KSMD_WORKLOADS) {
      await pagevisorScans(w, pages, knobs, contents);
      await esxScans(w, pages, contents);
    }
  }

  const pv = perPhase();
  const kernel = perPhase();
  const esx: Record<KsmdWorkload, number[]> = { distinct: [], identical: [] };
  const kernelTwoScans: Record<KsmdWorkload, number[]> = { distinct: [], identical: [] };
  const record = (into: Record<KsmdPhase, number[]>, workload: KsmdWorkload, ms: readonly number[]): void => {
    WORKLOAD_SCANS[workload].forEach((scan, k) => {
      if (scan.phase !== null) into[scan.phase].push(pages / (ms[k]! / 1000));
    });
  };
  for (let r = 0; r < repeats; r++) {
    const kernelFirst = r % 2 === 0;
    log(`ksmd: repeat ${r + 1} of ${repeats}${scripts === null ? ' (pagevisor only)' : kernelFirst ? ' (ksmd first)' : ' (pagevisor first)'}`);
    for (const w of KSMD_WORKLOADS) {
      for (const side of kernelFirst ? (['kernel', 'pagevisor'] as const) : (['pagevisor', 'kernel'] as const)) {
        if (side === 'pagevisor') {
          record(pv, w, await pagevisorScans(w, pages, knobs, contents));
          esx[w].push((2 * pages) / ((await esxScans(w, pages, contents)) / 1000));
          continue;
        }
        if (scripts === null) continue;
        try {
          const ms = await timedKernelRun(w);
          record(kernel, w, ms);
          kernelTwoScans[w].push((2 * pages) / ((ms[0]! + ms[1]!) / 1000));
        } catch (e) {
          if (!isHostUnavailable(e)) throw e;
          // Given up part way: no pairs are kept, so every figure reported is one of a full set.
          unavailable = `${e.message} (at repeat ${r + 1} of ${repeats}; the kernel figures taken before are dropped)`;
          scripts = null;
        }
      }
    }
  }
  const measured = scripts !== null;
  const esxOf = (w: KsmdWorkload): KsmdBenchResult['esx'][KsmdWorkload] => ({
    pagevisor: esx[w],
    kernel: measured ? kernelTwoScans[w] : null,
    ratios: measured ? esx[w].map((x, i) => x / kernelTwoScans[w][i]!) : null,
  });
  const ratios = perPhase();
  if (measured) for (const p of KSMD_PHASES) ratios[p].push(...pv[p].map((x, i) => x / kernel[p][i]!));
  return {
    pages,
    knobs: all,
    pagevisor: pv,
    kernel: measured ? kernel : null,
    ratios: measured ? ratios : null,
    esx: { distinct: esxOf('distinct'), identical: esxOf('identical') },
    ...(unavailable === undefined ? {} : { unavailable }),
    retries,
    ...(measured && ksmdTime.readable ? { ksmdTime: { scanMs: ksmdTime.scanMs, runMs: ksmdTime.runMs, waitMs: ksmdTime.waitMs } } : {}),
  };
}
