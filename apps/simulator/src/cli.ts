import { readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PluginError, type PluginKind } from '@pagevisor/types';
import {
  DEFAULT_SCENARIO,
  parseScenario,
  ScenarioError,
  SWAP_COMPRESSION_NAMES,
  TraceFormatError,
  checkScenarioImages,
  resolveImagePaths,
  type Scenario,
} from '@pagevisor/workloads';
import { BUILT_IN_PLUGINS, commandLinePlugin } from './plugins.js';
import { ProgressBar } from './progress-bar.js';
import { formatKsmDiff, HostUnavailable, ksmDiff, NotReplayable } from './ksm-diff.js';
import { formatReplay, replayTrace } from './replay.js';
import { runScenario, type RunOptions } from './run-scenario.js';
import { ATTACKED_STRATEGIES, formatSideChannel, sideChannelReport } from './side-channel.js';
import { writeCsvReport } from './csv-report.js';
import { writeHtmlReport } from './html-report.js';
import type { Report } from './report.js';
import { formatSummary } from './summary.js';
import { VERSION } from './version.js';

/** Exit codes of {@link main}. */
export const ExitCode = {
  /** The run finished and every guest ran to the end. */
  ok: 0,
  /** Bad usage or scenario: nothing was run. */
  usage: 1,
  /**
   * The run finished but some guest failed (e.g. ENOMEM), a step failed (its `expect` was not
   * met), or `--verify` found a page that differs from what was written to it.
   */
  guestFailed: 2,
  /** A bug: the hypervisor's audit or an invariant failed. */
  internal: 3,
  /** ksm-diff: this host cannot serve as the oracle (no KSM, no permission, KSM in use): nothing compared. */
  hostUnavailable: 4,
} as const;

/** What tests may add to `run`'s call of runScenario: hooks that reach the hypervisor. */
export type CliRunHooks = Pick<RunOptions, 'onSample' | 'beforeVerify'>;

/** Where the CLI writes; the process's streams by default, buffers in tests. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
}

/** Usage text of `pagevisor --help`. */
export const USAGE = `Usage:
  pagevisor run [scenario.json] [--json] [--out FILE] [--html FILE] [--csv DIR] [--seed N]
                [--dedup STRATEGY] [--swap-policy POLICY] [--swap-device DEVICE]
                [--compression CODEC] [--verify] [--quiet]
  pagevisor replay TRACE [--dedup STRATEGY] [--memory-mib N] [--settle-ms N] [--json]
  pagevisor attack [--dedup inline|ksm] [--trials N] [--seed N] [--json]
  pagevisor ksm-diff SCENARIO [--json]
  pagevisor default-scenario
  pagevisor --help | --version

Commands:
  run               Run a scenario (the default scenario when no file is given) and print a summary.
  replay            Replay a binary page-event trace (see packages/workloads/README.md) through
                    the hypervisor: totals, per-domain figures, events per second and peak RSS.
                    Exit 2 when the hypervisor refused some events (e.g. ENOMEM).
  attack            Run the de-duplication timing attack under each mitigation (none,
                    trust-groups, zero-pages-only, uniform-writes): the attacker's accuracy
                    over --trials trials (default 1000) and the savings each mitigation keeps.
  ksm-diff          Run a KSM scenario (idle guests, their memory written by its steps) on
                    pagevisor and on this host's own KSM, with one real process per guest
                    (tools/ksm-replay, built with cc on first use; root), and print every
                    counter side by side at every checkpoint. Exit 0 when all are equal, 2 when
                    some differ, 4 when the host cannot serve (no KSM, no permission, another
                    process using KSM). It saves and restores every KSM knob.
  default-scenario  Print the default scenario as JSON: a starting point for writing your own.

Options of run:
  --json            Print the JSON report on stdout instead of the summary.
  --out FILE        Also write the JSON report to FILE.
  --html FILE       Also write a self-contained HTML report with charts to FILE.
  --csv DIR         Also write the time series to DIR/timeline.csv and DIR/domains.csv.
  --seed N          Override the scenario's seed (0 .. 4294967295).
  --dedup STRATEGY  Override the dedup strategy: ${names('dedup')}, or a plugin's module
                    specifier (./my-dedup.mjs, a package name). The scenario's dedup options
                    are kept only when it names the same strategy.
  --swap-policy POLICY  Eviction policy of the swap: ${names('eviction-policy')}, or a plugin.
  --swap-device DEVICE  Swap device: ${names('swap-device')} (file: a temporary file), or a plugin.
  --compression CODEC   Compression of swap slots: ${SWAP_COMPRESSION_NAMES.join(', ')}.
                    Each swap option gives a scenario without swap a shared swap area.
  --verify          Read every guest page back at the end (through the guest load path: paged
                    pages fault in, after the report's figures are taken) and a sample at each
                    timeline sample (without side effects), and compare each with what was
                    written to it; exit 2 when a page differs or a guest could not be verified.
  --quiet, -q       No progress bar (it is shown only when stderr is a terminal).

A plugin named on the command line is resolved from the working directory; one named in a
scenario file, from the file's directory.

Exit codes: 0 ok, 1 bad usage, scenario or plugin (nothing run), 2 some guest or step failed (or --verify
found a page that differs; ksm-diff: some counter differs), 3 internal error, 4 (ksm-diff) the host
cannot serve as the oracle.
`;

class UsageError extends Error {}

const RUN_ONLY = ['json', 'out', 'html', 'csv', 'seed', 'dedup', 'swap-policy', 'swap-device', 'compression', 'verify', 'quiet'] as const;
const ATTACK_OPTIONS: readonly string[] = ['json', 'seed', 'dedup', 'trials'];
const REPLAY_OPTIONS: readonly string[] = ['json', 'seed', 'dedup', 'memory-mib', 'settle-ms'];
const KSM_DIFF_OPTIONS: readonly string[] = ['json'];

function parseSeed(text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n <= 0xffff_ffff)) throw new UsageError(`--seed: must be an integer from 0 to 4294967295, got "${text}"`);
  return n;
}

function parseCount(flag: string, text: string, min: number, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`--${flag}: must be an integer from ${min} to ${max}, got "${text}"`);
  return n;
}

/** The built-in plugins of `kind`, for the help text. */
function names(kind: PluginKind): string {
  return BUILT_IN_PLUGINS[kind].map((p) => p.name).join(', ');
}

/** A plugin named on the command line, resolved from the working directory (see {@link commandLinePlugin}). */
function pluginArg(kind: PluginKind, text: string | undefined): string | undefined {
  return text === undefined ? undefined : commandLinePlugin(kind, text, process.cwd());
}

function parseChoice<T extends string>(flag: string, text: string | undefined, names: readonly T[]): T | undefined {
  if (text === undefined) return undefined;
  if (!(names as readonly string[]).includes(text)) throw new UsageError(`--${flag}: must be ${names.join(', ')}, got "${text}"`);
  return text as T;
}

function invalid(what: string, e: ScenarioError): UsageError {
  return new UsageError(`invalid scenario ${what}:\n  ${e.issues.join('\n  ')}`);
}

async function loadScenario(file: string | undefined): Promise<Scenario> {
  if (file === undefined) return DEFAULT_SCENARIO;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read scenario file ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`scenario file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    // Image paths are relative to the scenario file; every image is checked before anything runs.
    const scenario = resolveImagePaths(parseScenario(json), dirname(resolve(file)));
    checkScenarioImages(scenario);
    return scenario;
  } catch (e) {
    if (e instanceof ScenarioError) throw invalid(file, e);
    throw e;
  }
}

/**
 * Runs the `pagevisor` command line `argv` (without node and script) and returns the exit code
 * (see {@link ExitCode}). Everything is written to `io`; `hooks` (tests only) go to `run`'s
 * runScenario.
 */
export async function main(argv: string[], io: CliIo = process, hooks: CliRunHooks = {}): Promise<number> {
  try {
    return await dispatch(argv, io, hooks);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`pagevisor: ${e.message}\nRun "pagevisor --help" for usage.\n`);
      return ExitCode.usage;
    }
    io.stderr.write(`pagevisor: internal error (a bug):\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return ExitCode.internal;
  }
}

async function dispatch(argv: string[], io: CliIo, hooks: CliRunHooks): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean' },
        out: { type: 'string' },
        html: { type: 'string' },
        csv: { type: 'string' },
        seed: { type: 'string' },
        dedup: { type: 'string' },
        'swap-policy': { type: 'string' },
        'swap-device': { type: 'string' },
        compression: { type: 'string' },
        verify: { type: 'boolean' },
        trials: { type: 'string' },
        'memory-mib': { type: 'string' },
        'settle-ms': { type: 'string' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(USAGE);
    return ExitCode.ok;
  }
  if (values.version) {
    io.stdout.write(`${VERSION}\n`);
    return ExitCode.ok;
  }
  const [command, ...rest] = positionals;
  if (command !== 'run') {
    const allowed = command === 'attack' ? ATTACK_OPTIONS : command === 'replay' ? REPLAY_OPTIONS : command === 'ksm-diff' ? KSM_DIFF_OPTIONS : [];
    const misplaced = RUN_ONLY.find((k) => values[k] !== undefined && !allowed.includes(k));
    if (misplaced !== undefined) throw new UsageError(`--${misplaced} applies to "run" only`);
  }
  if (command !== 'attack' && values.trials !== undefined) throw new UsageError('--trials applies to "attack" only');
  for (const k of ['memory-mib', 'settle-ms'] as const) {
    if (command !== 'replay' && values[k] !== undefined) throw new UsageError(`--${k} applies to "replay" only`);
  }
  switch (command) {
    case 'run':
      if (rest.length > 1) throw new UsageError(`run takes one scenario file, got ${rest.length}: ${rest.join(' ')}`);
      return run(rest[0], values, io, hooks);
    case 'replay': {
      if (rest.length !== 1) throw new UsageError(`replay takes one trace file, got ${rest.length}`);
      const memoryMiB = values['memory-mib'] === undefined ? undefined : parseCount('memory-mib', values['memory-mib'], 1, 1 << 20);
      const settleMs = values['settle-ms'] === undefined ? undefined : parseCount('settle-ms', values['settle-ms'], 0, 3_600_000);
      let report;
      try {
        report = await replayTrace(rest[0]!, {
          ...(values.dedup === undefined ? {} : { dedup: pluginArg('dedup', values.dedup)! }),
          ...(memoryMiB === undefined ? {} : { memoryMiB }),
          ...(settleMs === undefined ? {} : { settleMs }),
          ...(values.seed === undefined ? {} : { seed: parseSeed(values.seed) }),
        });
      } catch (e) {
        if (e instanceof TraceFormatError) throw new UsageError(`trace ${rest[0]}: ${e.message}`);
        if (e instanceof PluginError) throw new UsageError(e.message);
        if ((e as NodeJS.ErrnoException).code !== undefined && e instanceof Error) throw new UsageError(`cannot read trace ${rest[0]}: ${e.message}`);
        throw e;
      }
      io.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReplay(report));
      return report.refused.count > 0 ? ExitCode.guestFailed : ExitCode.ok;
    }
    case 'attack': {
      if (rest.length > 0) throw new UsageError(`attack takes no arguments, got: ${rest.join(' ')}`);
      const strategy = parseChoice('dedup', values.dedup, ATTACKED_STRATEGIES) ?? 'ksm';
      const trials = values.trials === undefined ? 1000 : parseCount('trials', values.trials, 1, 1_000_000);
      const report = await sideChannelReport(strategy, trials, values.seed === undefined ? 1 : parseSeed(values.seed));
      io.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatSideChannel(report));
      return ExitCode.ok;
    }
    case 'ksm-diff': {
      if (rest.length !== 1) throw new UsageError(`ksm-diff takes one scenario file, got ${rest.length}`);
      const scenario = await loadScenario(rest[0]);
      let diff;
      try {
        diff = await ksmDiff(scenario);
      } catch (e) {
        if (e instanceof HostUnavailable) {
          io.stderr.write(`pagevisor ksm-diff: this host cannot serve as the oracle: ${e.message}\n`);
          return ExitCode.hostUnavailable;
        }
        if (e instanceof NotReplayable) throw new UsageError(`${rest[0]}: ${e.message}`);
        throw e;
      }
      io.stdout.write(values.json ? `${JSON.stringify(diff, null, 2)}\n` : formatKsmDiff(diff));
      return diff.differences === 0 ? ExitCode.ok : ExitCode.guestFailed;
    }
    case 'default-scenario':
      if (rest.length > 0) throw new UsageError(`default-scenario takes no arguments, got: ${rest.join(' ')}`);
      io.stdout.write(`${JSON.stringify(DEFAULT_SCENARIO, null, 2)}\n`);
      return ExitCode.ok;
    case undefined:
      throw new UsageError('no command given');
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

async function run(
  file: string | undefined,
  values: {
    json?: boolean;
    out?: string;
    html?: string;
    csv?: string;
    seed?: string;
    dedup?: string;
    'swap-policy'?: string;
    'swap-device'?: string;
    compression?: string;
    verify?: boolean;
    quiet?: boolean;
  },
  io: CliIo,
  hooks: CliRunHooks,
): Promise<number> {
  const seed = values.seed === undefined ? undefined : parseSeed(values.seed);
  const dedup = pluginArg('dedup', values.dedup);
  const policy = pluginArg('eviction-policy', values['swap-policy']);
  const device = pluginArg('swap-device', values['swap-device']);
  const compression = parseChoice('compression', values.compression, SWAP_COMPRESSION_NAMES);
  for (const flag of ['out', 'html', 'csv'] as const) {
    if (values[flag] === '') throw new UsageError(`--${flag}: needs a ${flag === 'csv' ? 'directory' : 'file'} name`);
  }
  let scenario = await loadScenario(file);
  if (policy !== undefined || device !== undefined || compression !== undefined) {
    const swap = { ...(scenario.machine.swap ?? {}) };
    if (policy !== undefined) swap.policy = policy;
    if (compression !== undefined) swap.compression = compression;
    if (device !== undefined) {
      swap.device = device;
      // A path and an fsync policy belong to the file device they were written for.
      if (device !== 'file') {
        delete swap.path;
        delete swap.fsync;
      }
    }
    try {
      scenario = parseScenario({ ...scenario, machine: { ...scenario.machine, swap } });
    } catch (e) {
      if (e instanceof ScenarioError) throw invalid(file ?? '(default)', e);
      throw e;
    }
  }
  if (seed !== undefined || dedup !== undefined) {
    scenario = parseScenario({
      ...scenario,
      seed: seed ?? scenario.seed,
      // Options belong to the strategy they were written for: another strategy would refuse them.
      dedup: dedup === undefined || dedup === scenario.dedup.strategy ? scenario.dedup : { strategy: dedup },
    });
  }

  const bar = io.stderr.isTTY === true && !values.quiet ? new ProgressBar(io.stderr) : undefined;
  let report;
  try {
    report = await runScenario(scenario, {
      ...hooks,
      baseDir: file === undefined ? process.cwd() : dirname(resolve(file)),
      ...(values.verify === true ? { verify: true } : {}),
      ...(bar === undefined ? {} : { onProgress: (p) => bar.update(p) }),
    });
  } catch (e) {
    // A plugin cannot be used, or a step needs what the strategy lacks: nothing ran.
    if (e instanceof ScenarioError) throw invalid(file ?? '(default)', e);
    if (e instanceof PluginError) throw new UsageError(e.message);
    throw e;
  } finally {
    bar?.clear();
  }

  const json = `${JSON.stringify(report, null, 2)}\n`;
  const outputs: [string | undefined, () => Promise<void>][] = [
    [values.out, () => writeFile(values.out!, json)],
    [values.html, () => writeHtmlReport(report, values.html!)],
    [values.csv, () => writeCsvReport(report, values.csv!)],
  ];
  for (const [path, write] of outputs) {
    if (path === undefined) continue;
    try {
      await write();
    } catch (e) {
      // The run happened; the summary still goes out, but the missing file is an error.
      io.stdout.write(values.json ? json : formatSummary(report));
      throw new UsageError(`cannot write report to ${path}: ${(e as Error).message}`);
    }
  }
  io.stdout.write(values.json ? json : formatSummary(report));
  return exitCodeOf(report);
}

/** The exit code of a finished run: {@link ExitCode.guestFailed} when a guest or step failed, or verification did not pass. */
export function exitCodeOf(report: Report): number {
  const failed = report.failures.length > 0 || report.totals.failedSteps > 0 || report.verify?.passed === false;
  return failed ? ExitCode.guestFailed : ExitCode.ok;
}
