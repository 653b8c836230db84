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
}

/** Name of a KSM tunable. */
export type KsmKnob = keyof KsmOptions;

/** A value for every tunable. */
export type KsmKnobValues = { -readonly [K in KsmKnob]-?: number };

/**
 * Linux's defaults, except `run`: Linux boots with ksmd stopped (0); a KSM strategy that is
 * chosen explicitly is meant to scan, so it starts at 1.
 */
export const DEFAULT_KSM_OPTIONS: Readonly<Required<KsmOptions>> = Object.freeze({
  pages_to_scan: 100,
  sleep_millisecs: 20,
  max_page_sharing: 256,
  use_zero_pages: 0,
  merge_across_nodes: 1,
  smart_scan: 1,
  run: 1,
  stable_node_chains_prune_millisecs: 2000,
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
  return out;
}
