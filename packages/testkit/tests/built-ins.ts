import { appendFileSync } from 'node:fs';
import { DEFAULT_RUNS, DEFAULT_SEED, ESX_FAST, KSM_SMALL, type ConfigurationReport, type Configuration, type KitOptions, type KitReport } from '../src/index.js';

// The environment of the built-ins' runs (npm run check:model, tools/check-long.mjs):
/**
 * Sequences per configuration; `MODEL_CHECK_RUNS` raises it for long runs. By default a little
 * below the kit's own default (DEFAULT_RUNS): every built-in runs in every configuration, and
 * the package's tests stay within about 80 s on a 2-core machine.
 */
export const RUNS = Number(process.env['MODEL_CHECK_RUNS'] ?? Math.min(DEFAULT_RUNS, 25));
/** A fixed seed by default, so the suite is repeatable; `MODEL_CHECK_SEED` explores others. */
export const SEED = Number(process.env['MODEL_CHECK_SEED'] ?? DEFAULT_SEED);
/** `MODEL_CHECK_SHRINK=0` reports the first failing sequence as found (shrinking one can take minutes). */
export const SHRINK = process.env['MODEL_CHECK_SHRINK'] !== '0';
/** `MODEL_CHECK_SUMMARY=FILE` appends a JSON line per configuration (sequences, operations, applied, refused) to FILE. */
const SUMMARY = process.env['MODEL_CHECK_SUMMARY'];

/** The kit's options for a built-in run: the environment's runs, seed and shrinking. */
export function kitOptions(extra: KitOptions = {}): KitOptions {
  return { runs: RUNS, seed: SEED, shrink: SHRINK, ...extra };
}

/** Appends one summary line per configuration of `report` to MODEL_CHECK_SUMMARY, if set. */
export function summarize(report: KitReport, variant = ''): void {
  if (SUMMARY === undefined) return;
  const lines = report.configurations.map((c) =>
    JSON.stringify({
      config: { kind: report.kind, plugin: `${report.plugin}${variant}`, configuration: c.name, options: c.options },
      sequences: c.sequences,
      operations: c.operations,
      applied: c.applied,
      refused: c.refused,
    }),
  );
  appendFileSync(SUMMARY, lines.map((l) => `${l}\n`).join(''));
}

/** A test's timeout: about 30 ms a sequence on a slow machine, 10× that for a shrink; at least a minute. */
export function timeoutFor(configurations: number, runs = RUNS): number {
  return Math.max(60_000, configurations * runs * 300);
}

/**
 * The built-in dedup strategies' options in each configuration: those the configuration itself
 * uses when the strategy is its own (KSM's small scans, merge_across_nodes 0 on two nodes,
 * use_zero_pages 0 under zeroPagesOnly), else small scans that merge within a sequence.
 */
export function builtInDedupOptions(strategy: string): (c: Configuration) => Readonly<Record<string, unknown>> {
  return (c) => {
    if (c.mode === 'host' && c.dedup.plugin === strategy) return c.dedup.options;
    return strategy === 'ksm' ? KSM_SMALL : strategy === 'esx' ? ESX_FAST : {};
  };
}

/**
 * Sequences in which the built-in `strategy` itself shared pages, by its own counters (a
 * counter above 0 after some step): inline's hits, KSM's pages_sharing or ksm_zero_pages, ESX's
 * pages_merged or zero_merges; `none` has none, so any sharing (the sharing hypercalls').
 */
export function runsThatShared(strategy: string, c: ConfigurationReport): number {
  const n = (k: string) => c.counters[k] ?? 0;
  switch (strategy) {
    case 'inline':
      return n('hits');
    case 'ksm':
      return Math.max(n('pages_sharing'), n('ksm_zero_pages'));
    case 'esx':
      return Math.max(n('pages_merged'), n('zero_merges'));
    default:
      return c.runsSharing;
  }
}

/**
 * Forks met paged-out pages of their parent (the fork's slot-copy path ran) somewhere in the
 * configurations of `report` with swap, summed: per configuration they may not in a shared area,
 * where pages swapped in map the frame caching their slot and few stay out (a handful per 25
 * sequences, none at some seeds).
 */
export function pagedAtForks(report: KitReport, swapConfigurations: readonly string[]): number {
  return report.configurations.filter((c) => swapConfigurations.includes(c.name)).reduce((n, c) => n + c.pagedAtFork, 0);
}
