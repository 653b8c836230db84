import type { TmemOptions } from './tmem.js';
import type { CostModel, DedupIndex, DomId, EvictionPolicy, FrameAllocator, SwapBackend } from '@pagevisor/types';

/** Names of the built-in frame allocators. */
export type AllocatorName = 'buddy' | 'freelist';

/** How to compose a {@link Hypervisor}. */
export interface HypervisorOptions {
  /** Frames of machine RAM (4 KiB each). Required. */
  readonly frames: number;
  /**
   * What each frame of RAM holds (default `'bytes'`): its 4 KiB of bytes, or with
   * `'fingerprints'` a 64-bit fingerprint of its content (`FingerprintMemory`: 8 bytes a frame;
   * a guest reads back bytes generated from the fingerprint, not the bytes it stored).
   */
  readonly contents?: 'bytes' | 'fingerprints';
  /** Frame allocator: a built-in name or an instance of your own (default `'buddy'`). */
  readonly allocator?: AllocatorName | FrameAllocator;
  /** De-duplication strategy (default a new `InlineDedup`). */
  readonly dedup?: DedupIndex;
  /** Simulated costs of the primitive operations (default `DEFAULT_COST_MODEL`). */
  readonly costModel?: CostModel;
  /** NUMA nodes the frames are split into, in equal contiguous ranges (default 1). */
  readonly numaNodes?: number;
  /** Paging to swap when RAM runs short (default none: allocations fail with ENOMEM). */
  readonly swap?: SwapOptions;
  /** Transcendent memory pools (default none: the tmem ops answer EOPNOTSUPP). */
  readonly tmem?: TmemOptions;
  /** De-duplication side-channel mitigations (default none). */
  readonly mitigations?: Mitigations;
}

/**
 * Mitigations of the de-duplication timing side channel (a write to a merged page takes a
 * copy-on-write fault, so an attacker can tell that another domain holds the same content).
 * Trust groups, the third, are per domain ({@link DomainOptions.trustGroup}).
 */
export interface Mitigations {
  /** Only pages of zeros are merged: an attacker learns nothing about other content. */
  readonly zeroPagesOnly?: boolean;
  /**
   * Merge candidates behave alike on write, merged or not (in the spirit of VUsion): the first
   * write to a candidate page after each scanner pass (and after each inline whole-page write)
   * takes the same fault, at the same cost, as a copy-on-write fault.
   */
  readonly uniformWrites?: boolean;
}

/** The swap area(s) and when to evict. */
export interface SwapOptions {
  /**
   * The area shared by every domain, or a factory giving each new domain an area of its own
   * (the per-domain baseline: no sharing of slots between domains).
   */
  readonly backend: SwapBackend | ((dom: DomId) => SwapBackend);
  /** Which frame to evict next. */
  readonly policy: EvictionPolicy;
  /** Free frames below which eviction starts (default max(4, frames / 64)). */
  readonly lowWatermark?: number;
  /** Free frames eviction restores once started (default 2 × lowWatermark). */
  readonly highWatermark?: number;
}

/** Options of a new domain. */
export interface DomainOptions {
  /** Name shown in reports (default `dom<N>`). */
  readonly name?: string;
  /** Most pages the domain may hold (Xen's max_pages). */
  readonly maxPages: number;
  /** Size of its guest-physical address space in pages (default maxPages). */
  readonly gfnCount?: number;
  /** Trust group (default 0): only domains of one group share frames, like ESX's salting. */
  readonly trustGroup?: number;
}
