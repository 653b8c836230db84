import {
  asSwapSlot,
  Errno,
  HypervisorError,
  invariant,
  PAGE_SIZE,
  type SwapBackend,
  type SwapDevice,
  type SwapSlot,
  type SwapStats,
} from '@pagevisor/types';
import { CODEC_BOUND, createPageCodec, type Compression, type PageCodec } from './page-codec.js';

/** Options of a {@link SharedSwap}. */
export interface SharedSwapOptions {
  /** Device holding the slots; the area uses all of its slots. */
  readonly device: SwapDevice;
  /** 32-bit hash of a page's PAGE_SIZE bytes (the machine's xxhash); checks every load. */
  readonly hashPage: (page: Uint8Array) => number;
  /** Share one slot among identical pages (default true); false is the per-domain baseline. */
  readonly dedup?: boolean;
  /**
   * Slots (page references) the area hands out (default the device's slot count). With
   * compression, compressed pages are packed into the device's blocks, so more slots than device
   * blocks can be useful.
   */
  readonly slots?: number;
  /** Compression of each slot's content (default 'none'). */
  readonly compression?: Compression;
  /** Name (default 'shared', or 'per-domain' without dedup). */
  readonly name?: string;
}

const EMPTY = -1;
const TOMBSTONE = -2;
/** Bytes of a chunk: the unit of device space a slot's content takes. */
export const SWAP_CHUNK_BYTES = 128;
const CHUNKS_PER_BLOCK = PAGE_SIZE / SWAP_CHUNK_BYTES;

/**
 * The swap area shared by every domain: a slot allocator (free stack), refcounted slots, a
 * per-slot checksum (the page's 32-bit hash) verified on every load, content de-duplication
 * (a hash → slot index confirmed by a full compare, never by the hash alone) and optional
 * compression. A slot's bytes take a run of 128-byte chunks inside one 4 KiB device block (a
 * zsmalloc-like packed pool on the device: a page compressed to 1 KiB takes 8 chunks, a raw page a
 * whole block); each block's used chunks are a 32-bit mask. A store or load that fails throws HypervisorError and
 * references nothing new: a slot is taken only once its bytes are on the device.
 */
export class SharedSwap implements SwapBackend {
  readonly name: string;
  /** The device. */
  readonly device: SwapDevice;
  /** Slots of the area. */
  readonly slots: number;
  /** 4 KiB blocks of the device. */
  readonly blocks: number;
  private readonly hashPage: (page: Uint8Array) => number;
  private readonly dedup: boolean;
  private readonly codec: PageCodec | undefined;

  private readonly refcounts: Uint32Array;
  private readonly checksums: Uint32Array;
  /** Bytes of a slot's content on the device: 0 free, PAGE_SIZE raw, less when compressed. */
  private readonly storedLength: Uint16Array;
  /** Device block of a used slot's bytes. */
  private readonly slotBlock: Int32Array;
  /** First chunk of a used slot's bytes inside its block. */
  private readonly slotChunk: Uint8Array;
  /** Used chunks of each block, bit i = chunk i. */
  private readonly blockUsed: Uint32Array;
  /** Longest run of free chunks of each block. */
  private readonly blockMaxRun: Uint8Array;
  /** Block where the search for room starts (the last one that had some). */
  private blockCursor = 0;
  private readonly freeStack: Int32Array;
  private freeTop: number;
  /** Open-addressing hash → slot table (EMPTY, TOMBSTONE or a slot); a slot appears at most once. */
  private index: Int32Array;
  private indexMask: number;
  private tombstones = 0;

  private readonly pageBuf = new Uint8Array(PAGE_SIZE);
  private readonly codecBuf = new Uint8Array(CODEC_BOUND);

  private swapOuts = 0;
  private swapIns = 0;
  private swapBytesWritten = 0;
  private swapBytesRead = 0;
  private slotsSavedByDedup = 0;
  private diskBytesUsed = 0;
  private diskBytesPeak = 0;

  constructor(options: SharedSwapOptions) {
    this.device = options.device;
    this.slots = options.slots ?? options.device.slots;
    this.blocks = options.device.slots;
    if (!Number.isInteger(this.slots) || this.slots <= 0) {
      throw new HypervisorError('EINVAL', 'swap_create', `slots must be a positive integer, not ${this.slots}`);
    }
    this.hashPage = options.hashPage;
    this.dedup = options.dedup ?? true;
    this.codec = createPageCodec(options.compression ?? 'none');
    this.name = options.name ?? (this.dedup ? 'shared' : 'per-domain');
    this.refcounts = new Uint32Array(this.slots);
    this.checksums = new Uint32Array(this.slots);
    this.storedLength = new Uint16Array(this.slots);
    this.slotBlock = new Int32Array(this.slots);
    this.slotChunk = new Uint8Array(this.slots);
    this.blockUsed = new Uint32Array(this.blocks);
    this.blockMaxRun = new Uint8Array(this.blocks).fill(CHUNKS_PER_BLOCK);
    this.freeStack = new Int32Array(this.slots);
    // Lowest slot on top, so a fresh area fills the device from its start.
    for (let i = 0; i < this.slots; i++) this.freeStack[i] = this.slots - 1 - i;
    this.freeTop = this.slots;
    let capacity = 16;
    while (capacity < this.slots * 2) capacity *= 2;
    this.index = new Int32Array(this.dedup ? capacity : 0).fill(EMPTY);
    this.indexMask = capacity - 1;
  }

  store(page: Uint8Array, hash: number): SwapSlot {
    if (page.length < PAGE_SIZE) {
      throw new HypervisorError('EINVAL', 'swap_store', `page of ${page.length} bytes, not ${PAGE_SIZE}`);
    }
    const h = hash >>> 0;
    if (this.dedup) {
      const shared = this.findIdentical(page, h);
      if (shared >= 0) {
        this.refcounts[shared]!++;
        this.swapOuts++;
        this.slotsSavedByDedup++;
        return asSwapSlot(shared);
      }
    }
    if (this.freeTop === 0) {
      throw new HypervisorError('ENOSPC', 'swap_store', `all ${this.slots} swap slots are in use`);
    }
    const slot = this.freeStack[this.freeTop - 1]!;
    let src = page;
    let length = PAGE_SIZE;
    if (this.codec !== undefined) {
      const n = this.codec.compress(page, this.codecBuf);
      if (n < PAGE_SIZE) {
        src = this.codecBuf;
        length = n;
      }
    }
    const chunks = Math.ceil(length / SWAP_CHUNK_BYTES);
    const block = this.findRoom(chunks);
    if (block < 0) {
      throw new HypervisorError('ENOSPC', 'swap_store', `no device block has ${chunks} free chunks`);
    }
    const chunk = lowestRun(~this.blockUsed[block]! >>> 0, chunks);
    try {
      this.device.write(block * PAGE_SIZE + chunk * SWAP_CHUNK_BYTES, src, 0, length);
    } catch (e) {
      // Neither slot nor chunks were taken: partly written chunks stay free and nothing refers to them.
      throw deviceError(e, 'swap_store', slot);
    }
    this.freeTop--;
    this.blockUsed[block] = (this.blockUsed[block]! | runMask(chunk, chunks)) >>> 0;
    this.blockMaxRun[block] = maxRun(~this.blockUsed[block]! >>> 0);
    this.slotBlock[slot] = block;
    this.slotChunk[slot] = chunk;
    this.refcounts[slot] = 1;
    this.checksums[slot] = h;
    this.storedLength[slot] = length;
    if (this.dedup) this.indexInsert(slot);
    this.swapOuts++;
    this.swapBytesWritten += length;
    this.diskBytesUsed += chunks * SWAP_CHUNK_BYTES;
    if (this.diskBytesUsed > this.diskBytesPeak) this.diskBytesPeak = this.diskBytesUsed;
    return asSwapSlot(slot);
  }

  load(slot: SwapSlot, dst: Uint8Array): void {
    this.checkUsed('swap_load', slot);
    if (dst.length < PAGE_SIZE) {
      throw new HypervisorError('EINVAL', 'swap_load', `destination of ${dst.length} bytes, not ${PAGE_SIZE}`);
    }
    this.readSlot('swap_load', slot, this.pageBuf);
    const actual = this.hashPage(this.pageBuf) >>> 0;
    if (actual !== this.checksums[slot]) {
      throw new HypervisorError(
        'EIO',
        'swap_load',
        `checksum mismatch in slot ${slot}: stored ${hex(this.checksums[slot]!)}, read ${hex(actual)}`,
      );
    }
    // Copy only once verified, so a failed load leaves the destination as it was.
    dst.set(this.pageBuf);
    this.swapIns++;
  }

  addRef(slot: SwapSlot, delta: number): number {
    this.checkUsed('swap_addref', slot);
    const next = this.refcounts[slot]! + delta;
    if (!Number.isInteger(delta) || next < 0 || next > 0xffffffff) {
      throw new HypervisorError('EINVAL', 'swap_addref', `slot ${slot}: refcount ${this.refcounts[slot]} + ${delta}`);
    }
    this.refcounts[slot] = next;
    if (next === 0) this.free(slot);
    return next;
  }

  refcount(slot: SwapSlot): number {
    return slot >= 0 && slot < this.slots ? this.refcounts[slot]! : 0;
  }

  /** The page hash stored with used slot `slot` (verified on every load). */
  checksum(slot: SwapSlot): number {
    this.checkUsed('swap_checksum', slot);
    return this.checksums[slot]!;
  }

  *usedSlots(): Iterable<SwapSlot> {
    for (let i = 0; i < this.slots; i++) if (this.refcounts[i]! > 0) yield asSwapSlot(i);
  }

  stats(): SwapStats {
    const used = this.slots - this.freeTop;
    return {
      swapOuts: this.swapOuts,
      swapIns: this.swapIns,
      swapSlotsUsed: used,
      swapBytesWritten: this.swapBytesWritten,
      swapBytesRead: this.swapBytesRead,
      slotsSavedByDedup: this.slotsSavedByDedup,
      compressionRatio: this.diskBytesUsed === 0 ? 1 : (used * PAGE_SIZE) / this.diskBytesUsed,
      diskBytesUsed: this.diskBytesUsed,
      diskBytesPeak: this.diskBytesPeak,
    };
  }

  metadataBytes(): number {
    return (
      this.refcounts.byteLength +
      this.checksums.byteLength +
      this.storedLength.byteLength +
      this.slotBlock.byteLength +
      this.slotChunk.byteLength +
      this.blockUsed.byteLength +
      this.blockMaxRun.byteLength +
      this.freeStack.byteLength +
      this.index.byteLength
    );
  }

  audit(): string[] {
    const problems: string[] = [];
    if (this.freeTop < 0 || this.freeTop > this.slots) problems.push(`free stack top ${this.freeTop} out of range`);
    const onFreeStack = new Uint8Array(this.slots);
    for (let i = 0; i < this.freeTop; i++) {
      const s = this.freeStack[i]!;
      if (s < 0 || s >= this.slots) problems.push(`free stack entry ${i} is ${s}, not a slot`);
      else if (onFreeStack[s]++ > 0) problems.push(`slot ${s} is on the free stack twice`);
    }
    let used = 0;
    let bytes = 0;
    const chunksSeen = new Uint32Array(this.blocks);
    for (let s = 0; s < this.slots; s++) {
      const rc = this.refcounts[s]!;
      if (rc > 0) {
        used++;
        const chunks = Math.ceil(this.storedLength[s]! / SWAP_CHUNK_BYTES);
        bytes += chunks * SWAP_CHUNK_BYTES;
        const b = this.slotBlock[s]!;
        const c = this.slotChunk[s]!;
        if (b < 0 || b >= this.blocks || c + chunks > CHUNKS_PER_BLOCK) {
          problems.push(`slot ${s} lies outside the device (block ${b}, chunk ${c}+${chunks})`);
        } else {
          const m = runMask(c, chunks);
          if ((chunksSeen[b]! & m) !== 0) problems.push(`slot ${s} overlaps another slot in block ${b}`);
          chunksSeen[b] = (chunksSeen[b]! | m) >>> 0;
        }
        if (onFreeStack[s]) problems.push(`slot ${s} has refcount ${rc} but is free`);
        if (this.storedLength[s] === 0) problems.push(`slot ${s} is used but holds no bytes`);
      } else {
        if (!onFreeStack[s]) problems.push(`slot ${s} has refcount 0 but is not free (leaked)`);
        if (this.storedLength[s] !== 0) problems.push(`free slot ${s} still counts ${this.storedLength[s]} bytes`);
      }
    }
    for (let b = 0; b < this.blocks; b++) {
      if (chunksSeen[b] !== this.blockUsed[b]) {
        problems.push(`block ${b} marks chunks ${hex(this.blockUsed[b]!)} used, its slots hold ${hex(chunksSeen[b]!)}`);
      }
      if (this.blockMaxRun[b] !== maxRun(~this.blockUsed[b]! >>> 0)) problems.push(`block ${b} has a stale longest free run`);
    }
    if (used + this.freeTop !== this.slots) problems.push(`${used} used + ${this.freeTop} free != ${this.slots} slots`);
    if (bytes !== this.diskBytesUsed) problems.push(`diskBytesUsed ${this.diskBytesUsed}, slots hold ${bytes}`);
    if (this.dedup) {
      const seen = new Uint8Array(this.slots);
      let tombstones = 0;
      for (let i = 0; i < this.index.length; i++) {
        const s = this.index[i]!;
        if (s === TOMBSTONE) tombstones++;
        if (s < 0) continue;
        if (s >= this.slots || this.refcounts[s] === 0) problems.push(`dedup index entry ${i} points at free slot ${s}`);
        else if (seen[s]++ > 0) problems.push(`slot ${s} is in the dedup index twice`);
        else if (this.indexFind(s) !== i) problems.push(`slot ${s} is not reachable from its checksum ${hex(this.checksums[s]!)}`);
      }
      if (tombstones !== this.tombstones) problems.push(`${this.tombstones} tombstones counted, ${tombstones} in the index`);
      for (let s = 0; s < this.slots; s++) {
        if (this.refcounts[s]! > 0 && !seen[s]) problems.push(`used slot ${s} is missing from the dedup index`);
      }
    }
    return problems;
  }

  /** A used slot holding exactly `page` (hash `h`), or -1. Reads candidates back: a hash match alone is never enough. */
  private findIdentical(page: Uint8Array, h: number): number {
    for (let i = mix(h) & this.indexMask; ; i = (i + 1) & this.indexMask) {
      const s = this.index[i]!;
      if (s === EMPTY) return -1;
      if (s < 0 || this.checksums[s] !== h) continue;
      try {
        this.readSlot('swap_store', s, this.pageBuf);
      } catch {
        // An unreadable candidate is not shared; the page gets a slot of its own.
        continue;
      }
      if (samePage(page, this.pageBuf)) return s;
    }
  }

  private readSlot(op: string, slot: number, out: Uint8Array): void {
    const length = this.storedLength[slot]!;
    const raw = length >= PAGE_SIZE;
    try {
      this.device.read(this.offsetOf(slot), raw ? out : this.codecBuf, 0, length);
    } catch (e) {
      throw deviceError(e, op, slot);
    }
    this.swapBytesRead += length;
    if (raw) return;
    let produced: number;
    try {
      produced = this.codec!.decompress(this.codecBuf, length, out);
    } catch (e) {
      throw new HypervisorError('EIO', op, `slot ${slot}: cannot decompress: ${(e as Error).message}`);
    }
    if (produced !== PAGE_SIZE) {
      throw new HypervisorError('EIO', op, `slot ${slot}: decompressed to ${produced} bytes, not ${PAGE_SIZE}`);
    }
  }

  private free(slot: number): void {
    invariant(this.freeTop < this.slots, `freeing slot ${slot} with the free stack full`);
    if (this.dedup) this.indexRemove(slot);
    const chunks = Math.ceil(this.storedLength[slot]! / SWAP_CHUNK_BYTES);
    const block = this.slotBlock[slot]!;
    this.blockUsed[block] = (this.blockUsed[block]! & ~runMask(this.slotChunk[slot]!, chunks)) >>> 0;
    this.blockMaxRun[block] = maxRun(~this.blockUsed[block]! >>> 0);
    this.diskBytesUsed -= chunks * SWAP_CHUNK_BYTES;
    this.storedLength[slot] = 0;
    this.checksums[slot] = 0;
    this.freeStack[this.freeTop++] = slot;
  }

  /** Byte offset on the device of used slot `slot`'s content (for tools and tests). */
  offsetOf(slot: SwapSlot | number): number {
    return this.slotBlock[slot]! * PAGE_SIZE + this.slotChunk[slot]! * SWAP_CHUNK_BYTES;
  }

  /** A block with a run of `chunks` free chunks, or -1; first fit from the last block that had room. */
  private findRoom(chunks: number): number {
    for (let n = 0, b = this.blockCursor; n < this.blocks; n++, b = b + 1 === this.blocks ? 0 : b + 1) {
      if (this.blockMaxRun[b]! >= chunks) {
        this.blockCursor = b;
        return b;
      }
    }
    return -1;
  }

  private checkUsed(op: string, slot: SwapSlot): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) {
      throw new HypervisorError('EINVAL', op, `slot ${slot} outside 0..${this.slots - 1}`);
    }
    if (this.refcounts[slot] === 0) throw new HypervisorError('EINVAL', op, `slot ${slot} is free`);
  }

  private indexInsert(slot: number): void {
    let i = mix(this.checksums[slot]!) & this.indexMask;
    while (this.index[i]! >= 0) i = (i + 1) & this.indexMask;
    if (this.index[i] === TOMBSTONE) this.tombstones--;
    this.index[i] = slot;
  }

  /** Position of `slot` in the index, or -1. */
  private indexFind(slot: number): number {
    for (let i = mix(this.checksums[slot]!) & this.indexMask; ; i = (i + 1) & this.indexMask) {
      const s = this.index[i]!;
      if (s === slot) return i;
      if (s === EMPTY) return -1;
    }
  }

  private indexRemove(slot: number): void {
    const i = this.indexFind(slot);
    invariant(i >= 0, `slot ${slot} is missing from the dedup index`);
    this.index[i] = TOMBSTONE;
    // Live entries stay under half the table; rebuilding at a quarter of tombstones keeps EMPTY cells for probes to stop at.
    if (++this.tombstones > this.index.length >> 2) this.rebuildIndex();
  }

  private rebuildIndex(): void {
    this.index.fill(EMPTY);
    this.tombstones = 0;
    for (let s = 0; s < this.slots; s++) if (this.refcounts[s]! > 0) this.indexInsert(s);
  }
}

/** Mask of chunks [first, first + count) of a block. */
function runMask(first: number, count: number): number {
  return count >= CHUNKS_PER_BLOCK ? 0xffffffff : ((((1 << count) >>> 0) - 1) << first) >>> 0;
}

/** Lowest chunk starting a run of `count` set bits in `free`, or -1. */
function lowestRun(free: number, count: number): number {
  let starts = free;
  for (let i = 1; i < count; i++) starts &= free >>> i;
  starts >>>= 0;
  return starts === 0 ? -1 : 31 - Math.clz32(starts & -starts);
}

/** Longest run of set bits in `free`. */
function maxRun(free: number): number {
  let run = 0;
  for (let x = free >>> 0; x !== 0; x = (x & (x >>> 1)) >>> 0) run++;
  return run;
}

function samePage(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < PAGE_SIZE; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Spreads a hash over the table (the caller's hash may be weak). */
function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function deviceError(e: unknown, op: string, slot: number): HypervisorError {
  if (e instanceof HypervisorError) {
    return new HypervisorError(e.errno === Errno.ENOSPC ? 'ENOSPC' : 'EIO', op, `slot ${slot}: ${e.message}`);
  }
  return new HypervisorError('EIO', op, `slot ${slot}: ${(e as Error).message ?? String(e)}`);
}
