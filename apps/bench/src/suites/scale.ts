import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { measurement, type Measurement } from '../measurement.js';
import type { CpuSource } from '../child-run.js';
import { portableScenario, runSimulator, SCENARIO_DIR, scenarioFile, simulatorAt, simulatorMissing, simulatorRootMissing, type SimRun } from '../simulator-cli.js';
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
  processCpu: 'scale.scale-16x1g.process-cpu-s',
  metadata: 'scale.scale-16x1g.metadata',
} as const;

/** The name of the CPU measurement, saying where the figure came from. */
function cpuName(source: CpuSource): string {
  return `CPU time of the process, user + sys (${source === 'time' ? 'GNU time' : '/proc/PID/stat, polled'})`;
}

/**
 * Runs apps/simulator/scenarios/scale-16x1g.json through the CLI in a child process (node
 * --max-old-space-size=6144) and reports its wall time (the whole process), its CPU time (user +
 * system, every thread: GNU time's, else /proc/PID/stat polled; not reported when neither
 * works), simulated time, peak RSS (GNU time's maximum resident set size, else VmHWM polled)
 * and, when the report has one, metadata bytes per guest page. Quick: the scenario 64 times
 * smaller. Nothing is measured when the scenario file does not exist. With `ctx.simulatorRoot`
 * the CLI is that checkout's (built), on this checkout's scenario (without `$schema`, see
 * portableScenario), so that one runner measures old and new code the same way.
 */
export async function runScale(ctx: SuiteContext): Promise<SuiteResult> {
  const path = join(SCENARIO_DIR, SCALE_SCENARIO);
  if (!existsSync(path)) return { suite: 'scale', measurements: [], notes: [`${path} does not exist: scale not measured.`] };
  const root = ctx.simulatorRoot;
  const missing = root === undefined ? simulatorMissing() : simulatorRootMissing(root);
  if (missing !== undefined) throw new Error(missing);
  const sim = simulatorAt(root);
  const scenario = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const shrunk = ctx.quick ? shrinkScenario(scenario, 64, 5) : scenario;
  const file = ctx.quick || root !== undefined ? scenarioFile(root === undefined ? shrunk : portableScenario(shrunk), ctx.quick ? 'scale-quick' : 'scale') : undefined;
  const runs: SimRun[] = [];
  try {
    for (let r = 0; r < ctx.repeats; r++) {
      ctx.log(`scale: ${SCALE_SCENARIO}${ctx.quick ? ' (64 times smaller)' : ''}${root === undefined ? '' : ` on the simulator of ${root}`}, run ${r + 1} of ${ctx.repeats}`);
      runs.push(await runSimulator(file?.path ?? path, { maxOldSpaceMiB: SCALE_MAX_OLD_SPACE_MIB, timeoutMs: SCALE_TIMEOUT_MS, bin: sim.bin }));
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
    ...(runs.some((r) => r.child.cpuSource === 'none') ? [] : [m('process-cpu-s', cpuName(runs[0]!.child.cpuSource), 's', 'lower', runs.map((r) => r.child.cpuMs / 1000))]),
    m('peak-rss', `peak RSS (${runs[0]!.child.rssSource === 'time' ? 'GNU time' : 'VmHWM'})`, 'bytes', 'lower', runs.map((r) => r.child.maxRssBytes)),
    m('simulated-s', 'simulated time', 's', 'lower', f.map((x) => x.simulatedNs / 1e9), true),
    m('saved-pct', 'saved', '%', 'higher', f.map((x) => x.savedPct), true),
    m('cpu-ms', 'simulated CPU', 'ms', 'lower', f.map((x) => x.cpuTotalNs / 1e6), true),
  ];
  const meta = f[0]!.metadata;
  if (meta !== undefined) out.push(m('metadata', `metadata per guest page (report: ${meta.field})`, 'bytes/page', 'lower', f.map((x) => x.metadata!.bytesPerGuestPage), true));
  const cpuSource = runs[0]!.child.cpuSource;
  const notes = [
    `${f[0]!.guestPages} guest pages, ${f[0]!.machineFramesUsed} frames used at the end, ${f[0]!.failedGuests} guests failed; node --max-old-space-size=${SCALE_MAX_OLD_SPACE_MIB}.`,
    cpuSource === 'time'
      ? 'CPU time: GNU time\'s user + system seconds of the child (the kernel\'s accounting at its exit, every thread: the JIT and GC helper threads count), to 10 ms.'
      : cpuSource === 'proc'
        ? 'CPU time: utime + stime of /proc/PID/stat (every thread), read every 50 ms: what the child did in its last 50 ms is missing (no GNU time at /usr/bin/time).'
        : 'CPU time: not measured (no GNU time at /usr/bin/time, no /proc).',
  ];
  if (root !== undefined) notes.push(`simulator: ${sim.dir} (--simulator-root ${root}; the scenario file is this checkout's, without $schema), not the bench's own.`);
  if (meta === undefined) notes.push('The report carries no metadata figure: the metadata target is judged on the macro suite\'s default-scenario run.');
  return { suite: 'scale', measurements: out, notes };
}
