import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { runNode, type ChildRun } from './child-run.js';
import { simReportFigures, type SimReportFigures } from './sim-report.js';
import type { PackageLink } from './strategies.js';

/**
 * The @pagevisor/simulator package's directory (bin/, dist/, scenarios/), resolved as the bench
 * imports it: apps/simulator in the repository, node_modules/@pagevisor/simulator when installed.
 */
export const SIMULATOR_DIR = dirname(createRequire(import.meta.url).resolve('@pagevisor/simulator/package.json'));
/** The `pagevisor` CLI's entry. */
export const SIMULATOR_BIN = join(SIMULATOR_DIR, 'bin', 'pagevisor.js');
/** The simulator's scenario files. */
export const SCENARIO_DIR = join(SIMULATOR_DIR, 'scenarios');
/** The scenario files the macro suite's matrix starts from. */
export const MACRO_SCENARIOS: readonly string[] = ['static-compare.json', 'overcommit.json'];

/**
 * Why the simulator CLI cannot run (its build output or its scenarios are missing), or undefined
 * when it can. The bench declares the simulator a dependency, so `nx run bench:build` builds it.
 */
export function simulatorMissing(): string | undefined {
  const cli = join(SIMULATOR_DIR, 'dist', 'cli.js');
  if (!existsSync(cli)) return `the simulator is not built (${cli} missing): in the repository, npx nx run simulator:build`;
  if (!existsSync(SIMULATOR_BIN)) return `the simulator has no CLI entry (${SIMULATOR_BIN} missing)`;
  const absent = MACRO_SCENARIOS.filter((f) => !existsSync(join(SCENARIO_DIR, f)));
  if (absent.length > 0) return `the simulator package ships no ${absent.join(', ')} in ${SCENARIO_DIR} (a @pagevisor/simulator older than the bench?)`;
  return undefined;
}

/** The simulator's directory inside a checkout of the repository. */
export const SIMULATOR_IN_CHECKOUT = join('apps', 'simulator');

/** Where the `pagevisor` CLI of a simulator is: its package directory and its entry. */
export interface SimulatorLocation {
  readonly dir: string;
  readonly bin: string;
}

/**
 * The simulator of the checkout at `root` (`--simulator-root`: `root/apps/simulator`, built), or
 * this bench's own (undefined `root`).
 */
export function simulatorAt(root?: string): SimulatorLocation {
  if (root === undefined) return { dir: SIMULATOR_DIR, bin: SIMULATOR_BIN };
  const dir = resolve(root, SIMULATOR_IN_CHECKOUT);
  return { dir, bin: join(dir, 'bin', 'pagevisor.js') };
}

/** Why the built simulator of the checkout at `root` cannot run (not a checkout, not built), or undefined when it can. */
export function simulatorRootMissing(root: string): string | undefined {
  const { dir, bin } = simulatorAt(root);
  if (!existsSync(dir)) return `${root} is not a checkout of pagevisor (no ${SIMULATOR_IN_CHECKOUT})`;
  const cli = join(dir, 'dist', 'cli.js');
  if (!existsSync(cli)) return `the simulator of ${root} is not built (${cli} missing): build it there (npx nx run simulator:build)`;
  if (!existsSync(bin)) return `the simulator of ${root} has no CLI entry (${bin} missing)`;
  return undefined;
}

/**
 * `scenario` for another checkout's simulator: without `$schema`, which only names the JSON
 * Schema for editors and which older simulators refuse as an unknown field.
 */
export function portableScenario(scenario: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const { $schema: _schema, ...rest } = scenario;
  return rest;
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
  /** The CLI entry to run (default this bench's simulator, {@link SIMULATOR_BIN}; see {@link simulatorAt}). */
  readonly bin?: string;
}

/**
 * Writes `scenario` to a temporary file, for the CLI to read; call the returned function to remove
 * it. Each of `links` becomes `node_modules/<name>` beside the file, a link to the package's
 * directory: the CLI resolves a scenario's plugin specifiers from the file's directory, so a
 * plugin package installed where the bench was started is found there by its name. Removing
 * removes the links, never what they point to.
 */
export function scenarioFile(scenario: unknown, name: string, links: readonly PackageLink[] = []): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'pagevisor-bench-scenario-'));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    linkPackages(dir, links);
    const path = join(dir, `${name}.json`);
    writeFileSync(path, JSON.stringify(scenario, null, 2));
    return { path, remove };
  } catch (e) {
    remove();
    throw e;
  }
}

/**
 * Makes each of `links` (once each) `dir/node_modules/<name>`, a link to the package's directory,
 * so that a specifier resolved from `dir` finds the package by its name.
 */
export function linkPackages(dir: string, links: readonly PackageLink[]): void {
  for (const link of new Map(links.map((l) => [l.name, l])).values()) {
    const at = join(dir, 'node_modules', ...link.name.split('/'));
    mkdirSync(dirname(at), { recursive: true });
    // 'junction': a directory link Windows allows without privileges; ignored elsewhere.
    symlinkSync(link.dir, at, 'junction');
  }
}

/**
 * What a failed run's report (exit 2 still prints it) says went wrong: guests and steps that
 * failed, and the first failure's message; undefined when stdout is no such report.
 */
export function failureSummary(stdout: string): string | undefined {
  let report: { totals?: { failedGuests?: unknown; failedSteps?: unknown }; failures?: { guest?: unknown; message?: unknown }[] };
  try {
    report = JSON.parse(stdout) as typeof report;
  } catch {
    return undefined;
  }
  if (typeof report !== 'object' || report === null) return undefined;
  const parts: string[] = [];
  const guests = report.totals?.failedGuests;
  const steps = report.totals?.failedSteps;
  if (typeof guests === 'number' && guests > 0) parts.push(`${guests} ${guests === 1 ? 'guest' : 'guests'} failed`);
  if (typeof steps === 'number' && steps > 0) parts.push(`${steps} ${steps === 1 ? 'step' : 'steps'} failed`);
  const first = Array.isArray(report.failures) ? report.failures[0] : undefined;
  if (first !== undefined && typeof first.message === 'string') parts.push(`first: ${typeof first.guest === 'string' ? `${first.guest}: ` : ''}${first.message}`);
  return parts.length === 0 ? undefined : parts.join('; ');
}

/**
 * Runs `pagevisor run FILE --json --quiet` in a child process and reads its report. Throws when
 * the child fails (exit code not 0, e.g. 2 when a guest ran out of memory), times out, or
 * prints no valid report, with the tail of its stderr.
 */
export async function runSimulator(file: string, opts: RunSimulatorOptions = {}): Promise<SimRun> {
  const child = await runNode(opts.bin ?? SIMULATOR_BIN, ['run', file, '--json', '--quiet'], {
    ...(opts.maxOldSpaceMiB === undefined ? {} : { nodeFlags: [`--max-old-space-size=${opts.maxOldSpaceMiB}`] }),
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
  });
  const tail = child.stderr.trim().split('\n').slice(-5).join('\n');
  if (child.timedOut) throw new Error(`pagevisor run ${file}: killed after ${Math.round(child.wallMs / 1000)} s (timeout)`);
  if (child.code !== 0) {
    const why = failureSummary(child.stdout);
    throw new Error(`pagevisor run ${file}: exit code ${child.code ?? child.signal}${why === undefined ? '' : ` (${why})`}${tail === '' ? '' : `:\n${tail}`}`);
  }
  let report: unknown;
  try {
    report = JSON.parse(child.stdout);
  } catch {
    throw new Error(`pagevisor run ${file}: stdout is not a JSON report`);
  }
  return { child, figures: simReportFigures(report) };
}
