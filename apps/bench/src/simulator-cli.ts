import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNode, type ChildRun } from './child-run.js';
import { simReportFigures, type SimReportFigures } from './sim-report.js';

/** apps/simulator, found from this file (apps/bench/src or apps/bench/dist). */
export const SIMULATOR_DIR = fileURLToPath(new URL('../../simulator/', import.meta.url));
/** The `pagevisor` CLI's entry. */
export const SIMULATOR_BIN = join(SIMULATOR_DIR, 'bin', 'pagevisor.js');
/** The simulator's scenario files. */
export const SCENARIO_DIR = join(SIMULATOR_DIR, 'scenarios');

/**
 * Why the simulator CLI cannot run (its build output is missing), or undefined when it can.
 * The bench declares the simulator a dependency, so `nx run bench:build` builds it.
 */
export function simulatorMissing(): string | undefined {
  if (!existsSync(join(SIMULATOR_DIR, 'dist', 'cli.js'))) return `the simulator is not built (${join(SIMULATOR_DIR, 'dist', 'cli.js')} missing): npx nx run simulator:build`;
  return undefined;
}

/** A scenario run by the CLI in a child process. */
export interface SimRun {
  readonly child: ChildRun;
  readonly figures: SimReportFigures;
}

/** Options of {@link runSimulator}. */
export interface RunSimulatorOptions {
  /** Node's --max-old-space-size for the child, in MiB (default Node's own). */
  readonly maxOldSpaceMiB?: number;
  /** Kill the child after this many ms. */
  readonly timeoutMs?: number;
}

/** Writes `scenario` to a temporary file, for the CLI to read; call the returned function to remove it. */
export function scenarioFile(scenario: unknown, name: string): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'pagevisor-bench-scenario-'));
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(scenario, null, 2));
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Runs `pagevisor run FILE --json --quiet` in a child process and reads its report. Throws when
 * the child fails (exit code not 0, e.g. 2 when a guest ran out of memory), times out, or
 * prints no valid report, with the tail of its stderr.
 */
export async function runSimulator(file: string, opts: RunSimulatorOptions = {}): Promise<SimRun> {
  const child = await runNode(SIMULATOR_BIN, ['run', file, '--json', '--quiet'], {
    ...(opts.maxOldSpaceMiB === undefined ? {} : { nodeFlags: [`--max-old-space-size=${opts.maxOldSpaceMiB}`] }),
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
  });
  const tail = child.stderr.trim().split('\n').slice(-5).join('\n');
  if (child.timedOut) throw new Error(`pagevisor run ${file}: killed after ${Math.round(child.wallMs / 1000)} s (timeout)`);
  if (child.code !== 0) throw new Error(`pagevisor run ${file}: exit code ${child.code ?? child.signal}${tail === '' ? '' : `:\n${tail}`}`);
  let report: unknown;
  try {
    report = JSON.parse(child.stdout);
  } catch {
    throw new Error(`pagevisor run ${file}: stdout is not a JSON report`);
  }
  return { child, figures: simReportFigures(report) };
}
