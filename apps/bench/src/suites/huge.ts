import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { measurement, type Measurement } from '../measurement.js';
import { runSimulator, SCENARIO_DIR, scenarioFile, simulatorMissing, type SimRun } from '../simulator-cli.js';
import type { SuiteContext, SuiteResult } from '../suite-context.js';
import { shrinkScenario } from './macro.js';
import { SCALE_SCENARIO } from './scale.js';

/** The huge scenario: 256 guests of 4 GiB (1 TiB of guest memory) on 512 GiB, page contents as fingerprints. */
export const HUGE_SCENARIO = 'huge-256x4g.json';
/** Where it lives: beside the bench, not among the simulator's examples (which tests run whole). */
export const HUGE_SCENARIO_PATH = fileURLToPath(new URL(`../../scenarios/${HUGE_SCENARIO}`, import.meta.url));
/** Heap limit given to the children: generous, so that the RSS target, not the heap, decides. */
export const HUGE_MAX_OLD_SPACE_MIB = 12288;
/** A run is killed after this long (the target is 10 minutes). */
export const HUGE_TIMEOUT_MS = 30 * 60 * 1000;
/** Ids the targets read. */
export const HUGE_ID = {
  wall: 'huge.huge-256x4g.wall-s',
  peakRss: 'huge.huge-256x4g.peak-rss',
  rssPerPage: 'huge.huge-256x4g.rss-per-guest-page',
  bytesRssPerPage: 'huge.scale-bytes.rss-per-guest-page',
  fingerprintsRssPerPage: 'huge.scale-fingerprints.rss-per-guest-page',
} as const;

type Json = Record<string, unknown>;

/** `scenario` with its machine's contents set to `contents`. */
export function withContents(scenario: Json, contents: 'bytes' | 'fingerprints'): Json {
  return { ...scenario, machine: { ...(scenario['machine'] as Json), contents } };
}

/**
 * Fingerprint mode at the size it is for: the huge scenario (bench/scenarios/huge-256x4g.json,
 * 1 TiB of guest memory on a 512 GiB host under inline de-duplication) through the CLI in a
 * child, its wall time, CPU, peak RSS and peak RSS per guest page; and beside it the scale
 * scenario (16 x 1 GiB on 8 GiB) in both content modes, for the RSS per guest page of each mode
 * on the same scenario (their saved % must be equal: the modes simulate the same thing). Quick:
 * the huge scenario 256 times smaller and the scale one 64 times.
 */
export async function runHuge(ctx: SuiteContext): Promise<SuiteResult> {
  const missing = simulatorMissing();
  if (missing !== undefined) throw new Error(missing);
  const load = (path: string): Json => JSON.parse(readFileSync(path, 'utf8')) as Json;
  const huge = ctx.quick ? shrinkScenario(load(HUGE_SCENARIO_PATH), 256, 5) : load(HUGE_SCENARIO_PATH);
  const scale = ctx.quick ? shrinkScenario(load(join(SCENARIO_DIR, SCALE_SCENARIO)), 64, 5) : load(join(SCENARIO_DIR, SCALE_SCENARIO));
  const run = async (scenario: Json, name: string): Promise<SimRun[]> => {
    const file = scenarioFile(scenario, name);
    try {
      const runs: SimRun[] = [];
      for (let r = 0; r < ctx.repeats; r++) {
        ctx.log(`huge: ${name}${ctx.quick ? ' (shrunk)' : ''}, run ${r + 1} of ${ctx.repeats}`);
        runs.push(await runSimulator(file.path, { maxOldSpaceMiB: HUGE_MAX_OLD_SPACE_MIB, timeoutMs: HUGE_TIMEOUT_MS }));
      }
      return runs;
    } finally {
      file.remove();
    }
  };
  const scaleBytes = await run(withContents(scale, 'bytes'), 'scale-bytes');
  const scaleFingerprints = await run(withContents(scale, 'fingerprints'), 'scale-fingerprints');
  const hugeRuns = await run(huge, 'huge-256x4g');
  const saved = (runs: SimRun[]): number => runs[0]!.figures.savedPct;
  if (saved(scaleBytes) !== saved(scaleFingerprints)) {
    throw new Error(`huge: the scale scenario saved ${saved(scaleBytes)}% with bytes and ${saved(scaleFingerprints)}% with fingerprints: the modes must simulate the same`);
  }
  const out: Measurement[] = [];
  const perPage = (runs: SimRun[]): number[] => runs.map((r) => r.child.maxRssBytes / r.figures.guestPages);
  const add = (group: string, key: string, name: string, unit: string, samples: number[], exact = false): void => {
    out.push(measurement({ suite: 'huge', group, key, name, unit, better: key === 'saved-pct' ? 'higher' : 'lower', samples, exact }));
  };
  add('huge-256x4g', 'wall-s', 'wall time (whole process)', 's', hugeRuns.map((r) => r.child.wallMs / 1000));
  if (hugeRuns.every((r) => r.child.cpuSource !== 'none')) add('huge-256x4g', 'process-cpu-s', 'CPU time of the process, user + sys', 's', hugeRuns.map((r) => r.child.cpuMs / 1000));
  add('huge-256x4g', 'peak-rss', 'peak RSS', 'bytes', hugeRuns.map((r) => r.child.maxRssBytes));
  add('huge-256x4g', 'rss-per-guest-page', 'peak RSS per guest page', 'bytes/page', perPage(hugeRuns));
  add('huge-256x4g', 'saved-pct', 'saved', '%', hugeRuns.map((r) => r.figures.savedPct), true);
  const meta = hugeRuns[0]!.figures.metadata;
  if (meta !== undefined) add('huge-256x4g', 'metadata', `metadata per guest page (report: ${meta.field})`, 'bytes/page', hugeRuns.map((r) => r.figures.metadata!.bytesPerGuestPage), true);
  add('scale-bytes', 'rss-per-guest-page', 'scale scenario, bytes: peak RSS per guest page', 'bytes/page', perPage(scaleBytes));
  add('scale-fingerprints', 'rss-per-guest-page', 'scale scenario, fingerprints: peak RSS per guest page', 'bytes/page', perPage(scaleFingerprints));
  add('scale-fingerprints', 'wall-s', 'scale scenario, fingerprints: wall time', 's', scaleFingerprints.map((r) => r.child.wallMs / 1000));
  add('scale-bytes', 'wall-s', 'scale scenario, bytes: wall time', 's', scaleBytes.map((r) => r.child.wallMs / 1000));
  const h = hugeRuns[0]!.figures;
  return {
    suite: 'huge',
    measurements: out,
    notes: [
      `${HUGE_SCENARIO}${ctx.quick ? ' (256 times smaller)' : ''}: ${h.guestPages} guest pages, ${h.machineFramesUsed} frames used at the end, ${h.failedGuests} guests failed; node --max-old-space-size=${HUGE_MAX_OLD_SPACE_MIB}. Peak RSS is GNU time's maximum resident set size (else VmHWM polled).`,
      `${SCALE_SCENARIO}${ctx.quick ? ' (64 times smaller)' : ''} in each content mode: the same ${saved(scaleBytes)}% saved in both (checked).`,
    ],
  };
}
