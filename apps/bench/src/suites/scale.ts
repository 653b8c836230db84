import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { measurement, type Measurement } from '../measurement.js';
import { runSimulator, SCENARIO_DIR, scenarioFile, simulatorMissing, type SimRun } from '../simulator-cli.js';
import type { SuiteContext, SuiteResult } from '../suite-context.js';
import { shrinkScenario } from './macro.js';

/** The scale scenario: 16 guests of 1 GiB on 8 GiB of RAM. */
export const SCALE_SCENARIO = 'scale-16x1g.json';
/** Heap limit given to the child: generous, so that the RSS target, not the heap, decides. */
export const SCALE_MAX_OLD_SPACE_MIB = 6144;
/** A run is killed after this long (the target is 3 minutes). */
export const SCALE_TIMEOUT_MS = 15 * 60 * 1000;
/** Ids the targets read. */
export const SCALE_ID = {
  wall: 'scale.scale-16x1g.wall-s',
  peakRss: 'scale.scale-16x1g.peak-rss',
  metadata: 'scale.scale-16x1g.metadata',
} as const;

/**
 * Runs apps/simulator/scenarios/scale-16x1g.json through the CLI in a child process (node
 * --max-old-space-size=6144) and reports its wall time (the whole process), simulated time,
 * peak RSS (GNU time's maximum resident set size, else VmHWM polled) and, when the report has
 * one, metadata bytes per guest page. Quick: the scenario 64 times smaller. Nothing is measured
 * when the scenario file does not exist.
 */
export async function runScale(ctx: SuiteContext): Promise<SuiteResult> {
  const path = join(SCENARIO_DIR, SCALE_SCENARIO);
  if (!existsSync(path)) return { suite: 'scale', measurements: [], notes: [`${path} does not exist: scale not measured.`] };
  const missing = simulatorMissing();
  if (missing !== undefined) throw new Error(missing);
  const scenario = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const file = ctx.quick ? scenarioFile(shrinkScenario(scenario, 64, 5), 'scale-quick') : undefined;
  const runs: SimRun[] = [];
  try {
    for (let r = 0; r < ctx.repeats; r++) {
      ctx.log(`scale: ${SCALE_SCENARIO}${ctx.quick ? ' (64 times smaller)' : ''}, run ${r + 1} of ${ctx.repeats}`);
      runs.push(await runSimulator(file?.path ?? path, { maxOldSpaceMiB: SCALE_MAX_OLD_SPACE_MIB, timeoutMs: SCALE_TIMEOUT_MS }));
    }
  } finally {
    file?.remove();
  }
  const f = runs.map((r) => r.figures);
  const m = (key: string, name: string, unit: string, better: 'higher' | 'lower', samples: number[], exact = false): Measurement =>
    measurement({ suite: 'scale', group: 'scale-16x1g', key, name, unit, better, samples, exact });
  const out = [
    m('wall-s', 'wall time (whole process)', 's', 'lower', runs.map((r) => r.child.wallMs / 1000)),
    m('run-wall-s', 'wall time of the run (setup, event loop, audit)', 's', 'lower', f.map((x) => x.wallMs / 1000)),
    m('peak-rss', `peak RSS (${runs[0]!.child.rssSource === 'time' ? 'GNU time' : 'VmHWM'})`, 'bytes', 'lower', runs.map((r) => r.child.maxRssBytes)),
    m('simulated-s', 'simulated time', 's', 'lower', f.map((x) => x.simulatedNs / 1e9), true),
    m('saved-pct', 'saved', '%', 'higher', f.map((x) => x.savedPct), true),
    m('cpu-ms', 'simulated CPU', 'ms', 'lower', f.map((x) => x.cpuTotalNs / 1e6), true),
  ];
  const meta = f[0]!.metadata;
  if (meta !== undefined) out.push(m('metadata', `metadata per guest page (report: ${meta.field})`, 'bytes/page', 'lower', f.map((x) => x.metadata!.bytesPerGuestPage), true));
  const notes = [
    `${f[0]!.guestPages} guest pages, ${f[0]!.machineFramesUsed} frames used at the end, ${f[0]!.failedGuests} guests failed; node --max-old-space-size=${SCALE_MAX_OLD_SPACE_MIB}.`,
  ];
  if (meta === undefined) notes.push('The report carries no metadata figure: the metadata target is judged on the macro suite\'s default-scenario run.');
  return { suite: 'scale', measurements: out, notes };
}
