// @ts-check
/**
 * hot-inline: an inline de-duplication strategy whose index holds at most `capacity` frames and
 * keeps the hot ones: when it is full, a new offer evicts the least recently used entry (exact
 * LRU: an entry is used when it is indexed and each time a lookup hits it). The zero frame is
 * indexed at attach and pinned (never evicted); it counts as one of the `capacity` entries.
 *
 * Everything lives in typed arrays sized once at attach for `min(capacity, frames)` entries, so
 * the metadata is bounded by `capacity` whatever the size of the machine: per entry its frame, its
 * hash, two chain links (one chain by content hash for `lookup`, one by frame number for
 * `contains` and `remove`) and two LRU links, 24 bytes, plus two bucket arrays of twice the
 * entries rounded up to a power of two, 4 bytes a bucket: about 40 bytes an entry. lookup,
 * insert, remove and contains are O(1) on average. No object per page, no allocation after attach.
 *
 * A plain ES module: a scenario names this file (`"dedup": { "strategy": "./index.mjs",
 * "capacity": 4096 }`) and the simulator imports it as it is.
 */
import { definePlugin, INVALID_MFN, InvariantError, PluginError } from '@pagevisor/types';

/** @typedef {import('@pagevisor/types').DedupHost} DedupHost */
/** @typedef {import('@pagevisor/types').DedupIndex} DedupIndex */
/** @typedef {import('@pagevisor/types').InsertReason} InsertReason */
/** @typedef {import('@pagevisor/types').Mfn} Mfn */
/** @typedef {{ readonly capacity: number }} HotInlineOptions */

/** Entries held when the options do not say: 4096 frames, 16 MiB of distinct content. */
export const DEFAULT_CAPACITY = 4096;
/** Largest `capacity` accepted (what an Int32Array index reaches). */
export const MAX_CAPACITY = 0x7fffffff;
const KNOWN_OPTIONS = ['capacity'];
/** No entry / end of a list. */
const NONE = -1;

/**
 * Checks the plugin's options: only `capacity`, a positive integer (default
 * {@link DEFAULT_CAPACITY}). Throws a PluginError naming every wrong field.
 * @param {Readonly<Record<string, unknown>>} options
 * @returns {HotInlineOptions}
 */
export function checkOptions(options) {
  /** @type {{ path: string, message: string }[]} */
  const issues = [];
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.includes(key)) issues.push({ path: key, message: `unknown option; known: ${KNOWN_OPTIONS.join(', ')}` });
  }
  const capacity = options['capacity'] === undefined ? DEFAULT_CAPACITY : options['capacity'];
  if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
    issues.push({ path: 'capacity', message: `must be a positive integer (at most ${MAX_CAPACITY}), got ${JSON.stringify(capacity)}` });
  }
  if (issues.length > 0) throw new PluginError('hot-inline', 'options refused', issues);
  return { capacity: /** @type {number} */ (capacity) };
}

/**
 * The strategy. `new HotInlineDedup({ capacity })` can also be passed to the hypervisor directly.
 * @implements {DedupIndex}
 */
export class HotInlineDedup {
  /** @readonly */ name = 'hot-inline';
  /** Whole-page writes go through `lookup`, and frames are offered to `insert`. @readonly */ inline = true;
  /** Populated pages map the shared zero frame. @readonly */ populateZero = true;

  /** @param {Partial<HotInlineOptions>} [options] */
  constructor(options = {}) {
    /** Most entries held, the zero frame included. @readonly */
    this.capacity = checkOptions(options).capacity;
    /** @type {DedupHost | undefined} */
    this.host = undefined;
    this.zeroMfn = NONE;
    this.frames = 0;
    this.count = 0;
    // Sized at attach, when the machine's frames are known.
    this.entryMfn = new Int32Array(0);
    this.entryHash = new Uint32Array(0);
    /** Next entry in the same content-hash bucket, NONE at the end; for free entries, the next free one. */
    this.chainNext = new Int32Array(0);
    /** Next entry in the same frame-number bucket. */
    this.mfnNext = new Int32Array(0);
    /** LRU links: towards the most recent (`newer`) and the least recent (`older`). */
    this.newer = new Int32Array(0);
    this.older = new Int32Array(0);
    /** First entry of each content-hash bucket and of each frame-number bucket. */
    this.buckets = new Int32Array(0);
    this.mfnBuckets = new Int32Array(0);
    this.bucketMask = 0;
    this.bucketShift = 32;
    this.freeEntry = NONE;
    /** Most and least recently used entries (the zero frame's entry is never on this list). */
    this.mru = NONE;
    this.lru = NONE;
    this.counters = { lookups: 0, hits: 0, collisions: 0, inserts: 0, insertsShared: 0, declined: 0, evictions: 0, removes: 0 };
  }

  /** Frames indexed now, the zero frame included (never more than `capacity`). */
  get size() {
    return this.count;
  }

  /**
   * Sizes the arrays for `host.memory.frames` frames and indexes the zero frame (pinned), so that a
   * whole-page write of zeros maps it. Called once.
   * @param {DedupHost} host
   */
  attach(host) {
    if (this.host !== undefined) throw new InvariantError('hot-inline dedup: attach called twice');
    const frames = host.memory.frames;
    const entries = Math.min(this.capacity, frames);
    let buckets = 2;
    while (buckets < 2 * entries) buckets *= 2;
    this.host = host;
    this.frames = frames;
    this.zeroMfn = host.zeroMfn;
    this.entryMfn = new Int32Array(entries).fill(NONE);
    this.entryHash = new Uint32Array(entries);
    this.chainNext = new Int32Array(entries);
    this.mfnNext = new Int32Array(entries).fill(NONE);
    this.newer = new Int32Array(entries).fill(NONE);
    this.older = new Int32Array(entries).fill(NONE);
    this.buckets = new Int32Array(buckets).fill(NONE);
    this.mfnBuckets = new Int32Array(buckets).fill(NONE);
    this.bucketMask = buckets - 1;
    this.bucketShift = 32 - Math.log2(buckets);
    // Every entry starts on the free list, entry 0 first.
    for (let e = 0; e < entries; e++) this.chainNext[e] = e + 1 < entries ? e + 1 : NONE;
    this.freeEntry = 0;
    this.#add(host.zeroMfn, host.memory.hashFrame(host.zeroMfn), false);
  }

  /**
   * A frame holding exactly `page`, or INVALID_MFN. Every hash match is confirmed by a full
   * compare (32-bit hashes collide); a hit makes the entry the most recently used.
   * @param {Uint8Array} page
   * @param {number} hash
   * @returns {Mfn}
   */
  lookup(page, hash) {
    const memory = this.#attached('lookup').memory;
    this.counters.lookups++;
    const h = hash >>> 0;
    for (let e = this.buckets[h & this.bucketMask]; e !== NONE; e = this.chainNext[e]) {
      if (this.entryHash[e] !== h) continue;
      const mfn = /** @type {Mfn} */ (this.entryMfn[e]);
      if (memory.frameEquals(mfn, page)) {
        this.counters.hits++;
        if (mfn !== this.zeroMfn) this.#touch(e);
        return mfn;
      }
      this.counters.collisions++;
    }
    return INVALID_MFN;
  }

  /**
   * An offer: indexes `mfn` as the most recently used entry, evicting the least recently used one
   * when the index is full; declined (nothing held) when the index can hold nothing but the zero
   * frame (`capacity` 1). `reason` does not matter here: a `'shared'` frame and a write's `'miss'`
   * both start as the most recent.
   * @param {Mfn} mfn
   * @param {number} hash
   * @param {InsertReason} reason
   */
  insert(mfn, hash, reason) {
    this.#attached('insert');
    this.#checkMfn('insert', mfn);
    if (this.#entryOf(mfn) !== NONE) throw new InvariantError(`hot-inline dedup: insert of mfn ${mfn}, indexed already`);
    if (reason === 'shared') this.counters.insertsShared++;
    if (this.freeEntry === NONE) {
      if (this.lru === NONE) {
        this.counters.declined++;
        return;
      }
      this.#drop(this.lru);
      this.counters.evictions++;
    }
    this.#add(mfn, hash, true);
    this.counters.inserts++;
  }

  /**
   * Forgets `mfn` (its content is about to change, or it is being freed). Called for frames never
   * indexed, declined or evicted too: nothing to do then. The zero frame stays.
   * @param {Mfn} mfn
   */
  remove(mfn) {
    if (this.host === undefined) return;
    this.#checkMfn('remove', mfn);
    if (mfn === this.zeroMfn) return;
    const e = this.#entryOf(mfn);
    if (e === NONE) return;
    this.#drop(e);
    this.counters.removes++;
  }

  /** @param {Mfn} mfn */
  contains(mfn) {
    if (this.host === undefined) return false;
    this.#checkMfn('contains', mfn);
    return this.#entryOf(mfn) !== NONE;
  }

  /** Bytes of the typed arrays held. */
  metadataBytes() {
    return (
      this.entryMfn.byteLength +
      this.entryHash.byteLength +
      this.chainNext.byteLength +
      this.mfnNext.byteLength +
      this.newer.byteLength +
      this.older.byteLength +
      this.buckets.byteLength +
      this.mfnBuckets.byteLength
    );
  }

  /** Counters: lookups, hits, misses, collisions, inserts (indexed), insertsShared (offers), declined, evictions, removes, size, capacity. */
  stats() {
    const { lookups, hits } = this.counters;
    return { ...this.counters, misses: lookups - hits, size: this.count, capacity: this.capacity };
  }

  /**
   * What this strategy promises of itself: at most `capacity` entries; every entry's frame is
   * live and still holds the content it was indexed under (`host.memory.hashFrame` equals the
   * hash kept); chains, LRU list, free list and the per-frame map agree; the zero frame is indexed.
   * It does not promise that any other frame (shared or not) is indexed: it keeps only hot ones.
   * @returns {string[]}
   */
  audit() {
    const host = this.host;
    if (host === undefined) return ['hot-inline dedup: not attached'];
    /** @type {string[]} */
    const problems = [];
    const entries = this.entryMfn.length;
    if (this.count > this.capacity) problems.push(`${this.count} entries held, capacity ${this.capacity}`);
    const seen = new Uint8Array(entries);
    let chained = 0;
    for (let b = 0; b < this.buckets.length; b++) {
      for (let e = this.buckets[b], n = 0; e !== NONE; e = this.chainNext[e], n++) {
        if (n > entries || seen[e] === 1) {
          problems.push(`bucket ${b}: its chain loops or shares entry ${e}`);
          break;
        }
        seen[e] = 1;
        chained++;
        const mfn = /** @type {Mfn} */ (this.entryMfn[e]);
        if (mfn < 0 || mfn >= this.frames) {
          problems.push(`entry ${e} in bucket ${b} holds no frame (${mfn})`);
          continue;
        }
        if ((this.entryHash[e] & this.bucketMask) !== b) problems.push(`mfn ${mfn}: in bucket ${b}, its hash belongs in ${this.entryHash[e] & this.bucketMask}`);
        if (this.#entryOf(mfn) !== e) problems.push(`mfn ${mfn}: held by entry ${e}, but its frame-number chain finds ${this.#entryOf(mfn)}`);
        if (host.frames.isFree(mfn)) problems.push(`mfn ${mfn} is indexed but free`);
        else if (host.memory.hashFrame(mfn) >>> 0 !== this.entryHash[e]) problems.push(`mfn ${mfn} changed while indexed (hash ${host.memory.hashFrame(mfn) >>> 0}, indexed under ${this.entryHash[e]})`);
      }
    }
    if (chained !== this.count) problems.push(`${chained} entries in the hash chains, ${this.count} counted`);
    let mapped = 0;
    for (let b = 0; b < this.mfnBuckets.length; b++) {
      for (let e = this.mfnBuckets[b], n = 0; e !== NONE; e = this.mfnNext[e], n++) {
        if (n > entries) {
          problems.push(`frame-number bucket ${b}: its chain loops`);
          break;
        }
        if (seen[e] !== 1) problems.push(`entry ${e} is in frame-number bucket ${b} but in no content chain`);
        mapped++;
      }
    }
    if (mapped !== this.count) problems.push(`${mapped} entries in the frame-number chains, ${this.count} counted`);
    let listed = 0;
    for (let e = this.mru, prev = NONE; e !== NONE; prev = e, e = this.older[e]) {
      if (++listed > entries) {
        problems.push('the LRU list loops');
        break;
      }
      if (this.newer[e] !== prev) problems.push(`entry ${e}: broken LRU link`);
      if (seen[e] !== 1) problems.push(`entry ${e} is on the LRU list but in no chain`);
      if (this.entryMfn[e] === this.zeroMfn) problems.push('the zero frame is on the LRU list (it is pinned)');
      if (this.older[e] === NONE && this.lru !== e) problems.push(`the LRU list ends at entry ${e}, lru says ${this.lru}`);
    }
    const zeroHeld = this.zeroMfn >= 0 && this.zeroMfn < this.frames && this.#entryOf(this.zeroMfn) !== NONE;
    if (!zeroHeld) problems.push(`the zero frame mfn ${this.zeroMfn} is not indexed`);
    if (listed !== this.count - (zeroHeld ? 1 : 0)) problems.push(`${listed} entries on the LRU list, ${this.count} held`);
    let free = 0;
    for (let e = this.freeEntry; e !== NONE && free <= entries; e = this.chainNext[e]) free++;
    if (free + this.count !== entries) problems.push(`${free} free entries and ${this.count} held, of ${entries}`);
    return problems.map((p) => `hot-inline dedup: ${p}`);
  }

  /**
   * Takes a free entry for `mfn` (there is one), puts it at the head of its bucket and, unless
   * pinned, at the most recent end of the LRU list.
   * @param {number} mfn
   * @param {number} hash
   * @param {boolean} evictable
   */
  #add(mfn, hash, evictable) {
    const e = this.freeEntry;
    this.freeEntry = this.chainNext[e];
    const h = hash >>> 0;
    const b = h & this.bucketMask;
    this.entryMfn[e] = mfn;
    this.entryHash[e] = h;
    this.chainNext[e] = this.buckets[b];
    this.buckets[b] = e;
    const mb = this.#mfnBucket(mfn);
    this.mfnNext[e] = this.mfnBuckets[mb];
    this.mfnBuckets[mb] = e;
    this.count++;
    if (evictable) this.#pushMru(e);
  }

  /** Unlinks entry `e` from its chain and the LRU list and frees it. @param {number} e */
  #drop(e) {
    const b = this.entryHash[e] & this.bucketMask;
    if (this.buckets[b] === e) this.buckets[b] = this.chainNext[e];
    else {
      let p = this.buckets[b];
      while (this.chainNext[p] !== e) p = this.chainNext[p];
      this.chainNext[p] = this.chainNext[e];
    }
    const mb = this.#mfnBucket(this.entryMfn[e]);
    if (this.mfnBuckets[mb] === e) this.mfnBuckets[mb] = this.mfnNext[e];
    else {
      let p = this.mfnBuckets[mb];
      while (this.mfnNext[p] !== e) p = this.mfnNext[p];
      this.mfnNext[p] = this.mfnNext[e];
    }
    this.mfnNext[e] = NONE;
    this.#unlinkLru(e);
    this.entryMfn[e] = NONE;
    this.chainNext[e] = this.freeEntry;
    this.freeEntry = e;
    this.count--;
  }

  /** The entry holding frame `mfn`, NONE when it is not indexed. @param {number} mfn */
  #entryOf(mfn) {
    let e = this.mfnBuckets[this.#mfnBucket(mfn)];
    while (e !== NONE && this.entryMfn[e] !== mfn) e = this.mfnNext[e];
    return e;
  }

  /** Bucket of frame number `mfn` (Fibonacci hashing: consecutive frames spread out). @param {number} mfn */
  #mfnBucket(mfn) {
    return Math.imul(mfn, 0x9e3779b1) >>> this.bucketShift;
  }

  /** Makes entry `e` the most recently used. @param {number} e */
  #touch(e) {
    if (this.mru === e) return;
    this.#unlinkLru(e);
    this.#pushMru(e);
  }

  /** @param {number} e */
  #pushMru(e) {
    this.newer[e] = NONE;
    this.older[e] = this.mru;
    if (this.mru !== NONE) this.newer[this.mru] = e;
    else this.lru = e;
    this.mru = e;
  }

  /** @param {number} e */
  #unlinkLru(e) {
    const newer = this.newer[e];
    const older = this.older[e];
    if (newer !== NONE) this.older[newer] = older;
    else if (this.mru === e) this.mru = older;
    if (older !== NONE) this.newer[older] = newer;
    else if (this.lru === e) this.lru = newer;
    this.newer[e] = NONE;
    this.older[e] = NONE;
  }

  /** @param {string} op @returns {DedupHost} */
  #attached(op) {
    if (this.host === undefined) throw new InvariantError(`hot-inline dedup: ${op} before attach`);
    return this.host;
  }

  /** @param {string} op @param {number} mfn */
  #checkMfn(op, mfn) {
    if (!(Number.isInteger(mfn) && mfn >= 0 && mfn < this.frames)) throw new InvariantError(`hot-inline dedup: ${op} of mfn ${mfn}, outside the ${this.frames} frames`);
  }
}

/** The plugin: `"dedup": { "strategy": "./index.mjs", "capacity": 4096 }`. */
export default definePlugin({
  kind: 'dedup',
  name: 'hot-inline',
  options: checkOptions,
  create: (options) => new HotInlineDedup(options),
});
