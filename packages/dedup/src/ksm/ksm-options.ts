import { HypervisorError } from '@pagevisor/types';

/**
 * Tunables of {@link KsmDedup}, named and valued as the files of Linux's `/sys/kernel/mm/ksm/`
 * (numbers, 0/1 for booleans). Every field is optional; unset fields take {@link DEFAULT_KSM_OPTIONS}.
 */
export interface KsmOptions {
  /** Pages scanned per wake-up (an unsigned integer; 0 scans nothing). Default 100. */
  readonly pages_to_scan?: number;
  /** Simulated milliseconds between two wake-ups (an unsigned integer). Default 20. */
  readonly sleep_millisecs?: number;
  /**
   * Most mappings of one KSM page (an integer >= 2); identical content beyond it gets another
   * KSM page, chained to the first ("stable_node_dups" of a "stable_node_chain"). Default 256.
   */
  readonly max_page_sharing?: number;
  /** 1: pages of zeros are merged onto the host's zero frame and counted in ksm_zero_pages. Default 0. */
  readonly use_zero_pages?: number;
  /** 0: one stable and one unstable tree per NUMA node, so merges never cross nodes. Default 1. */
  readonly merge_across_nodes?: number;
  /** 1: pages that never merge are skipped for a growing number of full scans. Default 1. */
  readonly smart_scan?: number;
  /** 0 stop scanning (state kept), 1 run, 2 stop and unmerge every merged page. Default 1. */
  readonly run?: number;
  /** Simulated milliseconds between two prunings of one stable_node_chain (unsigned). Default 2000. */
  readonly stable_node_chains_prune_millisecs?: number;
  /** Most percent of a CPU the advisor lets ksmd use (unsigned). Default 70. */
  readonly advisor_max_cpu?: number;
  /** pages_to_scan the advisor starts from when it is switched on (unsigned). Default 500. */
  readonly advisor_min_pages_to_scan?: number;
  /** Most pages_to_scan the advisor sets (unsigned). Default 30000. */
  readonly advisor_max_pages_to_scan?: number;
  /** Seconds the advisor aims a full scan to take (an integer >= 1). Default 200. */
  readonly advisor_target_scan_time?: number;
  /**
   * `"scan-time"` (or 1): the advisor (Linux 6.7+) sets pages_to_scan after every full scan, to
   * aim at advisor_target_scan_time, and pages_to_scan may not be set by hand; `"none"` (or 0,
   * the default) leaves it alone. Switching it resets pages_to_scan: to advisor_min_pages_to_scan
   * when switched on, to 100 when off. `knobs()` reports it as 0 or 1.
   */
  readonly advisor_mode?: number | AdvisorMode;
}

/** The words advisor_mode takes, as sysfs shows them. */
export const ADVISOR_MODES = ['none', 'scan-time'] as const;
/** A word of advisor_mode. */
export type AdvisorMode = (typeof ADVISOR_MODES)[number];

/** Name of a KSM tunable. */
export type KsmKnob = keyof KsmOptions;

/** A value for every tunable (advisor_mode as 0 or 1). */
export type KsmKnobValues = { -readonly [K in KsmKnob]-?: number };

/**
 * Linux's defaults, except `run`: Linux boots with ksmd stopped (0); a KSM strategy that is
 * chosen explicitly is meant to scan, so it starts at 1.
 */
export const DEFAULT_KSM_OPTIONS: Readonly<KsmKnobValues> = Object.freeze({
  pages_to_scan: 100,
  sleep_millisecs: 20,
  max_page_sharing: 256,
  use_zero_pages: 0,
  merge_across_nodes: 1,
  smart_scan: 1,
  run: 1,
  stable_node_chains_prune_millisecs: 2000,
  advisor_max_cpu: 70,
  advisor_min_pages_to_scan: 500,
  advisor_max_pages_to_scan: 30000,
  advisor_target_scan_time: 200,
  // Last: switching the advisor on reads advisor_min_pages_to_scan.
  advisor_mode: 0,
});

/** Names of every tunable, in the order `knobs()` lists them. */
export const KSM_KNOBS: readonly KsmKnob[] = Object.freeze(Object.keys(DEFAULT_KSM_OPTIONS) as KsmKnob[]);

/** Largest value of an unsigned knob (the kernel parses them as unsigned int). */
const UINT_MAX = 0xffffffff;
/** Largest max_page_sharing (the kernel parses it as int). */
const INT_MAX = 0x7fffffff;

const RANGES: Readonly<Record<KsmKnob, readonly [number, number]>> = {
  pages_to_scan: [0, UINT_MAX],
  sleep_millisecs: [0, UINT_MAX],
  max_page_sharing: [2, INT_MAX],
  use_zero_pages: [0, 1],
  merge_across_nodes: [0, 1],
  smart_scan: [0, 1],
  run: [0, 2],
  stable_node_chains_prune_millisecs: [0, UINT_MAX],
  advisor_max_cpu: [0, UINT_MAX],
  // The kernel parses these as unsigned long.
  advisor_min_pages_to_scan: [0, Number.MAX_SAFE_INTEGER],
  advisor_max_pages_to_scan: [0, Number.MAX_SAFE_INTEGER],
  advisor_target_scan_time: [1, Number.MAX_SAFE_INTEGER],
  advisor_mode: [0, 1],
};

/** True when `name` is the name of a KSM tunable. */
export function isKsmKnob(name: string): name is KsmKnob {
  return Object.prototype.hasOwnProperty.call(RANGES, name);
}

/**
 * Checks `value` for knob `name` and returns it; an unknown name or a value out of the knob's
 * range (see {@link KsmOptions}) is an EINVAL HypervisorError naming the knob.
 */
export function checkKnob(op: string, name: string, value: unknown): number {
  if (!isKsmKnob(name)) {
    throw new HypervisorError('EINVAL', op, `unknown KSM knob ${JSON.stringify(name)}; known: ${KSM_KNOBS.join(', ')}`);
  }
  const [min, max] = RANGES[name];
  if (name === 'advisor_mode' && typeof value === 'string') {
    const mode = (ADVISOR_MODES as readonly string[]).indexOf(value);
    if (mode < 0) throw new HypervisorError('EINVAL', op, `advisor_mode must be "none" or "scan-time" (or 0, 1), got ${JSON.stringify(value)}`);
    return mode;
  }
  // A 0/1 knob also takes false/true, as a scenario file may say it.
  const v = typeof value === 'boolean' && max === 1 ? Number(value) : value;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new HypervisorError('EINVAL', op, `${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return v;
}

/** `opts` over {@link DEFAULT_KSM_OPTIONS}, every field checked by {@link checkKnob}. */
export function resolveKsmOptions(opts: KsmOptions): KsmKnobValues {
  for (const name of Object.keys(opts)) {
    if (!isKsmKnob(name)) checkKnob('ksm', name, 0);
  }
  const out: KsmKnobValues = { ...DEFAULT_KSM_OPTIONS };
  for (const name of KSM_KNOBS) {
    const v = opts[name];
    if (v !== undefined) out[name] = checkKnob('ksm', name, v);
  }
  if (out.advisor_mode === 1) {
    if (opts.pages_to_scan !== undefined) throw new HypervisorError('EINVAL', 'ksm', ADVISOR_OWNS_PAGES_TO_SCAN);
    out.pages_to_scan = out.advisor_min_pages_to_scan;
  }
  return out;
}

/** Why pages_to_scan cannot be set while the advisor runs. */
export const ADVISOR_OWNS_PAGES_TO_SCAN = 'pages_to_scan is the advisor\'s while advisor_mode is scan-time (set advisor_mode to none first)';

/** advisor_mode as sysfs writes it: the word for 0 or 1; every other knob's value as it is. */
export function knobText(name: string, value: number | string): string {
  if (name === 'advisor_mode' && (value === 0 || value === 1)) return ADVISOR_MODES[value];
  return String(value);
}
