import type { FrameTable } from './frame-table.js';
import type { Mfn } from './ids.js';
import type { MachineMemory } from './memory.js';

/** What a de-duplication strategy may look at. Handed over once, by {@link DedupIndex.attach}. */
export interface DedupHost {
  /** Machine RAM, for hashing and full compares. */
  readonly memory: MachineMemory;
  /** The frame table, for owners, refcounts and flags. */
  readonly frames: FrameTable;
  /** The hypervisor's shared zero frame. */
  readonly zeroMfn: Mfn;
}

/**
 * A de-duplication strategy: a content index of machine frames. The hypervisor asks it for a
 * frame with the same content when a whole page is written (if `inline`), tells it when an indexed
 * frame's content is about to change or the frame is freed, and audits it.
 *
 * Write your own by implementing this interface against `@pagevisor/types` alone and passing an
 * instance as the hypervisor's `dedup` option.
 */
export interface DedupIndex {
  /** Name of the strategy, e.g. `"inline"`. */
  readonly name: string;
  /** True when whole-page writes go through {@link lookup} and {@link insert}. */
  readonly inline: boolean;
  /** True when newly populated pages map the shared zero frame instead of a frame of their own. */
  readonly populateZero: boolean;
  /** Called once before use. */
  attach(host: DedupHost): void;
  /**
   * A frame whose content equals `page` (confirmed by a full compare), or INVALID_MFN.
   * `hash` is `memory.hashPage(page)`, computed once by the caller.
   */
  lookup(page: Uint8Array, hash: number): Mfn;
  /** Indexes frame `mfn`, whose content hashes to `hash`. */
  insert(mfn: Mfn, hash: number): void;
  /** Drops frame `mfn` from the index if it is there (its content will change or it is freed). */
  remove(mfn: Mfn): void;
  /** True when frame `mfn` is indexed. */
  contains(mfn: Mfn): boolean;
  /** Frames indexed. */
  readonly size: number;
  /** Bytes of metadata the index holds. */
  metadataBytes(): number;
  /** Strategy-specific counters (lookups, hits, collisions ...). */
  stats(): Readonly<Record<string, number>>;
  /** Broken invariants of the index, in words (empty when sound). */
  audit(): string[];
}
