import {
  DOMID_INVALID,
  DOMID_XEN,
  FrameFlags,
  INVALID_GFN,
  INVALID_MFN,
  InvariantError,
  type DomId,
  type FrameAllocator,
  type FrameTable,
  type Gfn,
  type Mfn,
} from '@pagevisor/types';
import { BuddyAllocator, LEND_LINKS } from './buddy-allocator.js';
import { checkMfn } from './check.js';
import { FREE_BITS, forEachHeld } from './frame-bitmap.js';
import { FreeListAllocator } from './free-list-allocator.js';

/**
 * A frame's owner is kept XORed with DOMID_INVALID, so that the zeros of a new array read as
 * DOMID_INVALID (free): the table fills nothing at construction, and a machine of 2^30 frames
 * touches the pages of its arrays only as frames are allocated.
 */
const OWNER_XOR = DOMID_INVALID;

/** True for a frame {@link ArrayFrameTable.sharedFrameCounts} counts: flagged shared, and not the zero frame. */
function counted(flags: number): boolean {
  return (flags & (FrameFlags.shared | FrameFlags.zero)) === FrameFlags.shared;
}

/** tot_pages and max_pages of one domain (one object per domain, not per page). */
interface Account {
  totPages: number;
  maxPages: number;
}

/**
 * The frame table in typed arrays: per frame an owner (Uint16), the m2p guest frame (Int32,
 * INVALID_GFN when none), a reference count (Uint32) and flags (Uint8) — 11 bytes per frame —
 * over a {@link FrameAllocator} that decides which frames are free. Per-domain tot_pages and
 * max_pages live in a Map keyed by domain. Every array starts as zeros, nothing is filled (a
 * free frame's m2p word is not read: {@link gfn} says INVALID_GFN for any free frame), so a
 * table of 2^30 frames costs memory only as frames are used, and is built in a scan of the
 * allocator's free bitmap (the built-in allocators; another is asked frame by frame).
 *
 * Over a {@link BuddyAllocator} (the first table over it), the m2p and refcount words are the
 * buddy's free-list links, as Xen's `page_info` is a union: the buddy writes them at free frames
 * only, this table at allocated frames only, and a free frame reads as m2p INVALID_GFN and
 * refcount 0 whatever its links hold. The table's own arrays are then 3 bytes per frame.
 *
 * A shared frame's m2p word is its reverse-map anchor: {@link lendM2p} lends the words to the
 * p2m's reverse map, as Xen's `page_info` holds a shared page's sharing state in a union. The
 * table writes a gfn or INVALID_GFN there (setOwner, allocFrame, freeFrame) and the buddy its
 * links (at least -1), never a value below -1, which the reverse map keeps for its lists.
 *
 * Frames the allocator already holds at construction (e.g. below a buddy's firstFrame) are
 * reserved for the hypervisor: owner DOMID_XEN, refcount 0, never handed out.
 *
 * Out-of-range frame numbers, owners, gfns or flags throw `RangeError`; acting on a frame in
 * the wrong state (freeing a free frame, counting references of a free one, freeing the zero
 * frame) or on an unknown domain throws {@link InvariantError}: the hypervisor checks first.
 */
export class ArrayFrameTable implements FrameTable {
  /** Frames of machine RAM. */
  readonly totalFrames: number;
  /** The allocator deciding which frames are free. */
  readonly allocator: FrameAllocator;

  readonly #owner: Uint16Array;
  readonly #gfn: Int32Array;
  readonly #refcount: Uint32Array;
  readonly #flags: Uint8Array;
  /** True when #gfn and #refcount are the allocator's links: meaningless at free frames. */
  readonly #union: boolean;
  #m2pLent = false;
  readonly #accounts = new Map<number, Account>();
  /** Over the counted frames (see {@link counted}): with a mapping, with two or more, and mappings beyond each one's first. */
  #sharedMapped = 0;
  #sharedMulti = 0;
  #sharedExtra = 0;

  /** @param allocator the allocator of the machine's frames; the table spans its totalFrames. */
  constructor(allocator: FrameAllocator) {
    const n = allocator.totalFrames;
    this.totalFrames = n;
    this.allocator = allocator;
    this.#owner = new Uint16Array(n);
    const links = allocator instanceof BuddyAllocator ? allocator[LEND_LINKS]() : undefined;
    this.#union = links !== undefined;
    this.#gfn = links?.next ?? new Int32Array(n);
    this.#refcount = links === undefined ? new Uint32Array(n) : new Uint32Array(links.prev.buffer, links.prev.byteOffset, n);
    this.#flags = new Uint8Array(n);
    const reserve = (mfn: number): void => {
      this.#owner[mfn] = DOMID_XEN ^ OWNER_XOR;
      this.#gfn[mfn] = INVALID_GFN;
      this.#refcount[mfn] = 0;
    };
    if (allocator instanceof BuddyAllocator || allocator instanceof FreeListAllocator) forEachHeld(allocator[FREE_BITS](), n, reserve);
    else for (let mfn = 0; mfn < n; mfn++) if (!allocator.isFree(mfn as Mfn)) reserve(mfn);
  }

  /** Frames currently free. */
  get freeFrames(): number {
    return this.allocator.freeFrames;
  }

  allocFrame(owner: DomId, gfn: Gfn): Mfn {
    checkOwner(owner, 'allocFrame');
    checkGfn(gfn, 'allocFrame');
    const mfn = this.allocator.alloc(0);
    if (mfn === INVALID_MFN) return INVALID_MFN;
    // Under the union the refcount word held a free-list link until now: nothing to check there.
    if (this.#owner[mfn] !== 0 || (!this.#union && this.#refcount[mfn] !== 0) || this.#flags[mfn] !== 0) {
      throw new InvariantError(
        `allocFrame: allocator handed out frame ${mfn} still owned by ${this.#owner[mfn]! ^ OWNER_XOR} (refcount ${this.#refcount[mfn]}, flags ${this.#flags[mfn]})`,
      );
    }
    this.#owner[mfn] = owner ^ OWNER_XOR;
    this.#gfn[mfn] = gfn;
    this.#refcount[mfn] = 1;
    return mfn;
  }

  freeFrame(mfn: Mfn): void {
    checkMfn(mfn, this.totalFrames, 'freeFrame');
    if (this.allocator.isFree(mfn)) throw new InvariantError(`freeFrame: frame ${mfn} is already free`);
    if ((this.#flags[mfn]! & FrameFlags.zero) !== 0) throw new InvariantError(`freeFrame: frame ${mfn} is the zero frame`);
    if (counted(this.#flags[mfn]!)) this.#countShared(this.#refcount[mfn]!, -1);
    this.#owner[mfn] = 0;
    this.#gfn[mfn] = INVALID_GFN;
    this.#refcount[mfn] = 0;
    this.#flags[mfn] = 0;
    this.allocator.free(mfn, 0);
  }

  /**
   * The m2p words, once (undefined after), for the reverse map to keep each shared frame's anchor
   * in: at a shared frame, {@link gfn} then reads the anchor (a gfn its mappers share, INVALID_GFN,
   * or below -1 a reference to its list of mappers). Their bytes stay counted here.
   */
  lendM2p(): Int32Array | undefined {
    if (this.#m2pLent) return undefined;
    this.#m2pLent = true;
    return this.#gfn;
  }

  isFree(mfn: Mfn): boolean {
    return this.allocator.isFree(mfn);
  }

  owner(mfn: Mfn): DomId {
    checkMfn(mfn, this.totalFrames, 'owner');
    return (this.#owner[mfn]! ^ OWNER_XOR) as DomId;
  }

  gfn(mfn: Mfn): Gfn {
    checkMfn(mfn, this.totalFrames, 'gfn');
    // A free frame's word is not kept: zeros at first, the buddy's links under the union.
    if (this.allocator.isFree(mfn)) return INVALID_GFN;
    return this.#gfn[mfn] as Gfn;
  }

  setOwner(mfn: Mfn, owner: DomId, gfn: Gfn): void {
    checkMfn(mfn, this.totalFrames, 'setOwner');
    checkOwner(owner, 'setOwner');
    checkGfn(gfn, 'setOwner');
    this.#checkAllocated(mfn, 'setOwner');
    this.#owner[mfn] = owner ^ OWNER_XOR;
    this.#gfn[mfn] = gfn;
  }

  refcount(mfn: Mfn): number {
    checkMfn(mfn, this.totalFrames, 'refcount');
    if (this.#union && this.allocator.isFree(mfn)) return 0;
    return this.#refcount[mfn]!;
  }

  addRef(mfn: Mfn, delta: number): number {
    checkMfn(mfn, this.totalFrames, 'addRef');
    this.#checkAllocated(mfn, 'addRef');
    const count = this.#refcount[mfn]! + delta;
    if (!(count >>> 0 === count)) {
      throw new InvariantError(`addRef: frame ${mfn} refcount ${this.#refcount[mfn]} + ${delta} leaves 0..2^32-1`);
    }
    if (counted(this.#flags[mfn]!)) {
      this.#countShared(this.#refcount[mfn]!, -1);
      this.#countShared(count, 1);
    }
    this.#refcount[mfn] = count;
    return count;
  }

  flags(mfn: Mfn): number {
    checkMfn(mfn, this.totalFrames, 'flags');
    return this.#flags[mfn]!;
  }

  setFlags(mfn: Mfn, flags: number): void {
    checkMfn(mfn, this.totalFrames, 'setFlags');
    if (!(flags >>> 0 === flags && flags <= 0xff)) throw new RangeError(`setFlags: flags ${flags} do not fit a byte`);
    this.#checkAllocated(mfn, 'setFlags');
    const was = counted(this.#flags[mfn]!);
    if (was !== counted(flags)) this.#countShared(this.#refcount[mfn]!, was ? -1 : 1);
    this.#flags[mfn] = flags;
  }

  /**
   * Over the frames flagged shared, the zero frame aside: `mapped` those with at least one
   * mapping, `shared` those with two or more, `sharing` the mappings beyond each one's first.
   * Kept as the counts and flags change: O(1).
   */
  sharedFrameCounts(): { mapped: number; shared: number; sharing: number } {
    return { mapped: this.#sharedMapped, shared: this.#sharedMulti, sharing: this.#sharedExtra };
  }

  /** Adds (`sign` 1) or removes (-1) a shared frame of `refs` mappings from the counts. */
  #countShared(refs: number, sign: 1 | -1): void {
    if (refs > 0) {
      this.#sharedMapped += sign;
      this.#sharedExtra += sign * (refs - 1);
    }
    if (refs > 1) this.#sharedMulti += sign;
  }

  addDomain(dom: DomId, maxPages: number): void {
    checkDom(dom, 'addDomain');
    checkPageCount(maxPages, 'addDomain');
    if (this.#accounts.has(dom)) throw new InvariantError(`addDomain: domain ${dom} is accounted already`);
    this.#accounts.set(dom, { totPages: 0, maxPages });
  }

  removeDomain(dom: DomId): void {
    const account = this.#account(dom, 'removeDomain');
    if (account.totPages !== 0) {
      throw new InvariantError(`removeDomain: domain ${dom} still holds ${account.totPages} pages`);
    }
    this.#accounts.delete(dom);
  }

  hasDomain(dom: DomId): boolean {
    return this.#accounts.has(dom);
  }

  totPages(dom: DomId): number {
    return this.#account(dom, 'totPages').totPages;
  }

  maxPages(dom: DomId): number {
    return this.#account(dom, 'maxPages').maxPages;
  }

  setMaxPages(dom: DomId, maxPages: number): void {
    checkPageCount(maxPages, 'setMaxPages');
    this.#account(dom, 'setMaxPages').maxPages = maxPages;
  }

  /**
   * Adds `delta` to tot_pages. A result below 0, or a growth past max_pages, is an
   * {@link InvariantError}: the hypervisor refuses such an allocation with ENOMEM before.
   */
  addTotPages(dom: DomId, delta: number): void {
    const account = this.#account(dom, 'addTotPages');
    const tot = account.totPages + delta;
    if (!Number.isSafeInteger(tot) || tot < 0) {
      throw new InvariantError(`addTotPages: domain ${dom} tot_pages ${account.totPages} + ${delta} is not a page count`);
    }
    if (delta > 0 && tot > account.maxPages) {
      throw new InvariantError(`addTotPages: domain ${dom} tot_pages ${tot} would exceed max_pages ${account.maxPages}`);
    }
    account.totPages = tot;
  }

  /**
   * Bytes of typed arrays this table holds, its allocator's included when it reports them (the
   * words it shares with the allocator counted once).
   */
  metadataBytes(): number {
    const words = this.#union ? 0 : this.#gfn.byteLength + this.#refcount.byteLength;
    const own = this.#owner.byteLength + words + this.#flags.byteLength;
    const alloc = this.allocator as Partial<{ metadataBytes(): number }>;
    return own + (typeof alloc.metadataBytes === 'function' ? alloc.metadataBytes() : 0);
  }

  #checkAllocated(mfn: Mfn, op: string): void {
    if (this.allocator.isFree(mfn)) throw new InvariantError(`${op}: frame ${mfn} is free`);
  }

  #account(dom: DomId, op: string): Account {
    const account = this.#accounts.get(dom);
    if (account === undefined) throw new InvariantError(`${op}: domain ${dom} is not accounted`);
    return account;
  }
}

/** Owners fit the Uint16Array; DOMID_INVALID marks free frames, so no allocated frame has it. */
function checkOwner(owner: number, op: string): void {
  if (!(owner >>> 0 === owner && owner <= 0xffff)) throw new RangeError(`${op}: owner ${owner} is not a domain id`);
  if (owner === DOMID_INVALID) throw new InvariantError(`${op}: an allocated frame cannot be owned by DOMID_INVALID`);
}

function checkGfn(gfn: number, op: string): void {
  if (!(gfn === INVALID_GFN || gfn >>> 0 === gfn) || gfn > 0x7fffffff) {
    throw new RangeError(`${op}: gfn ${gfn} is neither INVALID_GFN nor in 0..2^31-1`);
  }
}

function checkDom(dom: number, op: string): void {
  if (!(dom >>> 0 === dom && dom <= 0xffff) || dom === DOMID_INVALID) {
    throw new RangeError(`${op}: ${dom} is not a domain id that can hold pages`);
  }
}

function checkPageCount(pages: number, op: string): void {
  if (!(Number.isSafeInteger(pages) && pages >= 0)) {
    throw new RangeError(`${op}: max_pages ${pages} is not a non-negative integer`);
  }
}
