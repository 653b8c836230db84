import { formatValue } from './format.js';
import type { Measurement } from './measurement.js';
import { KSMD_PHASES, KSMD_WORKLOADS } from './ksmd-bench.js';
import type { BenchResult } from './result.js';
import { ABI_DISPATCH_ID } from './suites/micro-abi.js';
import { TIMELINE_ID } from './suites/micro-timeline.js';
import { ESX_KSMD_ID, ESX_KSMD_NAMES, KSMD_ID, KSMD_PHASE_NAMES } from './suites/ksmd.js';
import { HUGE_ID } from './suites/huge.js';
import { SCALE_ID } from './suites/scale.js';
import { METADATA_ID, METADATA_REPORT_ID, SHARING_SCENARIOS, sharingIds } from './suites/macro.js';
import { SWAP_IN_ID } from './suites/swap.js';
import { SWEEP_ID } from './suites/sweep.js';

/** One target of the issue, judged on this run's figures. */
export interface Target {
  /** Stable key, e.g. `ksm-scan`. */
  readonly key: string;
  /** The target in words. */
  readonly name: string;
  /** How the value must compare with the threshold. */
  readonly op: '>=' | '<=' | '<';
  readonly threshold: number;
  readonly unit: string;
  /** The figure judged (a median), or null when its measurement is not in this run. */
  readonly value: number | null;
  /** Met, missed, or null when not measured (or not judged: a quick run's scale figures). */
  readonly met: boolean | null;
  /** Id of the measurement the value came from. */
  readonly source: string | null;
  /** Why it was not judged, or where the value came from. */
  readonly note?: string;
  /** The `--compare` file it was judged against, for a target that compares this run with that one. */
  readonly against?: string;
}

/** The `--compare` run as the targets that judge this run against it read it. */
export interface AgainstRun {
  /** The `--compare` file. */
  readonly file: string;
  /** Its measurements. */
  readonly measurements: readonly Measurement[];
  /** Why the two runs were not measured side by side (see {@link sideBySideProblems}); empty when they were. */
  readonly problems: readonly string[];
  /** What it measured, in words (its commit, the simulator it ran), for the target's note. */
  readonly measured?: string;
}

/** What the targets read besides the measurements. */
export interface TargetContext {
  /** Why the C reference was not measured (the limits suite's reason): the native targets are then unmeasured, saying so. */
  readonly nativeUnavailable?: string;
  /** The `--compare` run, for the targets judged against it (else they are unmeasured). */
  readonly against?: AgainstRun;
}

/** Longest time between the starts of two runs for a target to judge one against the other: "within the hour". */
export const SIDE_BY_SIDE_MS = 60 * 60 * 1000;

/**
 * Why `old` and `now` do not count as measured side by side, as a target comparing them asks
 * (one machine, within the hour, the same sizes): another CPU model or count, runs started more
 * than {@link SIDE_BY_SIDE_MS} apart (or a date that does not parse), one run --quick and the other
 * not. Empty when they count.
 */
export function sideBySideProblems(
  old: { readonly date?: string; readonly machine?: Pick<BenchResult['machine'], 'cpus' | 'cpuModel'>; readonly options?: { readonly quick?: boolean } },
  now: { readonly date: string; readonly machine: Pick<BenchResult['machine'], 'cpus' | 'cpuModel'>; readonly options: { readonly quick: boolean } },
): string[] {
  const problems: string[] = [];
  const om = old.machine;
  if (om === undefined) problems.push('the --compare run names no machine');
  else if (om.cpuModel !== now.machine.cpuModel || om.cpus !== now.machine.cpus) problems.push(`another machine (${om.cpus} x ${om.cpuModel}, now ${now.machine.cpus} x ${now.machine.cpuModel})`);
  const gap = Math.abs(Date.parse(now.date) - Date.parse(old.date ?? ''));
  if (!Number.isFinite(gap)) problems.push('the --compare run has no valid date');
  else if (gap > SIDE_BY_SIDE_MS) problems.push(`measured ${(gap / 3_600_000).toFixed(1)} hours apart (at most 1)`);
  if (old.options?.quick !== now.options.quick) problems.push('one run is --quick and the other is not');
  return problems;
}

/** Ids of the measurements the targets read. */
export const TARGET_SOURCES = {
  inlineWrite: 'micro.hypervisor.inline-write-new',
  inlineWriteStored: 'micro.hypervisor.inline-write-dup',
  timelineSample: TIMELINE_ID.ratio,
  scaleCpu: SCALE_ID.processCpu,
  ksmScan: 'micro.dedup.ksm-scan',
  metadataMacro: METADATA_ID,
  metadataMacroReport: METADATA_REPORT_ID,
  metadataScale: SCALE_ID.metadata,
  scaleWall: SCALE_ID.wall,
  scaleRss: SCALE_ID.peakRss,
  hugeWall: HUGE_ID.wall,
  hugeRss: HUGE_ID.peakRss,
  swapInDeduped: SWAP_IN_ID.deduped,
  abiDispatch: ABI_DISPATCH_ID,
  /** Per phase of the ksmd suite: pagevisor's figure, whose limit is its ratio to ksmd's. */
  ksmd: Object.fromEntries(KSMD_PHASES.map((p) => [p, KSMD_ID[p].pagevisor])) as Readonly<Record<(typeof KSMD_PHASES)[number], string>>,
  /** Per page set of the ksmd suite: pagevisor's ESX figure, whose limit is its ratio to ksmd's first two full scans. */
  esxKsmd: Object.fromEntries(KSMD_WORKLOADS.map((w) => [w, ESX_KSMD_ID[w].pagevisor])) as Readonly<Record<(typeof KSMD_WORKLOADS)[number], string>>,
  sweep: SWEEP_ID,
  /** Per sharing scenario (`overcommit`, `reading`): see `sharingIds`. */
  sharing: { overcommit: sharingIds('overcommit'), reading: sharingIds('reading') },
} as const;

const GIB = 1024 ** 3;

function judge(op: Target['op'], value: number, threshold: number): boolean {
  return op === '>=' ? value >= threshold : op === '<=' ? value <= threshold : value < threshold;
}

/**
 * Judges the targets on `measurements`: inline whole-page write of new content >= 0.6 x the C
 * reference's copy+XXH64 loop, of stored content >= 0.6 x its XXH64+memcmp loop (each the
 * median of the processes' ratios, see micro-hypervisor.ts; unmeasured, saying why, without the
 * C reference); populate_physmap of 1 gfn, current_reservation and read_page of 64 bytes each
 * >= 1,000,000 ops/s through the dispatcher, from bytes (micro-abi.ts); a timeline sample on a 1 TiB host within 2x of a 1 GiB host's (the median of
 * per-repeat ratios of the two timed side by side, see micro-timeline.ts); the scale scenario's
 * process CPU at most 0.5 x the `--compare` run's, judged only when that run has the figure and
 * was measured side by side with this one (see {@link sideBySideProblems});
 * KSM-mode scan >= 250,000 pages/s; metadata <= 16 bytes per guest page (from the scale run's
 * report when it has the figure, else the default scenario's report, else the default scenario
 * run in the macro suite's own process); the scale
 * scenario under 3 minutes of wall time and under 8 GiB of peak RSS; a swap-in whose content
 * the inline index finds resident >= 1 x a plain swap-in (the median of per-repeat ratios of
 * the two timed side by side, see swap-in-bench.ts); on overcommit as it is (tight RAM, one shared
 * swap area), and on overcommit-reading.json likewise, under inline 0 duplicate frames and a
 * saved % within 0.5 points of the same scenario on a machine that holds every guest (keys
 * `sharing-*` and `sharing-reading-*`), and on overcommit-reading, where the scanners converge,
 * under ksm and esx a saved % within 2 points of inline's; in each phase of the ksmd suite
 * (checksum, unstable-tree, merge and all-merged full scans) pagevisor's scanner at least 1.0x
 * the host's ksmd's rate on the same pages, and pagevisor's ESX scanner on each page set at least
 * 1.0x ksmd's first two full scans of it (the median of per-repeat ratios; unmeasured, with
 * the suite's reason, when the host could not run ksmd).
 * In a quick run the scale figures come from a shrunk scenario and are not judged.
 */
export function evaluateTargets(measurements: readonly Measurement[], quick: boolean, context: TargetContext = {}): Target[] {
  const byId = new Map(measurements.map((m) => [m.id, m]));
  const target = (
    key: string,
    name: string,
    op: Target['op'],
    threshold: number,
    unit: string,
    source: string,
    value: (m: Measurement) => number | undefined,
    opts: { judged?: boolean; note?: string; unmeasured?: (m: Measurement) => string | undefined } = {},
  ): Target => {
    const m = byId.get(source);
    const v = m === undefined ? undefined : value(m);
    if (v === undefined) {
      const note = m === undefined ? `not measured (${source.split('.')[0]} suite not run or failed)` : (opts.unmeasured?.(m) ?? 'its limit was not measured');
      return { key, name, op, threshold, unit, value: null, met: null, source: null, note };
    }
    const judged = opts.judged ?? true;
    return { key, name, op, threshold, unit, value: v, met: judged ? judge(op, v, threshold) : null, source, ...(opts.note === undefined ? {} : { note: opts.note }) };
  };
  const quickNote = quick ? { note: 'quick run: smaller sizes, indicative only' } : {};
  const scaleJudged = { judged: !quick, ...(quick ? { note: 'quick run of a shrunk scenario: not judged' } : {}) };
  // The scale run's report, else the default scenario's report, else the default scenario run here.
  const metaSource = [TARGET_SOURCES.metadataScale, TARGET_SOURCES.metadataMacroReport].find((id) => byId.has(id)) ?? TARGET_SOURCES.metadataMacro;
  const metaFrom = metaSource === TARGET_SOURCES.metadataScale ? 'the scale run\'s report' : metaSource === TARGET_SOURCES.metadataMacroReport ? 'the default scenario\'s report (macro)' : 'the default scenario run in this process (macro)';
  const noNative = (): string => `not measured: no native bound (${context.nativeUnavailable ?? 'the C reference did not run in this run'})`;
  return [
    target('inline-write-new', 'inline whole-page write of new content >= 0.6 x native copy+XXH64', '>=', 0.6, 'x native', TARGET_SOURCES.inlineWrite, (m) => m.native?.ratio, { ...quickNote, unmeasured: noNative }),
    target('inline-write-stored', 'inline whole-page write of stored content >= 0.6 x native hash+compare', '>=', 0.6, 'x native', TARGET_SOURCES.inlineWriteStored, (m) => m.native?.ratio, { ...quickNote, unmeasured: noNative }),
    target('timeline-sample', "timeline sample on a 1 TiB host within 2x of a 1 GiB host's", '<=', 2, 'x', TARGET_SOURCES.timelineSample, (m) => m.median, quickNote),
    target('abi-populate', 'populate_physmap of 1 gfn through the dispatcher, from bytes >= 1,000,000 ops/s', '>=', 1_000_000, 'ops/s', TARGET_SOURCES.abiDispatch.populate, (m) => m.median, quickNote),
    target('abi-current-reservation', 'current_reservation through the dispatcher, from bytes >= 1,000,000 ops/s', '>=', 1_000_000, 'ops/s', TARGET_SOURCES.abiDispatch.currentReservation, (m) => m.median, quickNote),
    target('abi-read-page', 'read_page of 64 bytes through the dispatcher, from bytes >= 1,000,000 ops/s', '>=', 1_000_000, 'ops/s', TARGET_SOURCES.abiDispatch.readPage, (m) => m.median, quickNote),
    target('ksm-scan', 'KSM-mode scan >= 250,000 pages/s', '>=', 250_000, 'pages/s', TARGET_SOURCES.ksmScan, (m) => m.median, quickNote),
    target('metadata', 'metadata <= 16 bytes per guest page', '<=', 16, 'bytes/page', metaSource, (m) => m.median, {
      note: `from ${metaFrom}${quick ? '; quick run: shrunk scenario' : ''}`,
    }),
    target('scale-wall', 'scale 16 x 1 GiB under 3 minutes', '<', 180, 's', TARGET_SOURCES.scaleWall, (m) => m.median, scaleJudged),
    target('scale-rss', 'scale 16 x 1 GiB under 8 GiB peak RSS', '<', 8 * GIB, 'bytes', TARGET_SOURCES.scaleRss, (m) => m.median, scaleJudged),
    target('huge-wall', 'huge 256 x 4 GiB on 512 GiB (fingerprints, inline) under 10 minutes', '<', 600, 's', TARGET_SOURCES.hugeWall, (m) => m.median, scaleJudged),
    target('huge-rss', 'huge 256 x 4 GiB on 512 GiB (fingerprints, inline) under 8 GiB peak RSS', '<', 8 * GIB, 'bytes', TARGET_SOURCES.hugeRss, (m) => m.median, scaleJudged),
    scaleCpuTarget(byId.get(TARGET_SOURCES.scaleCpu), quick, context.against),
    target('swap-in-dedup', 'swap-in, de-duplicated hit >= 1 x plain swap-in', '>=', 1, 'x plain', TARGET_SOURCES.swapInDeduped, (m) => m.limit?.ratio, quickNote),
    // The ratio to ksmd's rate timed beside it; without it (no KSM, not root, ...) the figure's note says why.
    ...KSMD_PHASES.map((p) =>
      target(`ksmd-${p}`, `${KSMD_PHASE_NAMES[p]}: at least 1.0x ksmd's rate (same run)`, '>=', 1, 'x ksmd', TARGET_SOURCES.ksmd[p], (m) => m.limit?.ratio, { ...quickNote, unmeasured: (m) => m.note }),
    ),
    ...KSMD_WORKLOADS.map((w) =>
      target(`ksmd-esx-${w}`, `${ESX_KSMD_NAMES[w].esx}: at least 1.0x ksmd's ${ESX_KSMD_NAMES[w].ksmd} (same run)`, '>=', 1, 'x ksmd', TARGET_SOURCES.esxKsmd[w], (m) => m.limit?.ratio, { ...quickNote, unmeasured: (m) => m.note }),
    ),
    target('sweep-speedup', '32-job sweep: 2 local workers at least 1.7x faster than 1', '>=', 1.7, 'x', SWEEP_ID.speedup, (m) => m.median, quickNote),
    target('sweep-redis', '32-job sweep through Redis with 2 workers within 10% of 2 local workers', '<=', 1.1, 'x local', SWEEP_ID.redisVsLocal, (m) => m.median, {
      ...quickNote,
      unmeasured: () => 'not measured (no redis-server on this machine)',
    }),
    target('sweep-overhead', 'sweep scheduling overhead per job under 50 ms (200 tiny jobs)', '<', 50, 'ms', SWEEP_ID.overhead, (m) => m.median, quickNote),
    ...SHARING_SCENARIOS.flatMap(({ key: sc, file }) => {
      const ids = TARGET_SOURCES.sharing[sc];
      const prefix = sc === 'overcommit' ? 'sharing' : `sharing-${sc}`;
      const name = file.replace(/\.json$/, '');
      const inline = [
        target(`${prefix}-duplicates`, `${name} tight, inline: 0 duplicate frames`, '<=', 0, 'frames', ids.inlineDuplicates, (m) => m.median, quickNote),
        target(`${prefix}-saved`, `${name} tight, inline: saved % within 0.5 points of no swapping`, '<=', 0.5, 'points', ids.inlineGap, (m) => m.median, quickNote),
      ];
      // The scanners are judged once converged: on overcommit's 4 s they have not finished a
      // second full scan (its ksm and esx figures are measured, not judged).
      if (sc === 'overcommit') return inline;
      return [
        ...inline,
        target(`${prefix}-ksm`, `${name} tight, ksm: saved % within 2 points of inline's`, '<=', 2, 'points', ids.ksmVsInline, (m) => m.median, quickNote),
        target(`${prefix}-esx`, `${name} tight, esx: saved % within 2 points of inline's`, '<=', 2, 'points', ids.esxVsInline, (m) => m.median, quickNote),
      ];
    }),
  ];
}

/**
 * Scale 16 x 1 GiB: the process CPU (user + sys) of this run's scale scenario at most 0.5 x the
 * `--compare` run's, the value being this run's median over that run's. Unmeasured without the
 * figure in this run, without --compare, or when that run lacks it; measured but not judged when
 * the runs were not side by side or this one is quick.
 */
export function scaleCpuTarget(now: Measurement | undefined, quick: boolean, against: AgainstRun | undefined): Target {
  const base = { key: 'scale-cpu', name: "scale 16 x 1 GiB: CPU <= 0.5 x the --compare run's", op: '<=', threshold: 0.5, unit: 'x old' } as const;
  const unmeasured = (note: string, file?: string): Target => ({ ...base, value: null, met: null, source: null, note, ...(file === undefined ? {} : { against: file }) });
  if (now === undefined) return unmeasured('not measured (scale suite not run or failed, or no CPU figure)');
  if (against === undefined) return unmeasured('not measured: needs --compare with a result of the scale suite on the old code (see --simulator-root)');
  const old = against.measurements.find((m) => m.id === now.id);
  if (old === undefined || !(old.median > 0)) return unmeasured(`not measured: ${against.file} has no ${now.id}`, against.file);
  const why = [...against.problems, ...(quick ? ['quick run of a shrunk scenario'] : [])];
  const measured = against.measured === undefined ? '' : `, ${against.measured}`;
  const note = `${formatValue(now.median, now.unit)} ${now.unit} now, ${formatValue(old.median, old.unit)} ${old.unit} in ${against.file}${measured}${why.length === 0 ? '' : `; not judged: ${why.join('; ')}`}`;
  const value = now.median / old.median;
  return { ...base, value, met: why.length === 0 ? value <= base.threshold : null, source: now.id, note, against: against.file };
}
