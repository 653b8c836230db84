import type { Mfn, SwapSlot } from './ids.js';

/**
 * A swap device: a flat array of 4 KiB slots (memory, a real file ...). It states its own fault
 * model; a failed operation throws HypervisorError (EIO, ENOSPC) and leaves every slot it did not
 * report written as it was.
 */
export interface SwapDevice {
  /** Name, e.g. `"memory"` or `"file"`. */
  readonly name: string;
  /** Slots the device holds. */
  readonly slots: number;
  /** Writes `length` bytes of `src` (from `srcOffset`) at byte `offset` of the device. */
  write(offset: number, src: Uint8Array, srcOffset: number, length: number): void;
  /** Reads `length` bytes at byte `offset` of the device into `dst` (from `dstOffset`). */
  read(offset: number, dst: Uint8Array, dstOffset: number, length: number): void;
  /** Makes written data durable (fsync for a file); a no-op where nothing is volatile. */
  sync(): void;
  /** Releases the device (closes a file). */
  close(): void;
}

/** Counters of a swap area. */
export interface SwapStats {
  /** Pages stored (each call of swapOut that succeeded, de-duplicated or not). */
  readonly swapOuts: number;
  /** Pages read back. */
  readonly swapIns: number;
  /** Slots holding a page now. */
  readonly swapSlotsUsed: number;
  /** Bytes written to the device. */
  readonly swapBytesWritten: number;
  /** Bytes read from the device. */
  readonly swapBytesRead: number;
  /** Page stores that found identical content already in a slot and wrote nothing. */
  readonly slotsSavedByDedup: number;
  /** Uncompressed bytes stored / bytes they take on the device (1 without compression). */
  readonly compressionRatio: number;
  /** Device bytes in use now (slots × 4 KiB, or compressed bytes). */
  readonly diskBytesUsed: number;
  /** Most device bytes in use at any time. */
  readonly diskBytesPeak: number;
}

/**
 * The shared swap area every domain pages out to: slots with refcounts, content de-duplication
 * (identical pages from any domain share one slot), a per-slot checksum verified on every read,
 * optional compression in front of the device. Expected failures are HypervisorError (ENOSPC
 * when full, EIO when the device fails or a checksum does not match) and change nothing.
 */
export interface SwapBackend {
  /** Name, e.g. `"shared"`. */
  readonly name: string;
  /**
   * Stores the PAGE_SIZE bytes of `page` (whose xxhash is `hash`) and returns the slot holding
   * them, with one more reference: an existing slot when identical content is stored already.
   */
  store(page: Uint8Array, hash: number): SwapSlot;
  /** Reads slot `slot` into `dst` (PAGE_SIZE bytes), verifying its checksum. */
  load(slot: SwapSlot, dst: Uint8Array): void;
  /** Adds `delta` references to `slot`; at 0 the slot is free. Returns the new count. */
  addRef(slot: SwapSlot, delta: number): number;
  /** References to `slot` (0 when free). */
  refcount(slot: SwapSlot): number;
  /**
   * The xxhash of the page in used slot `slot` (its checksum), known without reading the device;
   * optional: without it the host hashes the page it loads.
   */
  checksum?(slot: SwapSlot): number;
  /** Slots with at least one reference, ascending (not for the hot path). */
  usedSlots(): Iterable<SwapSlot>;
  /** Counters. */
  stats(): SwapStats;
  /** Bytes of metadata held. */
  metadataBytes(): number;
  /** Broken invariants, in words (empty when sound). */
  audit(): string[];
}

/**
 * Which frame to evict next (in the spirit of gem5's replacement policies): the hypervisor tells
 * it which frames hold evictable guest pages and when they are accessed, and asks it for a victim.
 */
export interface EvictionPolicy {
  /** Name, e.g. `"clock"`. */
  readonly name: string;
  /** Frame `mfn` now holds an evictable page. */
  insert(mfn: Mfn): void;
  /** Frame `mfn` no longer holds an evictable page (freed, evicted, pinned). */
  remove(mfn: Mfn): void;
  /** Frame `mfn` was accessed (the accessed bit the hardware would set). */
  touch(mfn: Mfn): void;
  /** The frame to evict next (it stays tracked until removed), or INVALID_MFN when none is tracked. */
  victim(): Mfn;
  /** Frames tracked. */
  readonly size: number;
  /** Forgets every frame. */
  reset(): void;
}
