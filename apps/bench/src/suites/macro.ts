import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_SCENARIO, type Scenario } from '@pagevisor/workloads';
import { measurement, type Measurement } from '../measurement.js';
import { runSimulator, SCENARIO_DIR, scenarioFile, simulatorMissing, type SimRun } from '../simulator-cli.js';
import type { SuiteContext, SuiteResult } from '../suite-context.js';
import { driveScenario } from './drive-scenario.js';

/** Metadata per guest page of the default scenario run in this process (frame table, p2m, dedup index). */
export const METADATA_ID = 'macro.metadata-default.bytes-per-guest-page';
/** The same from the simulator's report of the default scenario, when the report carries it. */
export const METADATA_REPORT_ID = 'macro.default-inline.metadata';

type Json = Record<string, unknown>;

/** One scenario run of the matrix. */
interface Variant {
  /** Group of its measurements, e.g. `dedup-ksm`. */
  readonly group: string;
  /** In words. */
  readonly label: string;
  readonly scenario: Json;
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
 * lru and random, each with one shared swap area and with an area per domain.
 */
export function macroVariants(quick: boolean): Variant[] {
  const shrink = (s: Json, maxS: number): Json => (quick ? shrinkScenario(s, 4, maxS) : s);
  const out: Variant[] = [];
  const compare = readScenario('static-compare.json');
  for (const strategy of ['none', 'inline', 'ksm', 'esx']) {
    out.push({ group: `dedup-${strategy}`, label: `static-compare, dedup ${strategy}`, scenario: shrink({ ...compare, dedup: { strategy } }, 2) });
  }
  out.push({ group: 'default-inline', label: 'default scenario, dedup inline', scenario: shrink(structuredClone(DEFAULT_SCENARIO) as unknown as Json, 5) });
  const over = readScenario('overcommit.json');
  for (const mode of ['shared', 'per-domain']) {
    for (const policy of ['clock', 'lru', 'random']) {
      const machine = over['machine'] as Json;
      // compareBaseline off: both modes are in the matrix already, and it would double each run.
      const swap = { ...(machine['swap'] as Json), mode, policy, compareBaseline: false };
      out.push({ group: `swap-${mode}-${policy}`, label: `overcommit, swap ${mode}, ${policy}`, scenario: shrink({ ...over, machine: { ...machine, swap } }, 1) });
    }
  }
  return out;
}

function variantMeasurements(v: Variant, runs: readonly SimRun[]): Measurement[] {
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
  if (f[0]!.swap !== undefined) {
    out.push(
      m('disk-peak', 'swap disk peak', 'bytes', 'lower', f.map((x) => x.swap!.diskPeakBytes), true),
      m('swap-outs', 'swap outs', 'pages', 'lower', f.map((x) => x.swap!.swapOuts), true),
      m('swap-ins', 'swap ins', 'pages', 'lower', f.map((x) => x.swap!.swapIns), true),
    );
  }
  if (f[0]!.metadata !== undefined) {
    out.push(m('metadata', `metadata per guest page (report's ${f[0]!.metadata.field})`, 'bytes/page', 'lower', f.map((x) => x.metadata?.bytesPerGuestPage ?? NaN), true));
  }
  out.push(
    m('wall-ms', 'wall time of the run', 'ms', 'lower', f.map((x) => x.wallMs)),
    m('peak-rss', 'peak RSS of the process', 'bytes', 'lower', runs.map((r) => r.child.maxRssBytes)),
  );
  return out;
}

/**
 * Metadata per guest page of the default scenario (quick: shrunk), run to its end in this
 * process under inline dedup: frame table with its allocator, p2m with the reverse map, and the
 * dedup index, each over the populated guest pages. The simulator's report carries no metadata
 * figure, hence this run.
 */
async function benchMetadata(ctx: SuiteContext): Promise<{ measurements: Measurement[]; notes: string[] }> {
  const scenario = (ctx.quick ? shrinkScenario(structuredClone(DEFAULT_SCENARIO) as unknown as Json, 8, 5) : DEFAULT_SCENARIO) as Scenario;
  ctx.log('macro: metadata of the default scenario (in this process)');
  const { hv, failedGuests } = await driveScenario(scenario);
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

/** The macro suite: the matrix through the simulator CLI (a child process per run), then the metadata run. */
export async function runMacro(ctx: SuiteContext): Promise<SuiteResult> {
  const missing = simulatorMissing();
  if (missing !== undefined) throw new Error(missing);
  const out: Measurement[] = [];
  const notes: string[] = [
    `${ctx.repeats} runs of each configuration, each in a child process (pagevisor run FILE --json --quiet); simulated figures must be equal between runs (flagged if not), wall time and peak RSS vary.`,
  ];
  const errors: string[] = [];
  for (const v of macroVariants(ctx.quick)) {
    ctx.log(`macro: ${v.label}`);
    const file = scenarioFile(v.scenario, v.group);
    try {
      const runs: SimRun[] = [];
      for (let r = 0; r < ctx.repeats; r++) runs.push(await runSimulator(file.path));
      out.push(...variantMeasurements(v, runs));
    } catch (e) {
      errors.push(`${v.label}: ${(e as Error).message}`);
    } finally {
      file.remove();
    }
  }
  const meta = await benchMetadata(ctx);
  out.push(...meta.measurements);
  notes.push(...meta.notes);
  return { suite: 'macro', measurements: out, notes, errors };
}
