import type { CostModel } from './cost-model.js';
import type { FrameTable } from './frame-table.js';
import type { DomId, Gfn, Mfn } from './ids.js';
import type { MachineMemory } from './memory.js';
import type { P2m } from './p2m.js';

/** What a de-duplication strategy may look at and do. Handed over once, by {@link DedupIndex.attach}. */
export interface DedupHost {
  /** Machine RAM, for hashing and full compares. */
  readonly memory: MachineMemory;
  /** The frame table, for owners, refcounts and flags (read only). */
  readonly frames: FrameTable;
  /** Every domain's p2m (read only): scanners walk it. */
  readonly p2m: P2m;
  /** The hypervisor's shared zero frame. */
  readonly zeroMfn: Mfn;
  /** Simulated costs, for charging scan work. */
  readonly costModel: CostModel;
  /** NUMA nodes of the machine (1 or more). */
  readonly numaNodes: number;
  /** NUMA node of frame `mfn` (0 .. numaNodes-1). */
  nodeOf(mfn: Mfn): number;
  /**
   * Makes `dom`'s page `gfn` map frame `target`, shared copy-on-write (`target` may be private,
   * already shared, or the zero frame). The host confirms with a full compare that the contents
   * are equal. Returns false, changing nothing, when the page has no frame, already maps
   * `target`, or the contents differ.
   */
  merge(dom: DomId, gfn: Gfn, target: Mfn): boolean;
  /**
   * Gives `dom`'s page `gfn` a private copy when it maps a shared frame (KSM's unmerge). Returns
   * false, changing nothing, when no frame is free; true otherwise (also when nothing was shared).
   */
  unmerge(dom: DomId, gfn: Gfn): boolean;
  /**
   * Makes `n` frames free before a change that will allocate them (an unmerge of many pages),
   * paging others out to swap when the host has a swap area. False, having changed nothing, when
   * it cannot. A host without it has only its free frames (`frames.freeFrames`).
   */
  ensureFree?(n: number): boolean;
  /** Adds `ns` of simulated CPU time spent by the strategy itself (e.g. scanning). */
  chargeCpu(ns: number): void;
  /**
   * Trust group of `dom` (0 unless the domain was created in another). Pages of domains in
   * different groups must never share a frame (other than the zero frame); the host refuses such
   * merges, and a strategy that partitions its index by group (PartitionedDedup) never asks.
   */
  groupOf(dom: DomId): number;
}

/**
 * Why the host offers a frame to {@link DedupIndex.insert}:
 * - `'miss'`: a whole-page write looked its content up, found no frame to share, and the page now
 *   holds that content in this frame (private to the writer);
 * - `'shared'`: the frame has just become shared or gained mappings (`nominate_gfn`, `share`,
 *   `range_share`, a fork or fork reset, a scanner's `host.merge`, a whole-page write that
 *   shared it), and the strategy does not hold it: its content is known to be worth sharing.
 *
 * Either way it is an offer: the strategy may index the frame or not. A frame declined may be
 * offered again later (a shared frame each time it gains mappings).
 */
export type InsertReason = 'miss' | 'shared';

/** How much an audit checks: everything, or the costly parts on a sample (see DedupIndex.audit). */
export type AuditDepth = 'full' | 'sample';

/**
 * A de-duplication strategy: a content index of machine frames. The hypervisor asks it for a
 * frame with the same content when a whole page is written (if `inline`), offers it frames to
 * index, tells it when a frame's content is about to change or the frame is freed, and audits
 * it. Scanning strategies also implement the optional hooks: the simulator wakes them on the
 * simulated clock.
 *
 * The index is a cache of candidates, never a record the host relies on. Every
 * {@link insert} is an offer that the strategy may decline, for any reason (a zero-pages-only
 * index, a sampled one), and it may drop entries it holds at any later time (a size-bounded index
 * evicting cold contents, shared frames included). The host only asks {@link lookup}, confirms
 * the frame it gets with a full compare of its own, and calls {@link remove} whenever a frame's
 * content may change or the frame is freed, whether the strategy holds it or not. So a frame that
 * is not indexed is only a sharing opportunity missed. What a strategy must never do: return from
 * `lookup` a frame whose content differs from the page (the host compares and refuses it, but
 * that is a broken strategy), or hold a frame after `remove(mfn)` (its content is about to change
 * or it is being freed: the hypervisor's audit reports any held frame that is free, and a
 * strategy's own audit should check that each frame it holds still has the content it was
 * indexed under). Strategies that index every frame offered (InlineDedup) check that in their
 * own {@link audit}: the hypervisor's audit does not require any frame to be indexed.
 *
 * Write your own by implementing this interface against `@pagevisor/types` alone and passing an
 * instance as the hypervisor's `dedup` option.
 */
export interface DedupIndex {
  /** Name of the strategy, e.g. `"inline"`. */
  readonly name: string;
  /** True when whole-page writes go through {@link lookup} and frames are offered to {@link insert}. */
  readonly inline: boolean;
  /** True when newly populated pages map the shared zero frame instead of a frame of their own. */
  readonly populateZero: boolean;
  /** Called once before use. */
  attach(host: DedupHost): void;
  /**
   * A frame whose content equals `page` (confirmed by a full compare), or INVALID_MFN.
   * `hash` is `memory.hashPage(page)`, computed once by the caller; `dom` is the writing domain
   * (strategies that partition by trust group look in that group only; others may ignore it).
   * Only frames the strategy holds can be found; the host compares the frame returned anyway.
   */
  lookup(page: Uint8Array, hash: number, dom: DomId): Mfn;
  /**
   * Offers frame `mfn`, whose content hashes to `hash`, for indexing; `reason` says why (see
   * {@link InsertReason}). The strategy may index it or not, whatever the reason, and may drop it
   * later. Called only when {@link inline} is true, and never for a frame {@link contains}
   * reports indexed (a strategy may treat that as a bug); the frame is live (not free) and its
   * content is what `hash` was computed from.
   */
  insert(mfn: Mfn, hash: number, reason: InsertReason): void;
  /**
   * Frame `mfn`'s content is about to change or the frame is being freed: forget it. Called for
   * every such frame whether the strategy holds it or not (never offered, declined, or dropped
   * since: nothing to do then). After it returns the strategy must not hold `mfn` until it is
   * offered again. The zero frame is never written nor freed: a strategy may ignore its removal.
   */
  remove(mfn: Mfn): void;
  /**
   * True when frame `mfn` is indexed now. The host asks it before offering a frame that became
   * shared (no offer for a frame already held) and in its audit (no free frame may be held).
   */
  contains(mfn: Mfn): boolean;
  /** Frames indexed. */
  readonly size: number;
  /** Bytes of metadata the index holds. */
  metadataBytes(): number;
  /** Strategy-specific counters (lookups, hits, collisions, KSM's pages_shared ...). */
  stats(): Readonly<Record<string, number>>;
  /**
   * Broken invariants of the index, in words (empty when sound): what this strategy promises of
   * itself (e.g. InlineDedup: every shared frame is indexed, since it indexes every offer).
   * `depth` `'sample'` (the simulator's end-of-run default) lets a strategy check costly things,
   * such as re-hashing every frame it holds, on a sample only; `'full'` (the default, and what
   * tests use) checks everything.
   */
  audit(depth?: AuditDepth): string[];

  /** Scanners: simulated time (ns) of the next wake-up, or Infinity when there is nothing to do. */
  nextWakeNs?(): number;
  /** Scanners: does the work of one wake-up due at `nowNs`. */
  wake?(nowNs: number): void;
  /** Marks `count` pages from `start` of `dom` mergeable or not (MADV_MERGEABLE / MADV_UNMERGEABLE). */
  advise?(dom: DomId, start: Gfn, count: number, mergeable: boolean): void;
  /** Marks all of `dom`, present and future pages, mergeable or not (PR_SET_MEMORY_MERGE). */
  setDomainMergeable?(dom: DomId, on: boolean): void;
  /**
   * True when `dom`'s page `gfn` is a merge candidate (KSM: inside a MADV_MERGEABLE range or a
   * PR_SET_MEMORY_MERGE domain). Absent: every page is a candidate. The uniform-write
   * mitigation makes candidates fault alike on write, merged or not.
   */
  isMergeable?(dom: DomId, gfn: Gfn): boolean;
  /** `child` has just become a fork of `parent`: it inherits the parent's mergeable advice (as Linux fork copies VM_MERGEABLE and MMF_VM_MERGE_ANY). */
  domainForked?(parent: DomId, child: DomId): void;
  /** `dom` is about to be destroyed: forget it (called before its pages are released). */
  domainDestroyed?(dom: DomId): void;
  /**
   * `dom`'s page `gfn`, which mapped the zero frame, stops mapping it: a write took its
   * copy-on-write fault (an unmerge's too), or the page is being dropped (MADV_DONTNEED,
   * decrease_reservation, a remap onto another frame, the release of a destroyed domain's pages,
   * after `domainDestroyed`). KSM counts a page it merged onto the zero frame out of
   * `ksm_zero_pages` here, as Linux does at the write fault or the unmap; without the hook it
   * finds out at its next scan of the page. Strategies without zero-page counters leave it out.
   */
  zeroPageUnmapped?(dom: DomId, gfn: Gfn): void;
  /**
   * Sets a tunable by name (KSM's sysfs names) to a number, or to a word for a knob that takes
   * one (KSM's advisor_mode); refuses with HypervisorError (EINVAL, EBUSY).
   */
  setKnob?(name: string, value: number | string): void;
  /** Current tunables by name. */
  knobs?(): Readonly<Record<string, number>>;
  /** Per-domain counters (KSM: rmap_items, merging_pages, zero_pages, profit). */
  domainStats?(dom: DomId): Readonly<Record<string, number>>;
}
