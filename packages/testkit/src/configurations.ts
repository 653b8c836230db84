import type { Mitigations } from '@pagevisor/hypervisor';
import type { FaultPlanOptions } from '@pagevisor/swap';
import type { PluginKind } from '@pagevisor/types';

/** The swap of a host configuration: one area shared by every domain or one per domain, the built-in policy, injected device faults. */
export interface SwapSetup {
  readonly mode: 'shared' | 'per-domain';
  /** The built-in eviction policy the host uses unless the policy is the plugin under test. */
  readonly policy: 'clock' | 'lru' | 'random';
  /** Faults the memory device injects (its `FaultPlan`), shared by every area. */
  readonly faults?: FaultPlanOptions;
}

/** A built-in part by name with its options: what a host uses for every part but the one under test. */
export interface BuiltInPart {
  readonly plugin: string;
  readonly options: Readonly<Record<string, unknown>>;
}

/**
 * One host of the matrix: a hypervisor of a few frames, built fresh for every operation sequence,
 * with the built-in parts named here except the one under test.
 */
export interface HostConfiguration {
  readonly name: string;
  /** The reference-model check on a hypervisor. */
  readonly mode: 'host';
  /** Machine frames (few: the sequences run out of frames and swap often). */
  readonly frames: number;
  readonly numaNodes: number;
  /** The built-in allocator (`buddy`, `freelist`), unless an allocator is under test. */
  readonly allocator: 'buddy' | 'freelist';
  /** The built-in dedup strategy and its options, unless a dedup strategy is under test. */
  readonly dedup: BuiltInPart;
  /** Paging to swap (absent: none, allocations fail with ENOMEM). */
  readonly swap?: SwapSetup;
  /**
   * Domains in two trust groups: `'one index'` hands the strategy every group's frames (the host
   * refuses cross-group merges); `'index per group'` builds one instance of the strategy per
   * group (`PartitionedDedup`), each from the plugin with its options.
   */
  readonly trustGroups?: 'one index' | 'index per group';
  /** De-duplication side-channel mitigations. */
  readonly mitigations?: Mitigations;
  /** Slots of a tmem store (absent: the tmem ops are refused). */
  readonly tmem?: number;
}

/** A part by itself, without a host, against a model of its own (allocators and eviction policies). */
export interface AloneConfiguration {
  readonly name: string;
  readonly mode: 'alone';
  /** Frames the part manages (an allocator) or may be given (a policy). */
  readonly frames: number;
  readonly numaNodes: number;
}

/** A configuration of a kit's matrix. */
export type Configuration = HostConfiguration | AloneConfiguration;

/** KSM with small scans and max_page_sharing 2, so that full scans, chains and smart_scan happen within a sequence. */
export const KSM_SMALL: Readonly<Record<string, unknown>> = Object.freeze({ pages_to_scan: 4, max_page_sharing: 2, use_zero_pages: 1 });
/** ESX scanning fast enough to merge within a sequence. */
export const ESX_FAST: Readonly<Record<string, unknown>> = Object.freeze({ scanRatePerDomainPagesPerS: 2000, wakeIntervalMs: 20 });

const host = (c: Omit<HostConfiguration, 'mode' | 'numaNodes' | 'allocator'> & Partial<Pick<HostConfiguration, 'numaNodes' | 'allocator'>>): HostConfiguration =>
  Object.freeze({ mode: 'host', numaNodes: 1, allocator: 'buddy', ...c });

/**
 * Every host configuration, in the order the kit runs them. A dedup strategy or an allocator
 * under test replaces its part in every one; an eviction policy in those with swap.
 */
export const HOST_CONFIGURATIONS: readonly HostConfiguration[] = Object.freeze([
  host({ name: 'basic', frames: 40, dedup: { plugin: 'inline', options: {} } }),
  host({ name: 'freelist allocator', frames: 24, allocator: 'freelist', dedup: { plugin: 'inline', options: {} } }),
  host({ name: 'numa: 2 nodes', frames: 40, numaNodes: 2, dedup: { plugin: 'ksm', options: { pages_to_scan: 6, merge_across_nodes: 0 } } }),
  // Swap: far fewer frames than guest pages, so pages go out and come back all the time (and
  // forks of paged-out pages share or copy their slots).
  host({ name: 'swap: shared area, clock', frames: 5, dedup: { plugin: 'inline', options: {} }, swap: { mode: 'shared', policy: 'clock' } }),
  host({ name: 'swap: per-domain areas, lru', frames: 12, dedup: { plugin: 'none', options: {} }, swap: { mode: 'per-domain', policy: 'lru' } }),
  host({
    name: 'swap: shared area, random, device faults',
    frames: 10,
    dedup: { plugin: 'ksm', options: { pages_to_scan: 4 } },
    swap: { mode: 'shared', policy: 'random', faults: { seed: 3, writeErrorProbability: 0.05, readErrorProbability: 0.05, shortWriteProbability: 0.03 } },
  }),
  host({ name: 'swap: shared area, clock, device faults', frames: 12, dedup: { plugin: 'none', options: {} }, swap: { mode: 'shared', policy: 'clock', faults: { seed: 4, writeErrorProbability: 0.1, readErrorProbability: 0.1 } } }),
  host({ name: 'swap: per-domain areas, clock, read faults', frames: 5, dedup: { plugin: 'inline', options: {} }, swap: { mode: 'per-domain', policy: 'clock', faults: { seed: 5, readErrorProbability: 0.1 } } }),
  // Trust groups: domains in two groups, one index for all or one per group.
  host({ name: 'trust groups', frames: 40, dedup: { plugin: 'esx', options: ESX_FAST }, trustGroups: 'one index' }),
  host({ name: 'trust groups, index per group', frames: 40, dedup: { plugin: 'ksm', options: KSM_SMALL }, trustGroups: 'index per group' }),
  // Mitigations.
  host({ name: 'mitigation: zeroPagesOnly', frames: 40, dedup: { plugin: 'ksm', options: { pages_to_scan: 4, use_zero_pages: 0 } }, mitigations: { zeroPagesOnly: true } }),
  host({ name: 'mitigation: uniformWrites', frames: 40, dedup: { plugin: 'ksm', options: KSM_SMALL }, mitigations: { uniformWrites: true } }),
  host({
    name: 'mitigations: uniformWrites + zeroPagesOnly, trust groups',
    frames: 30,
    dedup: { plugin: 'inline', options: {} },
    mitigations: { uniformWrites: true, zeroPagesOnly: true },
    trustGroups: 'one index',
  }),
  // Tmem: a store of fewer slots than contents, so persistent puts fill it and ephemeral pages are evicted.
  host({ name: 'tmem', frames: 40, dedup: { plugin: 'inline', options: {} }, tmem: 5 }),
  host({ name: 'tmem + swap: per-domain areas, lru', frames: 14, dedup: { plugin: 'ksm', options: KSM_SMALL }, tmem: 3, swap: { mode: 'per-domain', policy: 'lru' } }),
]);

/** The allocator alone: odd and even sizes, one frame (every allocation but the first of order 0 refused). */
export const ALLOCATOR_ALONE_CONFIGURATIONS: readonly AloneConfiguration[] = Object.freeze(
  [1, 37, 64].map((frames) => Object.freeze({ name: `alone: ${frames} frame${frames === 1 ? '' : 's'}`, mode: 'alone' as const, frames, numaNodes: 1 })),
);

/** The eviction policy alone. */
export const POLICY_ALONE_CONFIGURATIONS: readonly AloneConfiguration[] = Object.freeze(
  [1, 48].map((frames) => Object.freeze({ name: `alone: ${frames} frame${frames === 1 ? '' : 's'}`, mode: 'alone' as const, frames, numaNodes: 1 })),
);

/** The kinds the kit checks. */
export type CheckedKind = Extract<PluginKind, 'dedup' | 'eviction-policy' | 'allocator'>;

/** The matrix the kit runs for a plugin of `kind`, in order. */
export function configurationsFor(kind: CheckedKind): readonly Configuration[] {
  switch (kind) {
    case 'dedup':
      return HOST_CONFIGURATIONS;
    case 'eviction-policy':
      return [...POLICY_ALONE_CONFIGURATIONS, ...HOST_CONFIGURATIONS.filter((c) => c.swap !== undefined)];
    case 'allocator':
      return [...ALLOCATOR_ALONE_CONFIGURATIONS, ...HOST_CONFIGURATIONS];
  }
}
