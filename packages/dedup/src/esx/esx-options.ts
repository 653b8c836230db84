import { HypervisorError } from '@pagevisor/types';

/**
 * Options of {@link EsxDedup}. ESX Server exposes the same two limits as advanced settings
 * (a per-VM and a system-wide maximum scan rate, `Mem.ShareScanTime` / `Mem.ShareScanGHz`);
 * here they are plain pages per second of simulated time.
 */
export interface EsxDedupOptions {
  /**
   * Most pages scanned per second for each domain (0 stops scanning). Default 4096 (16 MiB/s):
   * a domain of 4096 pages is drawn once per page per second on average.
   */
  readonly scanRatePerDomainPagesPerS?: number;
  /**
   * Most pages scanned per second over all domains together (0 stops scanning); when the
   * per-domain rates add up to more, the domains share it in turn. Default 16384 (64 MiB/s).
   */
  readonly scanRateGlobalPagesPerS?: number;
  /** Simulated time between wake-ups of the scanner, in ms (> 0). Default 100. */
  readonly wakeIntervalMs?: number;
  /** Seed of the random choice of candidate pages (32-bit integer). Default 1. */
  readonly seed?: number;
  /**
   * True: populated pages map the shared zero frame, as under inline de-duplication. False:
   * each populated page gets a zeroed frame of its own, as ESX backs guest memory, and the
   * scanner later merges the zero pages onto the zero frame. Default false.
   */
  readonly populateZero?: boolean;
  /** Slots of the hash table at start; a power of two in [2, 2^30]. Default 1024. */
  readonly initialCapacity?: number;
}

/** Defaults of {@link EsxDedupOptions}. */
export const DEFAULT_ESX_OPTIONS: Readonly<Required<EsxDedupOptions>> = Object.freeze({
  scanRatePerDomainPagesPerS: 4096,
  scanRateGlobalPagesPerS: 16384,
  wakeIntervalMs: 100,
  seed: 1,
  populateZero: false,
  initialCapacity: 1024,
});

/** Names of the options that {@link EsxDedup.setKnob} changes at run time. */
export const ESX_KNOBS = ['scanRatePerDomainPagesPerS', 'scanRateGlobalPagesPerS', 'wakeIntervalMs'] as const;

/** Name of an option that can be changed at run time. */
export type EsxKnob = (typeof ESX_KNOBS)[number];

/** Largest table: slot indices and masks must stay within 31-bit integer arithmetic. */
export const ESX_MAX_CAPACITY = 1 << 30;

/**
 * `opts` with every unset field taken from {@link DEFAULT_ESX_OPTIONS}; a field out of range is
 * an EINVAL HypervisorError naming it.
 */
export function resolveEsxOptions(opts: EsxDedupOptions): Required<EsxDedupOptions> {
  const r: Required<EsxDedupOptions> = { ...DEFAULT_ESX_OPTIONS, ...definedFields(opts) };
  for (const name of ESX_KNOBS) checkKnob('esx_dedup', name, r[name]);
  if (!Number.isInteger(r.seed)) throw new HypervisorError('EINVAL', 'esx_dedup', `seed must be an integer, got ${r.seed}`);
  if (typeof r.populateZero !== 'boolean') {
    throw new HypervisorError('EINVAL', 'esx_dedup', `populateZero must be a boolean, got ${String(r.populateZero)}`);
  }
  const c = r.initialCapacity;
  if (!Number.isInteger(c) || c < 2 || c > ESX_MAX_CAPACITY || (c & (c - 1)) !== 0) {
    throw new HypervisorError('EINVAL', 'esx_dedup', `initialCapacity must be a power of two in [2, 2^30], got ${c}`);
  }
  return r;
}

/** Throws EINVAL (naming `op`) unless `value` is valid for knob `name`. */
export function checkKnob(op: string, name: EsxKnob, value: number | string): asserts value is number {
  if (name === 'wakeIntervalMs') {
    if (!(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
      throw new HypervisorError('EINVAL', op, `wakeIntervalMs must be a finite number > 0, got ${value}`);
    }
  } else if (!(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
    throw new HypervisorError('EINVAL', op, `${name} must be a finite number >= 0, got ${value}`);
  }
}

function definedFields(opts: EsxDedupOptions): EsxDedupOptions {
  // `{ seed: undefined }` must mean "the default", not overwrite it.
  return Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as EsxDedupOptions;
}
