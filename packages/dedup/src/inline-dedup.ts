import {
  FrameFlags,
  HypervisorError,
  INVALID_MFN,
  invariant,
  InvariantError,
  PAGE_SIZE,
  type DedupHost,
  type DedupIndex,
  type InsertReason,
  type Mfn,
  type AuditDepth,
} from '@pagevisor/types';

/** In a `'sample'` audit, one indexed frame in this many has its stored hash checked against its content. */
export const SAMPLE_STRIDE = 64;

/** Options of {@link InlineDedup}. */
export interface InlineDedupOptions {
  /** Slots of the hash table at start; a power of two, at least 2. Default 1024. */
  readonly initialCapacity?: number;
  /**
   * Largest fraction of slots in use (live entries plus tombstones) before the table is rebuilt,
   * in (0, 1). Default 0.5: short probe sequences under linear probing.
   */
  readonly maxLoadFactor?: number;
}

/** Defaults of {@link InlineDedupOptions}. */
export const DEFAULT_INLINE_DEDUP_OPTIONS: Readonly<Required<InlineDedupOptions>> = Object.freeze({
  initialCapacity: 1024,
  maxLoadFactor: 0.5,
});

/** Largest `initialCapacity`. */
const MAX_INITIAL_CAPACITY = 1 << 30;
/**
 * Largest table the index grows to: 2^31 slots (8 GiB), whose default load limit of one half
 * holds every frame of the largest host (2^30, 4 TiB); slot indices and masks stay within 31
 * bits. (Capped at 2^30 slots, a rebuild found the table full past 2^28 entries.)
 */
const MAX_CAPACITY = 2 ** 31;
/** Slot value: never used, ends a probe sequence. */
const EMPTY = -1;
/** Slot value: held an entry that was removed; a probe sequence walks past it. */
const TOMBSTONE = -2;

/**
 * Spreads a 32-bit hash over the slot index bits, so callers that pass small or sequential hashes
 * (tests, weak hashes of a custom memory) still get short probe sequences.
 */
function homeSlot(hash: number, mask: number): number {
  let h = Math.imul(hash ^ (hash >>> 16), 0x45d9f3b);
  h ^= h >>> 16;
  return h & mask;
}

/**
 * Inline de-duplication, the design pagevisor started from: a content index consulted when a
 * whole page is written (`inline`), with populate mapping the shared zero frame (`populateZero`).
 *
 * The index is an open-addressing hash table with linear probing in typed arrays: `slots` holds
 * the mfn of each indexed frame (or EMPTY / TOMBSTONE), and per machine frame `keys` holds the
 * 32-bit xxhash the frame was indexed under, with a bitmap saying which frames are indexed. A
 * probe compares `keys[slots[i]]`; {@link remove} finds a frame's slot from its kept key, so it
 * is O(1) and hashes nothing (the frame's content was hashed once, when it was indexed). That is
 * 4 bytes a slot plus 4 bytes and 1 bit a frame of the host.
 * Frames whose contents differ but whose hashes are equal all live in the table; {@link lookup}
 * returns only a frame whose bytes a full compare confirms. Lookups, inserts and removes allocate
 * nothing; only a rebuild of the table does.
 */
export class InlineDedup implements DedupIndex {
  /** Name of the strategy. */
  readonly name = 'inline';
  /** Whole-page writes go through {@link lookup} and {@link insert}. */
  readonly inline = true;
  /** Populated pages map the shared zero frame. */
  readonly populateZero = true;

  private readonly maxLoadFactor: number;
  private host: DedupHost | undefined;
  private zeroMfn: Mfn = INVALID_MFN;

  /** Mfn of each slot, or EMPTY / TOMBSTONE. */
  private slots: Int32Array;
  /** Per machine frame: the hash it is indexed under (meaningful while its `indexed` bit is set). */
  private keys = new Uint32Array(0);
  /** Bit `mfn` set when frame `mfn` is indexed. */
  private indexed = new Uint32Array(0);
  /** Frames of the host (bits of `indexed`). */
  private frames = 0;
  private mask: number;
  /** Most slots (live + tombstones) allowed before a rebuild. */
  private limit: number;
  private live = 0;
  private tombstones = 0;

  private lookups = 0;
  private hits = 0;
  private misses = 0;
  private collisions = 0;
  private inserts = 0;
  private removes = 0;
  private rebuilds = 0;

  /** @param opts see {@link InlineDedupOptions}; unset fields take {@link DEFAULT_INLINE_DEDUP_OPTIONS}. */
  constructor(opts: InlineDedupOptions = {}) {
    const capacity = opts.initialCapacity ?? DEFAULT_INLINE_DEDUP_OPTIONS.initialCapacity;
    const maxLoadFactor = opts.maxLoadFactor ?? DEFAULT_INLINE_DEDUP_OPTIONS.maxLoadFactor;
    if (
      !Number.isInteger(capacity) ||
      capacity < 2 ||
      capacity > MAX_INITIAL_CAPACITY ||
      (capacity & (capacity - 1)) !== 0
    ) {
      throw new HypervisorError(
        'EINVAL',
        'inline_dedup',
        `initialCapacity must be a power of two in [2, 2^30], got ${capacity}`,
      );
    }
    if (!(maxLoadFactor > 0 && maxLoadFactor < 1)) {
      throw new HypervisorError(
        'EINVAL',
        'inline_dedup',
        `maxLoadFactor must be in (0, 1), got ${maxLoadFactor}`,
      );
    }
    this.maxLoadFactor = maxLoadFactor;
    this.slots = new Int32Array(capacity).fill(EMPTY);
    this.mask = capacity - 1;
    this.limit = this.limitFor(capacity);
  }

  /** Frames indexed, the zero frame included. */
  get size(): number {
    return this.live;
  }

  /** Slots of the hash table. */
  get capacity(): number {
    return this.slots.length;
  }

  /**
   * Sizes the per-frame keys and indexed bitmap for every frame of `host.memory` and indexes the zero frame, so that a
   * whole-page write of zeros finds it. Called once.
   */
  attach(host: DedupHost): void {
    invariant(this.host === undefined, 'inline dedup: attach called twice');
    const frames = host.memory.frames;
    invariant(
      Number.isInteger(host.zeroMfn) && host.zeroMfn >= 0 && host.zeroMfn < frames,
      `inline dedup: zero frame ${host.zeroMfn} outside machine memory of ${frames} frames`,
    );
    invariant(host.memory.isZeroFrame(host.zeroMfn), `inline dedup: zero frame ${host.zeroMfn} is not all zeros`);
    this.host = host;
    this.zeroMfn = host.zeroMfn;
    this.frames = frames;
    this.keys = new Uint32Array(frames);
    this.indexed = new Uint32Array(Math.ceil(frames / 32));
    this.insert(host.zeroMfn, host.memory.hashFrame(host.zeroMfn), 'shared');
  }

  /**
   * The first frame in the probe sequence of `hash` whose bytes equal `page`, or INVALID_MFN.
   * Every hash match is confirmed by a full compare; a failed compare counts as a collision.
   */
  lookup(page: Uint8Array, hash: number): Mfn {
    const host = this.host;
    invariant(host !== undefined, 'inline dedup: lookup before attach');
    // An if, not invariant(): the message would be built on every call.
    if (page.length !== PAGE_SIZE) throw new InvariantError(`inline dedup: lookup of ${page.length} bytes, not a page`);
    this.lookups++;
    const key = hash >>> 0;
    const keys = this.keys;
    const slots = this.slots;
    const mask = this.mask;
    // Terminates: the load limit keeps at least one EMPTY slot in the table.
    for (let i = homeSlot(key, mask); ; i = (i + 1) & mask) {
      const mfn = slots[i]!;
      if (mfn === EMPTY) break;
      if (mfn >= 0 && keys[mfn] === key) {
        if (host.memory.frameEquals(mfn as Mfn, page)) {
          this.hits++;
          return mfn as Mfn;
        }
        this.collisions++;
      }
    }
    this.misses++;
    return INVALID_MFN;
  }

  /**
   * Indexes frame `mfn` under `hash`, whatever the `reason`: this strategy takes every offer, a
   * write's miss as well as a frame that became shared (so its audit requires every shared frame
   * to be indexed). Indexing a frame twice is an InvariantError.
   */
  insert(mfn: Mfn, hash: number, _reason: InsertReason): void {
    invariant(this.host !== undefined, 'inline dedup: insert before attach');
    if (!(mfn >= 0 && mfn < this.frames)) {
      throw new InvariantError(`inline dedup: insert of mfn ${mfn} outside machine memory`);
    }
    if (this.contains(mfn)) {
      throw new InvariantError(`inline dedup: insert of mfn ${mfn}, already indexed`);
    }
    if (this.live + this.tombstones >= this.limit) this.rebuild();
    const key = hash >>> 0;
    const slots = this.slots;
    const mask = this.mask;
    // The frame is known not to be in the table (its bit), so the first free slot will do;
    // reusing a tombstone keeps probe sequences short.
    let i = homeSlot(key, mask);
    while (slots[i]! >= 0) i = (i + 1) & mask;
    if (slots[i] === TOMBSTONE) this.tombstones--;
    this.keys[mfn] = key;
    slots[i] = mfn;
    this.indexed[mfn >>> 5]! |= 1 << (mfn & 31);
    this.live++;
    this.inserts++;
  }

  /**
   * Drops frame `mfn` from the index. A frame that is not indexed is ignored, and so is the zero
   * frame: it is never written nor freed, so it stays indexed for whole-page zero writes.
   */
  remove(mfn: Mfn): void {
    if (mfn === this.zeroMfn) return;
    if (!(mfn >= 0 && mfn < this.frames)) {
      if (this.host !== undefined) {
        throw new InvariantError(`inline dedup: remove of mfn ${mfn} outside machine memory`);
      }
      return;
    }
    if (!this.contains(mfn)) return;
    const slots = this.slots;
    const mask = this.mask;
    let slot = homeSlot(this.keys[mfn]!, mask);
    while (slots[slot] !== mfn) {
      // The frame went in under its key, so its slot lies before the first EMPTY of the sequence.
      if (slots[slot] === EMPTY) throw new InvariantError(`inline dedup: mfn ${mfn} is marked indexed but in no slot`);
      slot = (slot + 1) & mask;
    }
    this.indexed[mfn >>> 5]! &= ~(1 << (mfn & 31));
    this.live--;
    this.removes++;
    if (slots[(slot + 1) & mask] !== EMPTY) {
      slots[slot] = TOMBSTONE;
      this.tombstones++;
      return;
    }
    // No probe sequence runs past an EMPTY slot, so this slot and the tombstones just before it
    // end every sequence through them: they can become EMPTY again.
    slots[slot] = EMPTY;
    for (let i = (slot - 1) & mask; slots[i] === TOMBSTONE; i = (i - 1) & mask) {
      slots[i] = EMPTY;
      this.tombstones--;
    }
  }

  /** True when frame `mfn` is indexed. */
  contains(mfn: Mfn): boolean {
    return mfn >= 0 && mfn < this.frames && ((this.indexed[mfn >>> 5]! >>> (mfn & 31)) & 1) !== 0;
  }

  /** Bytes of the typed arrays: 4 bytes a slot, and 4 bytes (key) and 1 bit (indexed) a frame. */
  metadataBytes(): number {
    return this.slots.byteLength + this.keys.byteLength + this.indexed.byteLength;
  }

  /**
   * Counters: `lookups` = `hits` + `misses`; `collisions` counts hash matches whose full compare
   * failed; `rebuilds` counts table rebuilds (growth or tombstone purge).
   */
  stats(): Readonly<Record<string, number>> {
    return {
      lookups: this.lookups,
      hits: this.hits,
      misses: this.misses,
      collisions: this.collisions,
      inserts: this.inserts,
      removes: this.removes,
      size: this.live,
      capacity: this.slots.length,
      tombstones: this.tombstones,
      rebuilds: this.rebuilds,
    };
  }

  /**
   * Checks that every frame in the table is marked indexed, sits in one slot only and is reachable
   * from its home slot, that its content still hashes to its key (it did not change under the
   * index), that it is not free, that every frame marked indexed is in the table, and that the
   * zero frame is indexed. And, since this strategy indexes every frame it is offered, that every
   * shared frame is indexed: every one mapped by a domain of the host's p2m (under
   * PartitionedDedup a group's host shows its own domains only, so each group answers for its
   * own frames). The hypervisor's audit requires no frame to be indexed: that is this
   * strategy's promise, not the interface's. With `depth` `'sample'`, the content of only one
   * indexed frame in {@link SAMPLE_STRIDE} is re-hashed against its key (a re-hash of every
   * frame was half the end-of-run audit of large runs); everything else is checked always.
   */
  audit(depth: AuditDepth = 'full'): string[] {
    const host = this.host;
    if (host === undefined) return ['inline dedup: not attached'];
    const problems: string[] = [];
    const { memory, frames } = host;
    const keys = this.keys;
    const slots = this.slots;
    const mask = this.mask;
    const seen = new Uint8Array(this.frames);
    let live = 0;
    let tombstones = 0;
    for (let i = 0; i < slots.length; i++) {
      const v = slots[i]!;
      if (v === EMPTY) continue;
      if (v === TOMBSTONE) {
        tombstones++;
        continue;
      }
      live++;
      const mfn = v as Mfn;
      if (v >= this.frames) {
        problems.push(`inline dedup: slot ${i} holds mfn ${mfn} outside machine memory`);
        continue;
      }
      if (!this.contains(mfn)) problems.push(`inline dedup: mfn ${mfn} sits in slot ${i} but is not marked indexed`);
      if (seen[mfn]! > 0) problems.push(`inline dedup: mfn ${mfn} sits in two slots`);
      seen[mfn] = 1;
      const hash = depth === 'full' || live % SAMPLE_STRIDE === 0 ? memory.hashFrame(mfn) >>> 0 : keys[mfn];
      if (keys[mfn] !== hash) {
        problems.push(
          `inline dedup: mfn ${mfn} indexed under hash ${keys[mfn]} but its content hashes to ${hash} (changed while indexed)`,
        );
      }
      if (frames.isFree(mfn)) problems.push(`inline dedup: mfn ${mfn} is indexed but free`);
      for (let j = homeSlot(keys[mfn], mask); j !== i; j = (j + 1) & mask) {
        if (slots[j] === EMPTY) {
          problems.push(`inline dedup: mfn ${mfn} in slot ${i} unreachable from its home slot`);
          break;
        }
      }
    }
    for (let m = 0; m < this.frames; m++) {
      const mfn = m as Mfn;
      if (this.contains(mfn)) {
        if (seen[m] === 0) problems.push(`inline dedup: mfn ${m} is marked indexed but in no slot`);
      } else if (mfn !== this.zeroMfn && !frames.isFree(mfn) && (frames.flags(mfn) & FrameFlags.shared) !== 0 && this.mappedInView(host, mfn)) {
        problems.push(`inline dedup: shared mfn ${m} is not indexed, but every frame offered is`);
      }
    }
    if (live !== this.live) problems.push(`inline dedup: ${live} frames in the table but size says ${this.live}`);
    if (tombstones !== this.tombstones) {
      problems.push(`inline dedup: ${tombstones} tombstones in the table but the count says ${this.tombstones}`);
    }
    if (!this.contains(this.zeroMfn)) problems.push(`inline dedup: zero frame mfn ${this.zeroMfn} is not indexed`);
    if (slots.length - live - tombstones < 1) problems.push('inline dedup: no EMPTY slot left, lookups would not end');
    return problems;
  }

  /** True when a domain of `host.p2m` maps `mfn` (a trust group's host shows its own domains only). */
  private mappedInView(host: DedupHost, mfn: Mfn): boolean {
    const p2m = host.p2m;
    let mapped = false;
    p2m.rmap.forEach(mfn, (dom) => {
      if (p2m.table(dom) !== undefined) mapped = true;
    });
    return mapped;
  }

  private limitFor(capacity: number): number {
    // At least one slot stays EMPTY so that every probe sequence ends.
    return Math.min(capacity - 1, Math.max(1, Math.floor(capacity * this.maxLoadFactor)));
  }

  /**
   * Rebuilds the table without tombstones: at the same capacity when live entries fill at most
   * half of the limit (churn left mostly tombstones), else at double capacity. Doubling every
   * time would grow the table without bound under insert/remove churn at a steady size. At the
   * largest capacity it stays, and the table is full only when its entries reach the limit.
   */
  private rebuild(): void {
    const old = this.slots;
    let capacity = old.length;
    if (this.live + 1 > this.limitFor(capacity) / 2) {
      // At the largest capacity the rebuild only drops tombstones, while the entries fit.
      if (capacity < MAX_CAPACITY) capacity *= 2;
      else invariant(this.live + 1 <= this.limitFor(capacity), `inline dedup: table full at ${capacity} slots`);
    }
    const keys = this.keys;
    const slots = new Int32Array(capacity).fill(EMPTY);
    const mask = capacity - 1;
    for (let s = 0; s < old.length; s++) {
      const mfn = old[s]!;
      if (mfn < 0) continue;
      let i = homeSlot(keys[mfn]!, mask);
      while (slots[i] !== EMPTY) i = (i + 1) & mask;
      slots[i] = mfn;
    }
    this.slots = slots;
    this.mask = mask;
    this.limit = this.limitFor(capacity);
    this.tombstones = 0;
    this.rebuilds++;
  }
}
