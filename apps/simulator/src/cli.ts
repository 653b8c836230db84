import { access, constants, readFile, stat, writeFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { PluginError, type AuditDepth, type PluginKind } from '@pagevisor/types';
import {
  DEFAULT_SCENARIO,
  parseScenario,
  ScenarioError,
  MACHINE_CONTENTS,
  SWAP_COMPRESSION_NAMES,
  SweepError,
  TraceFormatError,
  checkScenarioImages,
  resolveImagePaths,
  type Scenario,
  type MachineContents,
  type SwapCompressionName,
} from '@pagevisor/workloads';
import { BUILT_IN_PLUGINS, commandLinePlugin } from './plugins.js';
import { ProgressBar } from './progress-bar.js';
import { formatKsmDiff, HostUnavailable, ksmDiff, NotReplayable } from './ksm-diff.js';
import { formatReplay, replayTrace } from './replay.js';
import { runScenario, type RunOptions } from './run-scenario.js';
import { ATTACKED_STRATEGIES, formatSideChannel, sideChannelReport, type AttackedStrategy } from './side-channel.js';
import { writeCsvReport } from './csv-report.js';
import { writeHtmlReport } from './html-report.js';
import type { Report } from './report.js';
import { count, formatSummary } from './summary.js';
import { QueueError, runWorker } from './sweep/queue.js';
import { formatSweep, formatSweepProgress, runSweep, type SweepProgress } from './sweep/sweep.js';
import { VERSION } from './version.js';

/** Exit codes of {@link main}. */
export const ExitCode = {
  /** The run finished and every guest ran to the end. */
  ok: 0,
  /** Bad usage, scenario, plugin or output path: nothing was run. */
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

/** A stream the CLI writes to; help text is wrapped to `columns` when it is a terminal. */
export interface CliOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/** Where the CLI reads and writes; the process's streams by default, buffers in tests. */
export interface CliIo {
  readonly stdout: CliOutput;
  readonly stderr: CliOutput;
  /** What `run -` and `ksm-diff -` read the scenario from (default: the process's stdin). */
  readonly stdin?: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>;
}

/** Largest `--seed`. */
const MAX_SEED = 0xffff_ffff;

const NOTES = `
A plugin named on the command line is resolved from the working directory; one
named in a scenario file, from the file's directory.

Exit codes: 0 ok; 1 bad usage, scenario, sweep, plugin, output path or queue
(nothing was run); 2 some guest or step failed, --verify found a page that
differs, (ksm-diff) some counter differs, or (sweep) some job failed; 3 internal
error (a bug); 4 (ksm-diff) this host cannot serve as the oracle.`;

class UsageError extends Error {}

/** A commander parser of an integer option from `min` to `max`; anything else is refused naming the range. */
function integer(min: number, max: number): (text: string) => number {
  return (text) => {
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!(n >= min && n <= max)) throw new InvalidArgumentError(`It must be an integer from ${count(min)} to ${count(max)}.`);
    return n;
  };
}

/** The built-in plugins of `kind`, for the help text. */
function names(kind: PluginKind): string {
  return BUILT_IN_PLUGINS[kind].map((p) => p.name).join(', ');
}

/** A plugin named on the command line, resolved from the working directory (see {@link commandLinePlugin}). */
function pluginArg(kind: PluginKind, text: string | undefined): string | undefined {
  return text === undefined ? undefined : commandLinePlugin(kind, text, process.cwd());
}

function invalid(what: string, e: ScenarioError): UsageError {
  return new UsageError(`invalid scenario ${what}:\n  ${e.issues.join('\n  ')}`);
}

async function readStdin(io: CliIo): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of io.stdin ?? process.stdin) text += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}

/** Where a scenario comes from: the default, a file, or stdin (`-`). */
function scenarioName(file: string | undefined): string {
  return file === undefined ? '(default)' : file === '-' ? '(stdin)' : file;
}

/** Directory a scenario's relative paths (images, plugins) are resolved from. */
function baseDirOf(file: string | undefined): string {
  return file === undefined || file === '-' ? process.cwd() : dirname(resolve(file));
}

async function loadScenario(file: string | undefined, io: CliIo): Promise<Scenario> {
  if (file === undefined) return DEFAULT_SCENARIO;
  const name = scenarioName(file);
  let text: string;
  try {
    text = file === '-' ? await readStdin(io) : await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read scenario ${name}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`scenario ${name} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    // Image paths are relative to the scenario file; every image is checked before anything runs.
    const scenario = resolveImagePaths(parseScenario(json), baseDirOf(file));
    checkScenarioImages(scenario);
    return scenario;
  } catch (e) {
    if (e instanceof ScenarioError) throw invalid(name, e);
    throw e;
  }
}

/** `stat`, or null when nothing is at `path`. */
async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

/**
 * Why `path` (a file, or a directory that is created when missing) cannot be written, or
 * undefined when it can: the directory it goes in must exist and be writable, and what is
 * already there must be of its kind and writable.
 */
async function outputProblem(path: string, kind: 'file' | 'directory'): Promise<string | undefined> {
  const writable = (p: string, mode: number): Promise<string | undefined> =>
    access(p, mode).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => `${p} is not writable (${e.code ?? e.message})`,
    );
  const existing = await statOrNull(path);
  if (existing !== null) {
    if (existing.isDirectory() !== (kind === 'directory')) return kind === 'file' ? 'is a directory' : 'is not a directory';
    return writable(path, kind === 'file' ? constants.W_OK : constants.W_OK | constants.X_OK);
  }
  const parent = dirname(resolve(path));
  const dir = await statOrNull(parent);
  if (dir === null) return `directory ${parent} does not exist`;
  if (!dir.isDirectory()) return `${parent} is not a directory`;
  return writable(parent, constants.W_OK | constants.X_OK);
}

/** Refuses, before anything runs, the output paths of `run` that cannot be written. */
async function checkOutputs(flags: RunFlags): Promise<void> {
  const outputs = [
    ['out', flags.out, 'file'],
    ['html', flags.html, 'file'],
    ['csv', flags.csv, 'directory'],
  ] as const;
  for (const [flag, path, kind] of outputs) {
    if (path === undefined) continue;
    if (path === '') throw new UsageError(`--${flag}: needs a ${kind} name`);
    const problem = await outputProblem(path, kind);
    if (problem !== undefined) throw new UsageError(`--${flag} ${path}: ${problem}`);
  }
}

/** Options of `run`, as commander parses them. */
interface RunFlags {
  readonly json?: boolean;
  readonly out?: string;
  readonly html?: string;
  readonly csv?: string;
  readonly seed?: number;
  readonly dedup?: string;
  readonly swapPolicy?: string;
  readonly swapDevice?: string;
  readonly compression?: SwapCompressionName;
  readonly contents?: MachineContents;
  readonly verify?: boolean;
  readonly audit: AuditDepth;
  readonly quiet?: boolean;
}

/** Options of `replay`. */
interface ReplayFlags {
  readonly json?: boolean;
  readonly seed?: number;
  readonly dedup?: string;
  readonly memoryMib?: number;
  readonly settleMs?: number;
  readonly contents?: MachineContents;
}

/** Options of `sweep`. */
interface SweepFlags {
  readonly out: string;
  readonly jobs?: number;
  readonly queue?: string;
  readonly quiet?: boolean;
}

/** Options of `worker`. */
interface WorkerFlags {
  readonly queue: string;
  readonly lockMs?: number;
}

/** Options of `attack` (with their defaults). */
interface AttackFlags {
  readonly json?: boolean;
  readonly dedup: AttackedStrategy;
  readonly trials: number;
  readonly seed: number;
}

/**
 * Runs the `pagevisor` command line `argv` (without node and script) and returns the exit code
 * (see {@link ExitCode}). Everything is written to `io`; `hooks` (tests only) go to `run`'s
 * runScenario.
 */
export async function main(argv: string[], io: CliIo = process, hooks: CliRunHooks = {}): Promise<number> {
  let code: number = ExitCode.ok;
  try {
    await program(io, hooks, (c) => (code = c)).parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    // Commander has written the help, the version or the error (with exitOverride it throws instead of exiting).
    if (e instanceof CommanderError) return e.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    io.stderr.write(`pagevisor: internal error (a bug):\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return ExitCode.internal;
  }
}

/** The `pagevisor` command and its subcommands, writing to `io`; each action hands its exit code to `exit`. */
function program(io: CliIo, hooks: CliRunHooks, exit: (code: number) => void): Command {
  const width = (out: CliOutput): number => (out.isTTY === true && out.columns !== undefined ? out.columns : 80);
  const pagevisor = new Command('pagevisor')
    .description('Run synthetic guests on the pagevisor memory manager and report what de-duplication saved.')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .helpCommand('help [command]', "print a command's help")
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      getOutHelpWidth: () => width(io.stdout),
      getErrHelpWidth: () => width(io.stderr),
      outputError: (text, write) => write(`pagevisor: ${text.replace(/^error: /, '')}`),
    })
    .exitOverride()
    .showHelpAfterError('Run "pagevisor --help" for usage.')
    .addHelpText('after', NOTES);

  /** A subcommand whose action returns the exit code; a UsageError it throws is reported as the command's error. */
  const command = <A extends unknown[]>(name: string, action: (...args: A) => Promise<number>): Command => {
    const cmd = pagevisor.command(name);
    return cmd.showHelpAfterError(`Run "pagevisor ${name} --help" for usage.`).action(async (...args: unknown[]) => {
      try {
        exit(await action(...(args as A)));
      } catch (e) {
        if (e instanceof UsageError) cmd.error(e.message);
        throw e;
      }
    });
  };

  command('run', (file: string | undefined, flags: RunFlags) => run(file, flags, io, hooks))
    .summary('run a scenario and print a summary')
    .description('Run a scenario (the default scenario when no file is given) and print a summary.')
    .argument('[scenario]', 'scenario JSON file; - reads it from stdin (default: the default scenario)')
    .option('--json', 'print the JSON report on stdout instead of the summary')
    .option('--out <file>', 'also write the JSON report to <file>')
    .option('--html <file>', 'also write a self-contained HTML report with charts to <file>')
    .option('--csv <dir>', 'also write the time series to <dir>/timeline.csv and <dir>/domains.csv')
    .option('--seed <n>', `override the scenario's seed (0 to ${count(MAX_SEED)})`, integer(0, MAX_SEED))
    .option(
      '--dedup <strategy>',
      `override the dedup strategy: ${names('dedup')}, or a plugin's module specifier (./my-dedup.mjs, a package name); the scenario's dedup options are kept only when it names the same strategy`,
    )
    .option('--swap-policy <policy>', `eviction policy of the swap: ${names('eviction-policy')}, or a plugin`)
    .option('--swap-device <device>', `swap device: ${names('swap-device')} (file: a temporary file), or a plugin`)
    .addOption(new Option('--compression <codec>', 'compression of swap slots').choices(SWAP_COMPRESSION_NAMES))
    .addOption(
      new Option(
        '--contents <mode>',
        'what each frame holds, overriding machine.contents: its bytes, or a 64-bit fingerprint of them (guests then read back bytes generated from it; no swap compression)',
      ).choices(MACHINE_CONTENTS),
    )
    .option(
      '--verify',
      "read every guest page back at the end (after the report's figures are taken) and a sample at each timeline sample, and compare each with what was written to it; exit 2 when a page differs or a guest could not be verified",
    )
    .addOption(
      new Option('--audit <depth>', "the end-of-run audit: sample checks the costliest invariants (re-hashing every indexed frame) on a sample; full checks everything")
        .choices(['sample', 'full'])
        .default('sample'),
    )
    .option('-q, --quiet', 'no progress bar (it is shown only when stderr is a terminal)')
    .addHelpText(
      'after',
      `
Each swap option gives a scenario without swap a shared swap area. The output
paths are checked before the run: a missing directory, or one that cannot be
written, is refused.`,
    );

  command('replay', async (trace: string, flags: ReplayFlags) => {
    let report;
    try {
      report = await replayTrace(trace, {
        ...(flags.dedup === undefined ? {} : { dedup: pluginArg('dedup', flags.dedup)! }),
        ...(flags.memoryMib === undefined ? {} : { memoryMiB: flags.memoryMib }),
        ...(flags.settleMs === undefined ? {} : { settleMs: flags.settleMs }),
        ...(flags.seed === undefined ? {} : { seed: flags.seed }),
        ...(flags.contents === undefined ? {} : { contents: flags.contents }),
      });
    } catch (e) {
      if (e instanceof TraceFormatError) throw new UsageError(`trace ${trace}: ${e.message}`);
      if (e instanceof PluginError) throw new UsageError(e.message);
      if ((e as NodeJS.ErrnoException).code !== undefined && e instanceof Error) throw new UsageError(`cannot read trace ${trace}: ${e.message}`);
      throw e;
    }
    io.stdout.write(flags.json === true ? `${JSON.stringify(report, null, 2)}\n` : formatReplay(report));
    return report.refused.count > 0 ? ExitCode.guestFailed : ExitCode.ok;
  })
    .summary('replay a binary page-event trace through the hypervisor')
    .argument('<trace>', 'trace file')
    .description(
      'Replay a binary page-event trace (see packages/workloads/README.md) through the hypervisor: totals, per-domain figures, events per second and peak RSS. Exit 2 when the hypervisor refused some events (e.g. ENOMEM).',
    )
    .option('--dedup <strategy>', `dedup strategy: ${names('dedup')}, or a plugin (default: inline)`)
    .option('--memory-mib <n>', "machine RAM in MiB (default: room for every domain's pages without sharing)", integer(1, 1 << 20))
    .option('--settle-ms <ms>', 'simulated ms the scanner keeps running after the last event (default: 0)', integer(0, 3_600_000))
    .option('--seed <n>', 'seed of strategies that draw random numbers (default: 0)', integer(0, MAX_SEED))
    .addOption(new Option('--contents <mode>', 'what each frame holds: its bytes, or a 64-bit fingerprint of them (a fingerprint trace then writes no page)').choices(MACHINE_CONTENTS))
    .option('--json', 'print the JSON report instead of the summary');

  command('attack', async (flags: AttackFlags) => {
    const report = await sideChannelReport(flags.dedup, flags.trials, flags.seed);
    io.stdout.write(flags.json === true ? `${JSON.stringify(report, null, 2)}\n` : formatSideChannel(report));
    return ExitCode.ok;
  })
    .summary('run the de-duplication timing attack under each mitigation')
    .description(
      "Run the de-duplication timing attack under each mitigation (none, trust-groups, zero-pages-only, uniform-writes): the attacker's accuracy over the trials and the savings each mitigation keeps.",
    )
    .addOption(new Option('--dedup <strategy>', 'the strategy attacked').choices(ATTACKED_STRATEGIES).default('ksm'))
    .option('--trials <n>', 'trials of the attack', integer(1, 1_000_000), 1000)
    .option('--seed <n>', 'seed of the trials', integer(0, MAX_SEED), 1)
    .option('--json', 'print the JSON report instead of the table');

  command('ksm-diff', async (file: string, flags: { json?: boolean }) => {
    const scenario = await loadScenario(file, io);
    let diff;
    try {
      diff = await ksmDiff(scenario);
    } catch (e) {
      if (e instanceof HostUnavailable) {
        io.stderr.write(`pagevisor ksm-diff: this host cannot serve as the oracle: ${e.message}\n`);
        return ExitCode.hostUnavailable;
      }
      if (e instanceof NotReplayable) throw new UsageError(`${scenarioName(file)}: ${e.message}`);
      throw e;
    }
    io.stdout.write(flags.json === true ? `${JSON.stringify(diff, null, 2)}\n` : formatKsmDiff(diff));
    return diff.differences === 0 ? ExitCode.ok : ExitCode.guestFailed;
  })
    .summary("compare a KSM scenario on pagevisor with this host's own KSM")
    .argument('<scenario>', 'scenario JSON file; - reads it from stdin')
    .description(
      "Run a KSM scenario (idle guests, their memory written by its steps) on pagevisor and on this host's own KSM, with one real process per guest (tools/ksm-replay, built with cc on first use; root), and print every counter side by side at every checkpoint. Exit 0 when all are equal, 2 when some differ, 4 when the host cannot serve (no KSM, no permission, another process using KSM). It saves and restores every KSM knob.",
    )
    .option('--json', 'print the rows as JSON instead of the table');

  command('sweep', async (file: string, flags: SweepFlags) => {
    const bar = io.stderr.isTTY === true && flags.quiet !== true ? new ProgressBar<SweepProgress>(io.stderr, 30, 100, formatSweepProgress) : undefined;
    let outcome;
    try {
      outcome = await runSweep(file, { out: flags.out, ...(flags.jobs === undefined ? {} : { jobs: flags.jobs }), ...(flags.queue === undefined ? {} : { queue: flags.queue }), ...(bar === undefined ? {} : { onProgress: (p) => bar.update(p) }) });
    } catch (e) {
      if (e instanceof SweepError) throw new UsageError(`${file}: ${e.message}`);
      if (e instanceof QueueError) throw new UsageError(e.message);
      throw e;
    } finally {
      bar?.clear();
    }
    io.stdout.write(formatSweep(outcome, flags.out));
    return outcome.failed > 0 ? ExitCode.guestFailed : ExitCode.ok;
  })
    .summary('run a grid of scenarios and compare them')
    .argument('<sweep>', 'sweep JSON file: a base scenario and axes (see the simulator README)')
    .description(
      "Run every job of a sweep's grid (base scenario x axes), each in a worker process, and write DIR/runs/<job>.json, DIR/results.csv, DIR/results.json and DIR/report.html. Jobs whose report is in DIR already are not run again. Exit 2 when some job failed.",
    )
    .requiredOption('--out <dir>', 'directory of the results (made if missing)')
    .option('--jobs <n>', 'local worker processes (default: the number of cores)', integer(1, 1024))
    .option('--queue <url>', 'put the jobs on the BullMQ queue at redis://HOST:PORT, for `pagevisor worker`s on any machine, instead of running them here')
    .option('-q, --quiet', 'no progress bar (it is shown only when stderr is a terminal)');

  command('worker', async (flags: WorkerFlags) => {
    const stop = new AbortController();
    const onSignal = (): void => stop.abort();
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
    try {
      await runWorker(flags.queue, { signal: stop.signal, log: (line) => io.stderr.write(`pagevisor worker: ${line}\n`), ...(flags.lockMs === undefined ? {} : { lockMs: flags.lockMs }) });
    } catch (e) {
      if (e instanceof QueueError) throw new UsageError(e.message);
      throw e;
    } finally {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    }
    return ExitCode.ok;
  })
    .summary("take a sweep's jobs from a BullMQ queue and run them")
    .description(
      "Take jobs from the BullMQ queue at redis://HOST:PORT (put there by `pagevisor sweep --queue`) and run each in a worker process, until SIGINT or SIGTERM. Relative plugin paths of the jobs resolve from this directory: install plugins here, or name them by package. A job made by another pagevisor version fails, naming both.",
    )
    .requiredOption('--queue <url>', 'redis://HOST:PORT of the queue')
    .option('--lock-ms <ms>', "how long a job's lock lasts unrenewed: a worker that dies is noticed within about this (default: 30,000)", integer(1000, 3_600_000));

  command('default-scenario', async () => {
    io.stdout.write(`${JSON.stringify(DEFAULT_SCENARIO, null, 2)}\n`);
    return ExitCode.ok;
  })
    .summary('print the default scenario as JSON')
    .description('Print the default scenario as JSON: a starting point for writing your own.');

  return pagevisor;
}

async function run(file: string | undefined, flags: RunFlags, io: CliIo, hooks: CliRunHooks): Promise<number> {
  const dedup = pluginArg('dedup', flags.dedup);
  const policy = pluginArg('eviction-policy', flags.swapPolicy);
  const device = pluginArg('swap-device', flags.swapDevice);
  const compression = flags.compression;
  await checkOutputs(flags);
  const name = scenarioName(file);
  let scenario = await loadScenario(file, io);
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
      if (e instanceof ScenarioError) throw invalid(name, e);
      throw e;
    }
  }
  if (flags.contents !== undefined) {
    try {
      scenario = parseScenario({ ...scenario, machine: { ...scenario.machine, contents: flags.contents } });
    } catch (e) {
      // Swap compression with fingerprints: refused naming both fields.
      if (e instanceof ScenarioError) throw invalid(name, e);
      throw e;
    }
  }
  if (flags.seed !== undefined || dedup !== undefined) {
    scenario = parseScenario({
      ...scenario,
      seed: flags.seed ?? scenario.seed,
      // Options belong to the strategy they were written for: another strategy would refuse them.
      dedup: dedup === undefined || dedup === scenario.dedup.strategy ? scenario.dedup : { strategy: dedup },
    });
  }

  const bar = io.stderr.isTTY === true && flags.quiet !== true ? new ProgressBar(io.stderr) : undefined;
  let report;
  try {
    report = await runScenario(scenario, {
      ...hooks,
      baseDir: baseDirOf(file),
      ...(flags.verify === true ? { verify: true } : {}),
      audit: flags.audit,
      ...(bar === undefined ? {} : { onProgress: (p) => bar.update(p) }),
    });
  } catch (e) {
    // A plugin cannot be used, or a step needs what the strategy lacks: nothing ran.
    if (e instanceof ScenarioError) throw invalid(name, e);
    if (e instanceof PluginError) throw new UsageError(e.message);
    throw e;
  } finally {
    bar?.clear();
  }

  const json = `${JSON.stringify(report, null, 2)}\n`;
  const outputs: [string | undefined, () => Promise<void>][] = [
    [flags.out, () => writeFile(flags.out!, json)],
    [flags.html, () => writeHtmlReport(report, flags.html!)],
    [flags.csv, () => writeCsvReport(report, flags.csv!)],
  ];
  for (const [path, write] of outputs) {
    if (path === undefined) continue;
    try {
      await write();
    } catch (e) {
      // Checked before the run, yet it failed (the disk filled, say): the summary still goes out.
      io.stdout.write(flags.json === true ? json : formatSummary(report));
      throw new UsageError(`cannot write report to ${path}: ${(e as Error).message}`);
    }
  }
  io.stdout.write(flags.json === true ? json : formatSummary(report));
  return exitCodeOf(report);
}

/** The exit code of a finished run: {@link ExitCode.guestFailed} when a guest or step failed, or verification did not pass. */
export function exitCodeOf(report: Report): number {
  const failed = report.failures.length > 0 || report.totals.failedSteps > 0 || report.verify?.passed === false;
  return failed ? ExitCode.guestFailed : ExitCode.ok;
}
