import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runJobs } from '@pagevisor/simulator';
import { DEFAULT_SCENARIO, jobId, parseScenario, ScenarioError, type Scenario, type Sweep, type SweepJob } from '@pagevisor/workloads';
import { measurement, type Measurement } from '../measurement.js';
import { simReportFigures, type SimReportFigures } from '../sim-report.js';
import { failureSummary, linkPackages, SCENARIO_DIR, simulatorMissing } from '../simulator-cli.js';
import { BUILT_IN_STRATEGIES, type BenchStrategy, type PackageLink } from '../strategies.js';
import type { SuiteContext, SuiteResult } from '../suite-context.js';
import { driveScenario } from './drive-scenario.js';

/** Metadata per guest page of the default scenario run in this process (frame table, p2m, dedup index). */
export const METADATA_ID = 'macro.metadata-default.bytes-per-guest-page';
/** The same from the simulator's report of the default scenario, when the report carries it. */
export const METADATA_REPORT_ID = 'macro.default-inline.metadata';

type Json = Record<string, unknown>;

/** One scenario run of the matrix. */
export interface Variant {
  /** Group of its measurements, e.g. `dedup-ksm`. */
  readonly group: string;
  /** In words. */
  readonly label: string;
  readonly scenario: Json;
  /** Name of the strategy the report must say ran (a built-in's or the plugin's). */
  readonly strategy: string;
  /** Packages to link beside the scenario file (a plugin named by its package name). */
  readonly links?: readonly PackageLink[];
  /** The run must swap nothing (a machine sized to hold every guest): a run that swapped is an error. */
  readonly expectNoSwap?: boolean;
}

/** Strategies of the sharing-survives-swap comparison, inline first: the others are judged against it. */
export const SHARING_STRATEGIES = ['inline', 'ksm', 'esx'] as const;

/**
 * Scenarios of the sharing comparison, each run tight (as it is: guest memory 3x RAM, one shared
 * swap area) and roomy: `overcommit` (overcommit.json, 4 s of moving working sets) and `reading`
 * (overcommit-reading.json, the same guests reading for 60 s: long enough for a scanner to
 * converge under swap; left out when the simulator package has no such file).
 */
export const SHARING_SCENARIOS = [
  { key: 'overcommit', file: 'overcommit.json', maxQuickS: 1 },
  { key: 'reading', file: 'overcommit-reading.json', maxQuickS: 5 },
] as const;
/** Key of a {@link SHARING_SCENARIOS} entry. */
export type SharingScenario = (typeof SHARING_SCENARIOS)[number]['key'];

/** Group of a sharing run: `sharing-<scenario>-<tight|roomy>-<strategy>`. */
export function sharingGroup(scenario: SharingScenario, size: 'tight' | 'roomy', strategy: string): string {
  return `sharing-${scenario}-${size}-${strategy}`;
}

/** Ids of the sharing comparison's figures on `scenario` (the targets read them). */
export function sharingIds(scenario: SharingScenario) {
  return {
    /** Duplicate frames at the end of the tight inline run. */
    inlineDuplicates: `macro.${sharingGroup(scenario, 'tight', 'inline')}.duplicate-frames`,
    /** |saved % tight - saved % roomy| under inline. */
    inlineGap: `macro.sharing-${scenario}.inline-tight-vs-roomy`,
    /** |saved % of ksm (esx) tight - saved % of inline tight|. */
    ksmVsInline: `macro.sharing-${scenario}.ksm-vs-inline-tight`,
    esxVsInline: `macro.sharing-${scenario}.esx-vs-inline-tight`,
  } as const;
}

/**
 * Machine MiB that hold every guest of `s` with room to spare (a quarter more than the guests'
 * memory together): under ksm and esx every populated page takes a frame until it is merged, so
 * nothing is evicted however late the scanner merges.
 */
export function roomyMemoryMiB(s: Json): number {
  const guests = s['guests'] as Json[];
  const total = guests.reduce((n, g) => n + Number(g['count'] ?? 1) * Number(g['memoryMiB']), 0);
  return Math.ceil(total * 1.25);
}

function readScenario(name: string): Json {
  return JSON.parse(readFileSync(join(SCENARIO_DIR, name), 'utf8')) as Json;
}

/** `s` with machine and guests `factor` times smaller and at most `maxS` simulated seconds: quick runs. */
export function shrinkScenario(s: Json, factor: number, maxS: number): Json {
  const machine = s['machine'] as Json;
  const guests = s['guests'] as Json[];
  return {
    ...s,
    durationS: Math.min(Number(s['durationS']), maxS),
    machine: { ...machine, memoryMiB: Math.max(1, Math.round(Number(machine['memoryMiB']) / factor)) },
    guests: guests.map((g) => ({ ...g, memoryMiB: Math.max(1, Math.round(Number(g['memoryMiB']) / factor)) })),
  };
}

/**
 * The scenario x strategy matrix: static-compare.json (4 guests of 32 MiB sharing 70% of an
 * image, on 160 MiB) under dedup none, inline, ksm and esx; the default scenario (8 x 128 MiB on
 * 512 MiB) under inline; overcommit.json (6 x 16 MiB on 32 MiB with swap) under eviction clock,
 * lru and random, each with one shared swap area and with an area per domain. Each of
 * `strategies` (plugins) adds static-compare (`dedup-<name>`), the default scenario
 * (`default-<name>`) and overcommit with one shared area under clock (`swap-shared-clock-<name>`)
 * under it, each after the built-ins' runs of the same scenario; its scenario files name it so
 * that the child finds it from a temporary directory (see `BenchStrategy.scenarioSpecifier`).
 * Last, the sharing comparison: each of {@link SHARING_SCENARIOS} under each of
 * {@link SHARING_STRATEGIES}, as it is (`sharing-<scenario>-tight-<strategy>`) and on a machine of
 * {@link roomyMemoryMiB} (`sharing-<scenario>-roomy-<strategy>`, which must swap nothing).
 */
export function macroVariants(quick: boolean, plugins: readonly BenchStrategy[] = []): Variant[] {
  const strategies = plugins.filter((p) => p.kind === 'dedup');
  const policies = plugins.filter((p) => p.kind === 'eviction-policy');
  const allocators = plugins.filter((p) => p.kind === 'allocator');
  const shrink = (s: Json, maxS: number): Json => (quick ? shrinkScenario(s, 4, maxS) : s);
  const dedupOf = (p: BenchStrategy): Json => ({ strategy: p.scenarioSpecifier });
  const linksOf = (p: BenchStrategy): { links?: readonly PackageLink[] } => (p.link === undefined ? {} : { links: [p.link] });
  const out: Variant[] = [];
  const compare = readScenario('static-compare.json');
  for (const strategy of BUILT_IN_STRATEGIES) {
    out.push({ group: `dedup-${strategy}`, label: `static-compare, dedup ${strategy}`, strategy, scenario: shrink({ ...compare, dedup: { strategy } }, 2) });
  }
  for (const p of strategies) {
    out.push({ group: `dedup-${p.slug}`, label: `static-compare, dedup ${p.name}`, strategy: p.name, scenario: shrink({ ...compare, dedup: dedupOf(p) }, 2), ...linksOf(p) });
  }
  const onAllocator = (s: Json, p: BenchStrategy): Json => ({ ...s, machine: { ...(s['machine'] as Json), allocator: p.scenarioSpecifier } });
  for (const p of allocators) {
    out.push({ group: `dedup-inline-alloc-${p.slug}`, label: `static-compare, dedup inline, allocator ${p.name}`, strategy: 'inline', scenario: shrink(onAllocator({ ...compare, dedup: { strategy: 'inline' } }, p), 2), ...linksOf(p) });
  }
  const defaultScenario = (): Json => structuredClone(DEFAULT_SCENARIO) as unknown as Json;
  out.push({ group: 'default-inline', label: 'default scenario, dedup inline', strategy: 'inline', scenario: shrink(defaultScenario(), 5) });
  for (const p of strategies) {
    out.push({ group: `default-${p.slug}`, label: `default scenario, dedup ${p.name}`, strategy: p.name, scenario: shrink({ ...defaultScenario(), dedup: dedupOf(p) }, 5), ...linksOf(p) });
  }
  for (const p of allocators) {
    out.push({ group: `default-inline-alloc-${p.slug}`, label: `default scenario, dedup inline, allocator ${p.name}`, strategy: 'inline', scenario: onAllocator(shrink(defaultScenario(), 5), p), ...linksOf(p) });
  }
  const over = readScenario('overcommit.json');
  const overStrategy = String((over['dedup'] as Json | undefined)?.['strategy'] ?? 'inline');
  const overWith = (mode: string, policy: string, extra: Json = {}): Json => {
    const machine = over['machine'] as Json;
    // compareBaseline off: both modes are in the matrix already, and it would double each run.
    const swap = { ...(machine['swap'] as Json), mode, policy, compareBaseline: false };
    return shrink({ ...over, ...extra, machine: { ...machine, swap } }, 1);
  };
  for (const mode of ['shared', 'per-domain']) {
    for (const policy of ['clock', 'lru', 'random']) {
      out.push({ group: `swap-${mode}-${policy}`, label: `overcommit, swap ${mode}, ${policy}`, strategy: overStrategy, scenario: overWith(mode, policy) });
    }
    for (const p of policies) {
      out.push({ group: `swap-${mode}-${p.slug}`, label: `overcommit, swap ${mode}, ${p.name}`, strategy: overStrategy, scenario: overWith(mode, p.scenarioSpecifier), ...linksOf(p) });
    }
  }
  for (const p of allocators) {
    out.push({ group: `swap-shared-clock-alloc-${p.slug}`, label: `overcommit, swap shared, clock, allocator ${p.name}`, strategy: overStrategy, scenario: onAllocator(overWith('shared', 'clock'), p), ...linksOf(p) });
  }
  for (const p of strategies) {
    out.push({
      group: `swap-shared-clock-${p.slug}`,
      label: `overcommit, swap shared, clock, dedup ${p.name}`,
      strategy: p.name,
      scenario: overWith('shared', 'clock', { dedup: dedupOf(p) }),
      ...linksOf(p),
    });
  }
  // Sharing survives swap: each sharing scenario as it is (tight RAM, one shared area;
  // compareBaseline off) and on a machine that holds every guest (the same swap configured,
  // nothing evicted), per strategy.
  for (const sc of SHARING_SCENARIOS) {
    if (sc.file !== 'overcommit.json' && !existsSync(join(SCENARIO_DIR, sc.file))) continue;
    const base = sc.file === 'overcommit.json' ? over : readScenario(sc.file);
    const baseMachine = base['machine'] as Json;
    const baseSwap = baseMachine['swap'] as Json;
    const name = sc.file.replace(/\.json$/, '');
    for (const strategy of SHARING_STRATEGIES) {
      const swap = { ...baseSwap, compareBaseline: false };
      const s0 = { ...base, dedup: { strategy }, machine: { ...baseMachine, swap } };
      const tight = quick ? shrinkScenario(s0, 4, sc.maxQuickS) : s0;
      const tightMiB = Number((tight['machine'] as Json)['memoryMiB']);
      const roomyMiB = roomyMemoryMiB(tight);
      const roomy = { ...tight, machine: { ...(tight['machine'] as Json), memoryMiB: roomyMiB } };
      out.push(
        { group: sharingGroup(sc.key, 'tight', strategy), label: `${name} as is (tight, ${tightMiB} MiB), dedup ${strategy}`, strategy, scenario: tight },
        { group: sharingGroup(sc.key, 'roomy', strategy), label: `${name} on ${roomyMiB} MiB (roomy: nothing swapped), dedup ${strategy}`, strategy, scenario: roomy, expectNoSwap: true },
      );
    }
  }
  return out;
}

/**
 * The sharing comparison's derived figures, from the variants' saved % in `ms`, per sharing
 * scenario (group `sharing-<scenario>`): per strategy |tight - roomy| (inline's is judged:
 * sharing kept while swapping), and for ksm and esx their tight run against inline's
 * (|ksm - inline|). A figure whose runs are missing (a run failed, a scenario not run) is left out.
 */
export function sharingMeasurements(ms: readonly Measurement[]): Measurement[] {
  const byId = new Map(ms.map((m) => [m.id, m]));
  const out: Measurement[] = [];
  for (const { key: sc, file } of SHARING_SCENARIOS) {
    const saved = (size: 'tight' | 'roomy', strategy: string): number | undefined => byId.get(`macro.${sharingGroup(sc, size, strategy)}.saved-pct`)?.median;
    const name = file.replace(/\.json$/, '');
    const gap = (key: string, what: string, a: number | undefined, b: number | undefined): void => {
      if (a === undefined || b === undefined) return;
      // Saved % has two decimals: so does their difference (no 0.1500000001).
      const points = Math.round(Math.abs(a - b) * 100) / 100;
      out.push(measurement({ suite: 'macro', group: `sharing-${sc}`, key, name: `${name}, ${what}`, unit: 'points', better: 'lower', samples: [points], exact: true }));
    };
    for (const strategy of SHARING_STRATEGIES) {
      gap(`${strategy}-tight-vs-roomy`, `dedup ${strategy}: |saved % tight - saved % roomy|`, saved('tight', strategy), saved('roomy', strategy));
      if (strategy !== 'inline') gap(`${strategy}-vs-inline-tight`, `tight: |saved % ${strategy} - saved % inline|`, saved('tight', strategy), saved('tight', 'inline'));
    }
  }
  return out;
}

/** One run of a variant: its report's figures and the peak RSS of the process it ran in. */
interface MacroRun {
  readonly figures: SimReportFigures;
  readonly peakRssBytes: number;
}

function variantMeasurements(v: Variant, runs: readonly MacroRun[]): Measurement[] {
  const f = runs.map((r) => r.figures);
  const m = (key: string, name: string, unit: string, better: 'higher' | 'lower', samples: number[], exact = false): Measurement => {
    const spread = exact && new Set(samples).size > 1;
    return measurement({
      suite: 'macro',
      group: v.group,
      key,
      name: `${v.label}: ${name}`,
      unit,
      better,
      samples,
      exact,
      ...(spread ? { note: 'NOT deterministic: repeats of one seed differ' } : {}),
    });
  };
  const out = [
    m('saved-pct', 'saved', '%', 'higher', f.map((x) => x.savedPct), true),
    m('frames-used', 'machine frames used', 'frames', 'lower', f.map((x) => x.machineFramesUsed), true),
    m('cpu-ms', 'simulated CPU', 'ms', 'lower', f.map((x) => x.cpuTotalNs / 1e6), true),
  ];
  if (f[0]!.duplicateFrames !== undefined) {
    out.push(m('duplicate-frames', 'duplicate frames at the end', 'frames', 'lower', f.map((x) => x.duplicateFrames ?? NaN), true));
  }
  if (f[0]!.swap !== undefined) {
    out.push(
      m('disk-peak', 'swap disk peak', 'bytes', 'lower', f.map((x) => x.swap!.diskPeakBytes), true),
      m('swap-outs', 'swap outs', 'pages', 'lower', f.map((x) => x.swap!.swapOuts), true),
      m('swap-ins', 'swap ins', 'pages', 'lower', f.map((x) => x.swap!.swapIns), true),
    );
    if (f[0]!.pagedPages !== undefined) out.push(m('paged-pages', 'guest pages out on swap at the end (not counted as saved)', 'pages', 'lower', f.map((x) => x.pagedPages ?? NaN), true));
    if (f[0]!.swap.swapInsCached !== undefined && f[0]!.swap.swapInsDeduped !== undefined) {
      out.push(
        m('swap-ins-cached', 'faults onto the frame caching their slot', 'pages', 'higher', f.map((x) => x.swap!.swapInsCached ?? NaN), true),
        m('swap-ins-deduped', 'swap-ins onto a resident frame of equal content', 'pages', 'higher', f.map((x) => x.swap!.swapInsDeduped ?? NaN), true),
      );
    }
  }
  if (f[0]!.metadata !== undefined) {
    out.push(m('metadata', `metadata per guest page (report's ${f[0]!.metadata.field})`, 'bytes/page', 'lower', f.map((x) => x.metadata?.bytesPerGuestPage ?? NaN), true));
  }
  out.push(
    m('wall-ms', 'wall time of the run', 'ms', 'lower', f.map((x) => x.wallMs)),
    m('peak-rss', 'peak RSS of the process', 'bytes', 'lower', runs.map((r) => r.peakRssBytes)),
  );
  return out;
}

/** The default scenario of the metadata run (quick: shrunk), under `strategy` when given. */
function metadataScenario(quick: boolean, strategy?: string): Scenario {
  const base = structuredClone(DEFAULT_SCENARIO) as unknown as Json;
  const s = strategy === undefined ? base : { ...base, dedup: { strategy } };
  return (quick ? shrinkScenario(s, 8, 5) : s) as unknown as Scenario;
}

/**
 * Metadata per guest page of the default scenario (quick: shrunk), run to its end in this
 * process under inline dedup: frame table with its allocator, p2m with the reverse map, and the
 * dedup index, each over the populated guest pages. The simulator's report carries no metadata
 * figure, hence this run.
 */
async function benchMetadata(ctx: SuiteContext): Promise<{ measurements: Measurement[]; notes: string[] }> {
  ctx.log('macro: metadata of the default scenario (in this process)');
  const { hv, failedGuests } = await driveScenario(metadataScenario(ctx.quick));
  if (failedGuests > 0) throw new Error(`metadata run: ${failedGuests} guests of the default scenario failed`);
  const t = hv.totals();
  const perPage = (bytes: number): number => bytes / t.guestPages;
  const m = (key: string, name: string, bytes: number): Measurement =>
    measurement({ suite: 'macro', group: 'metadata-default', key, name, unit: 'bytes/page', better: 'lower', samples: [perPage(bytes)], exact: true });
  return {
    measurements: [
      m('bytes-per-guest-page', 'metadata per guest page, default scenario, inline (frame table + p2m + dedup)', hv.metadataBytes()),
      m('frame-table', '  of which frame table and allocator', hv.frames.metadataBytes()),
      m('p2m', '  of which p2m and reverse map', hv.p2m.metadataBytes()),
      m('dedup', '  of which inline dedup index', hv.dedup.metadataBytes()),
    ],
    notes: [
      `metadata: the default scenario (${t.guestPages} guest pages on ${hv.memory.frames} frames, ${t.savedPct}% saved) run in this process under inline dedup, Hypervisor.metadataBytes() over the guest pages at the end.`,
    ],
  };
}

/** The metadata run of {@link benchMetadata} under a `--strategy` plugin (group `metadata-default-<name>`). */
async function benchPluginMetadata(ctx: SuiteContext, p: BenchStrategy): Promise<Measurement[]> {
  ctx.log(`macro: metadata of the default scenario, dedup ${p.name} (in this process)`);
  const { hv, failedGuests, strategy } = await driveScenario(metadataScenario(ctx.quick, p.specifier), { baseDir: p.baseDir });
  if (strategy !== p.name) throw new Error(`the plugin built is named "${strategy}", not "${p.name}"`);
  if (failedGuests > 0) throw new Error(`${failedGuests} guests of the default scenario failed`);
  const guestPages = hv.totals().guestPages;
  const m = (key: string, name: string, bytes: number): Measurement =>
    measurement({ suite: 'macro', group: `metadata-default-${p.slug}`, key, name, unit: 'bytes/page', better: 'lower', samples: [bytes / guestPages], exact: true });
  return [
    m('bytes-per-guest-page', `metadata per guest page, default scenario, ${p.name} (frame table + p2m + dedup)`, hv.metadataBytes()),
    m('dedup', `  of which the ${p.name} dedup index`, hv.dedup.metadataBytes()),
  ];
}

/** Throws when the report names another strategy than the variant's (a run that did not measure what it says). */
function checkStrategy(v: Variant, run: MacroRun): void {
  const ran = run.figures.strategy;
  if (ran !== undefined && ran !== v.strategy) throw new Error(`the report says dedup strategy "${ran}" ran, not "${v.strategy}"`);
}

/** Throws when a run that must swap nothing swapped (its machine does not hold the guests after all). */
function checkNoSwap(v: Variant, run: MacroRun): void {
  const outs = run.figures.swap?.swapOuts ?? 0;
  if (v.expectNoSwap === true && outs > 0) throw new Error(`${outs} pages swapped out on a machine meant to hold every guest`);
}

/**
 * The matrix as one sweep (the simulator's `runJobs`, what `pagevisor sweep` runs): a job per
 * distinct scenario (variants that resolve to one scenario share its runs: the simulated figures
 * are deterministic), on one worker, each job in a fresh process (so each report's peak RSS is
 * its own run's), the whole list `repeats` times. Relative plugin paths are absolute in the
 * variants already; packages are linked into the jobs' base directory. Returns each job's runs,
 * and the errors of the jobs that failed (a plugin that does not load, a guest out of memory).
 */
async function runMatrix(variants: readonly Variant[], repeats: number): Promise<{ runs: Map<string, MacroRun[]>; errors: Map<string, string> }> {
  const jobs = new Map<string, SweepJob>();
  const errors = new Map<string, string>();
  const idOf = new Map<Variant, string>();
  for (const v of variants) {
    try {
      const scenario = parseScenario(v.scenario);
      const id = jobId(scenario);
      idOf.set(v, id);
      if (!jobs.has(id)) jobs.set(id, { id, axes: { variant: v.group }, scenario });
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
      errors.set(v.group, e.message);
    }
  }
  const sweep: Sweep = { name: 'macro', base: {}, axes: { variant: [...jobs.values()].map((j) => j.axes['variant']) } };
  const dir = mkdtempSync(join(tmpdir(), 'pagevisor-bench-macro-'));
  const runs = new Map<string, MacroRun[]>([...jobs.keys()].map((id) => [id, []]));
  try {
    linkPackages(dir, variants.flatMap((v) => v.links ?? []));
    for (let r = 0; r < repeats; r++) {
      const out = join(dir, `repeat-${r}`);
      const outcome = await runJobs(sweep, [...jobs.values()], dir, { out, jobs: 1, freshProcesses: true });
      for (const row of outcome.rows) {
        if (row.status === 'failed') {
          errors.set(row.job, row.error ?? 'failed');
          continue;
        }
        const text = readFileSync(join(out, 'runs', `${row.job}.json`), 'utf8');
        const report = JSON.parse(text) as { wall: { peakRssBytes: number } };
        const figures = simReportFigures(report);
        if (figures.failedGuests > 0) errors.set(row.job, failureSummary(text) ?? `${figures.failedGuests} guests failed`);
        else runs.get(row.job)!.push({ figures, peakRssBytes: report.wall.peakRssBytes });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Each variant: its job's runs, or why there are none.
  const byVariant = new Map<string, MacroRun[]>();
  for (const v of variants) {
    const id = idOf.get(v);
    const error = id === undefined ? errors.get(v.group) : errors.get(id);
    if (error !== undefined) errors.set(v.group, error);
    else byVariant.set(v.group, runs.get(id!)!);
  }
  return { runs: byVariant, errors };
}

/**
 * The macro suite: the matrix as one sweep ({@link runMatrix}), then the metadata run, then the
 * metadata run under each `--strategy` plugin. A run that fails (a guest out of memory, a
 * plugin's `create` throwing, a report naming another strategy) is listed in the suite's errors
 * and the others still count.
 */
export async function runMacro(ctx: SuiteContext): Promise<SuiteResult> {
  const missing = simulatorMissing();
  if (missing !== undefined) throw new Error(missing);
  const strategies = ctx.strategies ?? [];
  const out: Measurement[] = [];
  const notes: string[] = [
    `The matrix is one sweep (the simulator's runJobs, what pagevisor sweep runs): a job per distinct scenario, each run in a fresh worker process, the whole list ${ctx.repeats} times; simulated figures must be equal between runs (flagged if not), wall time and peak RSS vary.`,
  ];
  const dedupPlugins = strategies.filter((p) => p.kind === 'dedup');
  if (dedupPlugins.length > 0) {
    notes.push(`--strategy plugins: ${dedupPlugins.map((p) => `${p.name} (${p.specifier})`).join(', ')}: static-compare, the default scenario and overcommit (swap shared, clock) under each, beside the built-ins.`);
  }
  for (const [kind, what] of [['eviction-policy', '--policy plugins: overcommit with a shared area and with an area per domain under each, beside clock, lru and random'], ['allocator', '--allocator plugins: static-compare, the default scenario and overcommit (swap shared, clock), inline, on each, beside the buddy allocator']] as const) {
    const given = strategies.filter((p) => p.kind === kind);
    if (given.length > 0) notes.push(`${what.split(':')[0]}: ${given.map((p) => `${p.name} (${p.specifier})`).join(', ')}:${what.split(':')[1]}.`);
  }
  const variants = macroVariants(ctx.quick, strategies);
  ctx.log(`macro: ${variants.length} configurations as one sweep, ${ctx.repeats} times`);
  const matrix = await runMatrix(variants, ctx.repeats);
  const errors: string[] = [];
  const firstGroup = new Map<MacroRun[], string>();
  for (const v of variants) {
    const error = matrix.errors.get(v.group);
    const runs = matrix.runs.get(v.group);
    try {
      if (error !== undefined || runs === undefined) throw new Error(error ?? 'not run');
      for (const run of runs) {
        checkStrategy(v, run);
        checkNoSwap(v, run);
      }
      out.push(...variantMeasurements(v, runs));
      const same = firstGroup.get(runs);
      if (same !== undefined) notes.push(`${v.group}: the same scenario as ${same}, whose runs its figures are.`);
      else firstGroup.set(runs, v.group);
    } catch (e) {
      errors.push(`${v.label}: ${(e as Error).message}`);
    }
  }
  const sharing = sharingMeasurements(out);
  out.push(...sharing);
  notes.push(
    `sharing: ${SHARING_SCENARIOS.filter((x) => out.some((m) => m.group.startsWith(`sharing-${x.key}-`))).map((x) => x.file).join(' and ') || 'no scenario'} under ${SHARING_STRATEGIES.join(', ')}, each as it is (tight: guest memory 3x RAM, one shared swap area) and on a machine holding every guest (roomy: the same swap configured, nothing swapped out); duplicate frames are the report's totals.duplicateFrames at the end (resident frames whose content another resident frame holds); the gaps are absolute differences of saved % in points (saved % counts resident pages only: a page out on swap saves nothing).`,
  );
  const meta = await benchMetadata(ctx);
  out.push(...meta.measurements);
  notes.push(...meta.notes);
  for (const p of dedupPlugins) {
    try {
      out.push(...(await benchPluginMetadata(ctx, p)));
    } catch (e) {
      errors.push(`metadata of the default scenario, dedup ${p.name}: ${(e as Error).message}`);
    }
  }
  return { suite: 'macro', measurements: out, notes, errors };
}
