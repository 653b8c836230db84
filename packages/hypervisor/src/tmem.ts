import { HypervisorError, invariant, isRealDomId, PAGE_SIZE, type DomId, type SwapSlot } from '@pagevisor/types';
import type { TmemOid } from '@pagevisor/hypercall-abi';
import { MemorySwapDevice, SharedSwap } from '@pagevisor/swap';

/** Options of a {@link Tmem}. */
export interface TmemOptions {
  /**
   * Capacity in 4 KiB slots of the store behind every pool (after de-duplication and
   * compression): at most this many distinct page contents are held at once, across all domains.
   */
  readonly pages: number;
  /** Compression inside the pools (default 'none'); it lowers `bytesStored`, not the slot count. */
  readonly compression?: 'none' | 'lz4' | 'deflate';
  /**
   * 32-bit hash of a page's PAGE_SIZE bytes, for de-duplication and per-slot checksums (default
   * a built-in FNV-1a; the hypervisor passes the machine's xxhash).
   */
  readonly hashPage?: (page: Uint8Array) => number;
}

export type { TmemOid };

/** Counters and sizes of a {@link Tmem}. */
export interface TmemStats {
  /** Pools that exist, over all domains. */
  readonly pools: number;
  /** Pages held in ephemeral pools. */
  readonly ephemeralPages: number;
  /** Pages held in persistent pools. */
  readonly persistentPages: number;
  /** putPage calls that returned (stored or not); calls that threw are not counted. */
  readonly puts: number;
  /** putPage calls that returned false (ephemeral pool, no room). */
  readonly putsRefused: number;
  /** getPage calls that returned. */
  readonly gets: number;
  /** getPage calls that found the page. */
  readonly getHits: number;
  /** Ephemeral pages dropped to make room for a put. */
  readonly evictions: number;
  /** Pages dropped by flushPage and flushObject. */
  readonly flushes: number;
  /** Store slots in use (distinct page contents held). */
  readonly slotsUsed: number;
  /** Bytes the store's slots take (less than slotsUsed × 4 KiB with compression). */
  readonly bytesStored: number;
  /** Puts whose content was already held, so they took no new slot. */
  readonly dedupHits: number;
}

/** Pools a domain may hold at once (Xen's MAX_POOLS_PER_DOMAIN). */
export const TMEM_MAX_POOLS_PER_DOMAIN = 16;

const NONE = -1;
const U32_MAX = 0xffffffff;
const INITIAL_ENTRIES = 64;

interface Pool {
  readonly handle: number;
  readonly dom: DomId;
  readonly id: number;
  readonly persistent: boolean;
  /** Object key (see oidKey) → page index → entry. */
  readonly objects: Map<string, Map<number, number>>;
  pages: number;
}

/**
 * Transcendent memory in the manner of Xen's tmem: each domain creates up to 16 private pools and
 * puts pages into them under a key (object id, page index). Ephemeral pools (cleancache) may lose
 * a page whenever the store needs room, and a get removes the page (private pools are exclusive);
 * persistent pools (frontswap) keep every page until it is flushed, and refuse a put with ENOSPC
 * when there is no room.
 *
 * Every pool of every domain shares one {@link SharedSwap} over memory of `pages` slots: identical
 * pages share a slot (confirmed by compare), every slot is checksummed, compression is optional.
 * Pages are entries in parallel typed arrays; ephemeral entries form one LRU list across all
 * domains, from which the oldest is evicted when a put finds the store full.
 *
 * Capacity is exactly `pages` slots (the device has as many blocks), so whether eviction can make
 * room is known before anything is evicted: a put that fails changes nothing, except that a
 * refused ephemeral put drops the page it would have replaced (a later get must not return stale
 * content, as in Xen's failed duplicate put).
 */
export class Tmem {
  /** Slots of the store. */
  readonly pages: number;
  private readonly swap: SharedSwap;
  private readonly hashPage: (page: Uint8Array) => number;
  /** Ephemeral references to each slot; a slot whose references are all ephemeral can be freed by eviction. */
  private readonly slotEphemeralRefs: Uint32Array;
  /** Slots that evicting ephemeral pages would free. */
  private freeableSlots = 0;

  private readonly pools: (Pool | undefined)[] = [];
  private readonly freePoolHandles: number[] = [];
  /** Domain → pool id → pool handle (NONE when free). */
  private readonly domains = new Map<DomId, Int32Array>();

  private entrySlot: Int32Array = new Int32Array(INITIAL_ENTRIES);
  private entryPool: Int32Array = new Int32Array(INITIAL_ENTRIES);
  private entryIndex: Uint32Array = new Uint32Array(INITIAL_ENTRIES);
  private entryPrev: Int32Array = new Int32Array(INITIAL_ENTRIES);
  private entryNext: Int32Array = new Int32Array(INITIAL_ENTRIES);
  /** Object key of each entry (shared by all pages of an object). */
  private entryOid: (string | undefined)[] = [];
  private entryFree: Int32Array = new Int32Array(INITIAL_ENTRIES);
  private entryFreeTop = 0;
  private entriesAllocated = 0;
  /** Oldest and newest ephemeral entries. */
  private lruHead = NONE;
  private lruTail = NONE;

  private readonly scratch = new Uint8Array(PAGE_SIZE);

  private ephemeralPages = 0;
  private persistentPages = 0;
  private puts = 0;
  private putsRefused = 0;
  private gets = 0;
  private getHits = 0;
  private evictions = 0;
  private flushes = 0;
  private dedupHits = 0;

  constructor(options: TmemOptions) {
    const { pages } = options;
    if (!Number.isInteger(pages) || pages < 1 || pages > 0x1000000) {
      throw new HypervisorError('EINVAL', 'tmem_create', `pages must be an integer in 1..${0x1000000}, not ${pages}`);
    }
    const compression = options.compression ?? 'none';
    if (compression !== 'none' && compression !== 'lz4' && compression !== 'deflate') {
      throw new HypervisorError('EINVAL', 'tmem_create', `unknown compression ${String(compression)}`);
    }
    if (options.hashPage !== undefined && typeof options.hashPage !== 'function') {
      throw new HypervisorError('EINVAL', 'tmem_create', 'hashPage must be a function');
    }
    this.pages = pages;
    this.hashPage = options.hashPage ?? fnv1a;
    this.swap = new SharedSwap({
      device: new MemorySwapDevice({ slots: pages }),
      hashPage: this.hashPage,
      compression,
      name: 'tmem',
    });
    this.slotEphemeralRefs = new Uint32Array(pages);
  }

  /** Creates a pool for `dom` and returns its id: the lowest free one of 0..15. ENOSPC when the domain has 16. */
  newPool(dom: DomId, persistent: boolean): number {
    checkDom('tmem_new_pool', dom);
    if (typeof persistent !== 'boolean') {
      throw new HypervisorError('EINVAL', 'tmem_new_pool', `persistent must be a boolean, not ${String(persistent)}`);
    }
    const table = this.domains.get(dom);
    const id = table === undefined ? 0 : table.indexOf(NONE);
    if (id < 0) {
      throw new HypervisorError('ENOSPC', 'tmem_new_pool', `domain ${dom} has ${TMEM_MAX_POOLS_PER_DOMAIN} pools already`);
    }
    const handle = this.freePoolHandles.pop() ?? this.pools.length;
    this.pools[handle] = { handle, dom, id, persistent, objects: new Map(), pages: 0 };
    if (table === undefined) {
      const fresh = new Int32Array(TMEM_MAX_POOLS_PER_DOMAIN).fill(NONE);
      fresh[id] = handle;
      this.domains.set(dom, fresh);
    } else {
      table[id] = handle;
    }
    return id;
  }

  /** Destroys pool `pool` of `dom`, dropping every page in it. ENOENT when the domain has no such pool. */
  destroyPool(dom: DomId, pool: number): void {
    this.dropPool(this.lookupPool('tmem_destroy_pool', dom, pool));
  }

  /**
   * Puts the PAGE_SIZE bytes of `page` at (oid, index) of `dom`'s pool, replacing a page already
   * there. When the store is full, the least recently used ephemeral pages (of any domain) are
   * evicted to make room. Returns true when stored; false when an ephemeral pool has no room even
   * after evicting (the page that was at the key, if any, is dropped). A persistent pool without
   * room throws ENOSPC and changes nothing.
   */
  putPage(dom: DomId, pool: number, oid: TmemOid, index: number, page: Uint8Array): boolean {
    const op = 'tmem_put_page';
    const p = this.lookupPool(op, dom, pool);
    const key = oidKey(op, oid);
    checkIndex(op, index);
    checkPage(op, 'page', page);
    const ephemeral = !p.persistent;
    let object = p.objects.get(key);
    let old = object?.get(index) ?? NONE;

    let slot = this.tryStore(page);
    if (slot < 0 && old >= 0 && this.swap.refcount(this.slotOf(old)) === 1) {
      // The old page alone holds its slot: replacing it in place needs no extra room.
      slot = this.replaceInPlace(old, page, ephemeral);
      if (slot >= 0) {
        if (ephemeral) {
          this.lruUnlink(old);
          this.lruAppend(old);
        }
        this.puts++;
        return true;
      }
    }
    let released = false;
    const oldRefs = old >= 0 ? this.swap.refcount(this.slotOf(old)) : 0;
    if (slot < 0 && !ephemeral && oldRefs > 1 && this.slotEphemeralRefs[this.slotOf(old)] === oldRefs - 1) {
      // The persistent page being replaced shares its slot with ephemeral pages only: once it
      // lets go, evicting them frees the slot, so the put fits. Let go first; the loop below
      // then stores the page (a freeable slot exists).
      this.releaseRef(this.slotOf(old), false);
      released = true;
    }
    if (slot < 0 && this.freeableSlots > 0) {
      // Evicting every ephemeral page would free a slot (and a freed slot is room: the device has
      // a block per slot), so this loop ends with the page stored; without one nothing is evicted.
      while (slot < 0 && this.lruHead !== NONE) {
        const victim = this.lruHead;
        if (victim === old) old = NONE;
        if (this.dropEntry(victim)) slot = this.tryStore(page);
        this.evictions++;
      }
      invariant(slot >= 0, 'tmem: evicting every ephemeral page freed no slot');
      object = p.objects.get(key);
    }
    if (slot < 0) {
      if (!ephemeral) {
        throw new HypervisorError('ENOSPC', op, `all ${this.pages} tmem slots hold persistent pages`);
      }
      if (old >= 0) this.dropEntry(old);
      this.puts++;
      this.putsRefused++;
      return false;
    }

    if (this.swap.refcount(slot as SwapSlot) > 1) this.dedupHits++;
    this.noteRefAdded(slot, ephemeral);
    if (old >= 0) {
      const previous = this.slotOf(old);
      this.entrySlot[old] = slot;
      if (!released) this.releaseRef(previous, ephemeral);
      if (ephemeral) {
        this.lruUnlink(old);
        this.lruAppend(old);
      }
    } else {
      const e = this.allocEntry();
      this.entrySlot[e] = slot;
      this.entryPool[e] = p.handle;
      this.entryIndex[e] = index;
      if (object === undefined) {
        object = new Map();
        p.objects.set(key, object);
      }
      this.entryOid[e] = key;
      object.set(index, e);
      p.pages++;
      if (ephemeral) {
        this.ephemeralPages++;
        this.lruAppend(e);
      } else {
        this.persistentPages++;
      }
    }
    this.puts++;
    return true;
  }

  /**
   * Copies the page at (oid, index) of `dom`'s pool into `out` (PAGE_SIZE bytes) and returns
   * true, or returns false when no page is there (`out` untouched). A get from an ephemeral pool
   * removes the page.
   */
  getPage(dom: DomId, pool: number, oid: TmemOid, index: number, out: Uint8Array): boolean {
    const op = 'tmem_get_page';
    const p = this.lookupPool(op, dom, pool);
    const key = oidKey(op, oid);
    checkIndex(op, index);
    checkPage(op, 'out', out);
    const e = p.objects.get(key)?.get(index) ?? NONE;
    if (e < 0) {
      this.gets++;
      return false;
    }
    try {
      this.swap.load(this.slotOf(e), out);
    } catch (err) {
      if (p.persistent || !(err instanceof HypervisorError)) throw rethrow(op, err);
      // An unreadable ephemeral page is a page lost, which an ephemeral pool may do at any time.
      this.dropEntry(e);
      this.gets++;
      return false;
    }
    if (!p.persistent) this.dropEntry(e);
    this.gets++;
    this.getHits++;
    return true;
  }

  /** Drops the page at (oid, index) of `dom`'s pool; true when a page was there. */
  flushPage(dom: DomId, pool: number, oid: TmemOid, index: number): boolean {
    const op = 'tmem_flush_page';
    const p = this.lookupPool(op, dom, pool);
    const key = oidKey(op, oid);
    checkIndex(op, index);
    const e = p.objects.get(key)?.get(index) ?? NONE;
    if (e < 0) return false;
    this.dropEntry(e);
    this.flushes++;
    return true;
  }

  /** Drops every page of object `oid` of `dom`'s pool; returns how many. */
  flushObject(dom: DomId, pool: number, oid: TmemOid): number {
    const op = 'tmem_flush_object';
    const p = this.lookupPool(op, dom, pool);
    const object = p.objects.get(oidKey(op, oid));
    if (object === undefined) return 0;
    const entries = [...object.values()];
    for (const e of entries) this.dropEntry(e);
    this.flushes += entries.length;
    return entries.length;
  }

  /** Destroys every pool of `dom` (a no-op when it has none). */
  domainDestroyed(dom: DomId): void {
    const table = this.domains.get(dom);
    if (table === undefined) return;
    for (const handle of table) if (handle !== NONE) this.dropPool(this.pools[handle]!);
  }

  /** Counters and sizes. */
  stats(): TmemStats {
    const swap = this.swap.stats();
    let pools = 0;
    for (const p of this.pools) if (p !== undefined) pools++;
    return {
      pools,
      ephemeralPages: this.ephemeralPages,
      persistentPages: this.persistentPages,
      puts: this.puts,
      putsRefused: this.putsRefused,
      gets: this.gets,
      getHits: this.getHits,
      evictions: this.evictions,
      flushes: this.flushes,
      slotsUsed: swap.swapSlotsUsed,
      bytesStored: swap.diskBytesUsed,
      dedupHits: this.dedupHits,
    };
  }

  /** Pages `dom` has in its pools. */
  domainPages(dom: DomId): number {
    const table = this.domains.get(dom);
    if (table === undefined) return 0;
    let pages = 0;
    for (const handle of table) if (handle !== NONE) pages += this.pools[handle]!.pages;
    return pages;
  }

  /** Pool ids `dom` has, ascending (for tools and tests). */
  domainPools(dom: DomId): number[] {
    const table = this.domains.get(dom);
    const ids: number[] = [];
    if (table !== undefined) for (let id = 0; id < table.length; id++) if (table[id] !== NONE) ids.push(id);
    return ids;
  }

  /** Broken invariants, in words (empty when sound). Walks every page: not for the hot path. */
  audit(): string[] {
    const problems: string[] = [];
    for (const s of this.swap.audit()) problems.push(`store: ${s}`);
    const refs = new Uint32Array(this.pages);
    const ephRefs = new Uint32Array(this.pages);
    const seen = new Uint8Array(this.entriesAllocated);
    let ephemeral = 0;
    let persistent = 0;
    let pools = 0;
    for (const p of this.pools) {
      if (p === undefined) continue;
      pools++;
      if (this.domains.get(p.dom)?.[p.id] !== p.handle) problems.push(`pool ${p.id} of domain ${p.dom} is not in its domain's table`);
      let pages = 0;
      for (const [key, object] of p.objects) {
        if (object.size === 0) problems.push(`pool ${p.id} of domain ${p.dom} keeps empty object ${key}`);
        for (const [index, e] of object) {
          pages++;
          if (e < 0 || e >= this.entriesAllocated) {
            problems.push(`pool ${p.id} of domain ${p.dom}: key ${key}/${index} names entry ${e}, not one`);
            continue;
          }
          if (seen[e]++ > 0) problems.push(`entry ${e} is held under two keys`);
          if (this.entryPool[e] !== p.handle || this.entryIndex[e] !== index || this.entryOid[e] !== key) {
            problems.push(`entry ${e} at ${key}/${index} of pool ${p.id} of domain ${p.dom} records another key`);
          }
          const slot = this.entrySlot[e]!;
          if (slot < 0 || slot >= this.pages || this.swap.refcount(slot as SwapSlot) === 0) {
            problems.push(`entry ${e} names slot ${slot}, which holds nothing`);
            continue;
          }
          refs[slot]!++;
          if (!p.persistent) ephRefs[slot]!++;
        }
      }
      if (pages !== p.pages) problems.push(`pool ${p.id} of domain ${p.dom} counts ${p.pages} pages, holds ${pages}`);
      if (p.persistent) persistent += pages;
      else ephemeral += pages;
    }
    for (const [dom, table] of this.domains) {
      let live = 0;
      for (let id = 0; id < table.length; id++) {
        const h = table[id]!;
        if (h === NONE) continue;
        live++;
        const p = this.pools[h];
        if (p === undefined || p.dom !== dom || p.id !== id) problems.push(`domain ${dom} pool ${id} names handle ${h}, another pool`);
      }
      if (live === 0) problems.push(`domain ${dom} keeps an empty pool table`);
    }
    let freeable = 0;
    for (let s = 0; s < this.pages; s++) {
      const rc = this.swap.refcount(s as SwapSlot);
      if (rc !== refs[s]) problems.push(`slot ${s} has refcount ${rc}, ${refs[s]} pages name it`);
      if (this.slotEphemeralRefs[s] !== ephRefs[s]) {
        problems.push(`slot ${s} counts ${this.slotEphemeralRefs[s]} ephemeral references, ${ephRefs[s]} ephemeral pages name it`);
      }
      if (refs[s]! > 0 && ephRefs[s] === refs[s]) freeable++;
    }
    if (freeable !== this.freeableSlots) problems.push(`${this.freeableSlots} freeable slots counted, ${freeable} found`);
    if (ephemeral !== this.ephemeralPages) problems.push(`ephemeralPages ${this.ephemeralPages}, pools hold ${ephemeral}`);
    if (persistent !== this.persistentPages) problems.push(`persistentPages ${this.persistentPages}, pools hold ${persistent}`);
    let onLru = 0;
    let prev = NONE;
    for (let e = this.lruHead; e !== NONE && onLru <= this.entriesAllocated; e = this.entryNext[e]!) {
      onLru++;
      if (this.entryPrev[e] !== prev) problems.push(`LRU entry ${e} links back to ${this.entryPrev[e]}, not ${prev}`);
      if (!seen[e]) problems.push(`LRU holds entry ${e}, which no pool holds`);
      else if (this.pools[this.entryPool[e]!]?.persistent !== false) problems.push(`LRU holds persistent entry ${e}`);
      prev = e;
    }
    if (prev !== this.lruTail) problems.push(`LRU tail is ${this.lruTail}, the list ends at ${prev}`);
    if (onLru !== ephemeral) problems.push(`LRU holds ${onLru} entries, ephemeral pools ${ephemeral} pages`);
    let live = 0;
    for (let e = 0; e < this.entriesAllocated; e++) if (seen[e]) live++;
    if (live + this.entryFreeTop !== this.entriesAllocated) {
      problems.push(`${live} live + ${this.entryFreeTop} free entries != ${this.entriesAllocated} allocated`);
    }
    for (let i = 0; i < this.entryFreeTop; i++) {
      const e = this.entryFree[i]!;
      if (seen[e]) problems.push(`entry ${e} is free and held by a pool`);
    }
    if (pools + this.freePoolHandles.length !== this.pools.length) problems.push('pool handles leaked');
    return problems;
  }

  private lookupPool(op: string, dom: DomId, pool: number): Pool {
    checkDom(op, dom);
    if (!Number.isInteger(pool)) throw new HypervisorError('EINVAL', op, `pool ${String(pool)} is not an integer`);
    const handle = pool >= 0 && pool < TMEM_MAX_POOLS_PER_DOMAIN ? (this.domains.get(dom)?.[pool] ?? NONE) : NONE;
    if (handle === NONE) throw new HypervisorError('ENOENT', op, `domain ${dom} has no tmem pool ${pool}`);
    return this.pools[handle]!;
  }

  private slotOf(e: number): SwapSlot {
    return this.entrySlot[e]! as SwapSlot;
  }

  /** Stores `page` and returns its slot (one more reference), or -1 when the store is full. */
  private tryStore(page: Uint8Array): number {
    try {
      return this.swap.store(page, this.hashPage(page));
    } catch (err) {
      if (err instanceof HypervisorError && err.errnoName === 'ENOSPC') return NONE;
      throw rethrow('tmem_put_page', err);
    }
  }

  /**
   * Entry `e` alone holds its slot: frees that slot and stores `page` in the room it leaves,
   * re-pointing `e` at the new slot. When the store fails all the same, puts the old content
   * back (its room was just freed) and returns -1 (or rethrows), so nothing has changed.
   */
  private replaceInPlace(e: number, page: Uint8Array, ephemeral: boolean): number {
    const previous = this.slotOf(e);
    try {
      this.swap.load(previous, this.scratch);
    } catch (err) {
      throw rethrow('tmem_put_page', err);
    }
    this.releaseRef(previous, ephemeral);
    let slot = NONE;
    let error: unknown;
    try {
      slot = this.tryStore(page);
    } catch (err) {
      error = err;
    }
    const stored = slot >= 0;
    if (!stored) slot = this.swap.store(this.scratch, this.hashPage(this.scratch));
    this.entrySlot[e] = slot;
    this.noteRefAdded(slot, ephemeral);
    if (error !== undefined) throw error;
    return stored ? slot : NONE;
  }

  /** Books a reference the store just added to `slot`. */
  private noteRefAdded(slot: number, ephemeral: boolean): void {
    const rc = this.swap.refcount(slot as SwapSlot);
    let eph = this.slotEphemeralRefs[slot]!;
    const was = rc > 1 && eph === rc - 1;
    if (ephemeral) eph++;
    this.slotEphemeralRefs[slot] = eph;
    this.freeableSlots += (eph === rc ? 1 : 0) - (was ? 1 : 0);
  }

  /** Releases one reference to `slot`; true when that freed it. */
  private releaseRef(slot: SwapSlot, ephemeral: boolean): boolean {
    const rc = this.swap.refcount(slot);
    let eph = this.slotEphemeralRefs[slot]!;
    const was = eph === rc;
    this.swap.addRef(slot, -1);
    if (ephemeral) eph--;
    this.slotEphemeralRefs[slot] = eph;
    this.freeableSlots += (rc > 1 && eph === rc - 1 ? 1 : 0) - (was ? 1 : 0);
    return rc === 1;
  }

  /** Removes entry `e` from its pool and releases its slot; true when that freed the slot. */
  private dropEntry(e: number): boolean {
    const p = this.pools[this.entryPool[e]!]!;
    const key = this.entryOid[e]!;
    const object = p.objects.get(key)!;
    object.delete(this.entryIndex[e]!);
    if (object.size === 0) p.objects.delete(key);
    p.pages--;
    if (p.persistent) {
      this.persistentPages--;
    } else {
      this.ephemeralPages--;
      this.lruUnlink(e);
    }
    const freed = this.releaseRef(this.slotOf(e), !p.persistent);
    this.entrySlot[e] = NONE;
    this.entryOid[e] = undefined;
    this.entryFree[this.entryFreeTop++] = e;
    return freed;
  }

  private dropPool(p: Pool): void {
    const entries: number[] = [];
    for (const object of p.objects.values()) for (const e of object.values()) entries.push(e);
    for (const e of entries) this.dropEntry(e);
    const table = this.domains.get(p.dom)!;
    table[p.id] = NONE;
    if (table.every((h) => h === NONE)) this.domains.delete(p.dom);
    this.pools[p.handle] = undefined;
    this.freePoolHandles.push(p.handle);
  }

  private allocEntry(): number {
    if (this.entryFreeTop > 0) return this.entryFree[--this.entryFreeTop]!;
    if (this.entriesAllocated === this.entrySlot.length) this.growEntries();
    return this.entriesAllocated++;
  }

  private growEntries(): void {
    const n = this.entrySlot.length * 2;
    this.entrySlot = grow(new Int32Array(n), this.entrySlot);
    this.entryPool = grow(new Int32Array(n), this.entryPool);
    this.entryIndex = grow(new Uint32Array(n), this.entryIndex);
    this.entryPrev = grow(new Int32Array(n), this.entryPrev);
    this.entryNext = grow(new Int32Array(n), this.entryNext);
    this.entryFree = grow(new Int32Array(n), this.entryFree);
  }

  private lruAppend(e: number): void {
    this.entryPrev[e] = this.lruTail;
    this.entryNext[e] = NONE;
    if (this.lruTail === NONE) this.lruHead = e;
    else this.entryNext[this.lruTail] = e;
    this.lruTail = e;
  }

  private lruUnlink(e: number): void {
    const prev = this.entryPrev[e]!;
    const next = this.entryNext[e]!;
    if (prev === NONE) this.lruHead = next;
    else this.entryNext[prev] = next;
    if (next === NONE) this.lruTail = prev;
    else this.entryPrev[next] = prev;
    this.entryPrev[e] = NONE;
    this.entryNext[e] = NONE;
  }
}

function checkDom(op: string, dom: DomId): void {
  if (!isRealDomId(dom)) throw new HypervisorError('EINVAL', op, `${String(dom)} is not a domain id`);
}

function checkIndex(op: string, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index > U32_MAX) {
    throw new HypervisorError('EINVAL', op, `page index ${String(index)} is not a u32`);
  }
}

function checkPage(op: string, what: string, page: Uint8Array): void {
  if (!(page instanceof Uint8Array) || page.length !== PAGE_SIZE) {
    const length = page instanceof Uint8Array ? `${page.length} bytes` : 'not a Uint8Array';
    throw new HypervisorError('EINVAL', op, `${what} is ${length}, not ${PAGE_SIZE} bytes`);
  }
}

/** The map key of an object id; EINVAL unless it is three non-negative safe integers. */
function oidKey(op: string, oid: TmemOid): string {
  if (!Array.isArray(oid) || oid.length !== 3 || !oid.every((part) => Number.isSafeInteger(part) && part >= 0)) {
    throw new HypervisorError('EINVAL', op, `object id ${String(oid)} is not three non-negative safe integers`);
  }
  return `${oid[0]}:${oid[1]}:${oid[2]}`;
}

function grow<T extends Int32Array | Uint32Array>(to: T, from: T): T {
  to.set(from);
  return to;
}

function rethrow(op: string, err: unknown): unknown {
  if (err instanceof HypervisorError) return new HypervisorError(err.errnoName as 'EIO', op, err.detail);
  return err;
}

/** 32-bit FNV-1a over a page's 32-bit words: the default hash when none is given. */
function fnv1a(page: Uint8Array): number {
  // Word reads need 4-byte alignment; an unaligned view is hashed from a copy so that equal bytes hash equal.
  const src = (page.byteOffset & 3) === 0 ? page : page.slice();
  const words = new Int32Array(src.buffer, src.byteOffset, src.length >> 2);
  let h = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, 0x01000193);
  for (let i = words.length << 2; i < src.length; i++) h = Math.imul(h ^ src[i]!, 0x01000193);
  return h >>> 0;
}
