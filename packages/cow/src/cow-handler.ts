import {
  CowOutcome,
  FrameFlags,
  HypervisorError,
  INVALID_MFN,
  InvariantError,
  P2mType,
  type CowFaultHandler,
  type DedupIndex,
  type DomId,
  type FrameTable,
  type Gfn,
  type MachineMemory,
  type Mfn,
  type P2m,
  type P2mTable,
} from '@pagevisor/types';

/** What a {@link CowHandler} works on: the parts of the hypervisor it changes. */
export interface CowHandlerParts {
  /** The frame table: allocation, owners, refcounts, flags. */
  readonly frames: FrameTable;
  /** The p2m, for its reverse map of shared frames. */
  readonly p2m: P2m;
  /** Machine RAM, for copying and zeroing. */
  readonly memory: MachineMemory;
  /** The de-duplication index, told when a shared frame's content may change or it is freed. */
  readonly dedup: DedupIndex;
  /** The hypervisor's shared zero frame. */
  readonly zeroMfn: Mfn;
}

/**
 * The copy-on-write fault handler. A write to a ram_shared entry is resolved in one of three ways:
 *
 * - the entry maps the zero frame: the page gets a new frame, zero-filled (`zeroAllocated`);
 * - the writer is the last sharer: it keeps the frame, which becomes private again; the dedup index
 *   forgets it, since its content is about to change (`kept`, no allocation, no copy);
 * - otherwise: the page gets a new frame holding a copy of the shared content (`copied`).
 *
 * When a frame is needed and none is free, `unshare` throws HypervisorError(ENOMEM) having changed
 * nothing. tot_pages accounting is the caller's: a page counts as populated whether shared or not.
 */
export class CowHandler implements CowFaultHandler {
  private readonly frames: FrameTable;
  private readonly p2m: P2m;
  private readonly memory: MachineMemory;
  private readonly dedup: DedupIndex;
  private readonly zeroMfn: Mfn;
  private copiedCount = 0;
  private keptCount = 0;
  private zeroAllocatedCount = 0;

  /** A handler over the hypervisor's frame table, p2m, RAM, dedup index and zero frame. */
  constructor(parts: CowHandlerParts) {
    this.frames = parts.frames;
    this.p2m = parts.p2m;
    this.memory = parts.memory;
    this.dedup = parts.dedup;
    this.zeroMfn = parts.zeroMfn;
  }

  /** Faults resolved by copying the shared content into a new frame. */
  get copied(): number {
    return this.copiedCount;
  }

  /** Faults resolved by the last sharer keeping its frame. */
  get kept(): number {
    return this.keptCount;
  }

  /** Faults on the zero frame resolved with a new zero-filled frame. */
  get zeroAllocated(): number {
    return this.zeroAllocatedCount;
  }

  /**
   * Makes `table`'s ram_shared entry for `gfn` private and ram_rw (see the class comment). With
   * `willOverwrite` the caller writes the whole page next, so the new frame is neither copied
   * into nor zeroed. Throws HypervisorError(ENOMEM), changing nothing, when no frame is free.
   */
  unshare(dom: DomId, table: P2mTable, gfn: Gfn, willOverwrite: boolean): CowOutcome {
    // Plain ifs, not invariant(): its message would be built on every fault.
    if (table.dom !== dom) throw new InvariantError(`cow_fault: table of d${table.dom} passed for d${dom}`);
    if (table.type(gfn) !== P2mType.ram_shared) {
      throw new InvariantError(`cow_fault: d${dom} gfn ${gfn} has type ${table.type(gfn)}, not ram_shared`);
    }
    const frames = this.frames;
    const mfn = table.mfn(gfn);
    const flags = frames.flags(mfn);
    if ((flags & FrameFlags.shared) === 0) {
      throw new InvariantError(`cow_fault: d${dom} gfn ${gfn} maps mfn ${mfn}, not shared`);
    }
    const refs = frames.refcount(mfn);
    const rmap = this.p2m.rmap;

    if ((flags & FrameFlags.zero) !== 0) {
      if (mfn !== this.zeroMfn) {
        throw new InvariantError(`cow_fault: mfn ${mfn} has the zero flag but is not the zero frame`);
      }
      const fresh = this.allocFor(dom, gfn);
      if (!willOverwrite) this.memory.zeroFrame(fresh);
      rmap.remove(mfn, dom, gfn);
      frames.addRef(mfn, -1);
      table.set(gfn, fresh, P2mType.ram_rw);
      this.zeroAllocatedCount++;
      return CowOutcome.zeroAllocated;
    }

    if (refs < 1) throw new InvariantError(`cow_fault: shared mfn ${mfn} has refcount 0`);
    if (refs === 1) {
      // The content is about to change, so the index must not offer this frame any more.
      this.dedup.remove(mfn);
      rmap.remove(mfn, dom, gfn);
      frames.setFlags(mfn, flags & ~FrameFlags.shared);
      frames.setOwner(mfn, dom, gfn);
      table.set(gfn, mfn, P2mType.ram_rw);
      this.keptCount++;
      return CowOutcome.kept;
    }

    const fresh = this.allocFor(dom, gfn);
    if (!willOverwrite) this.memory.copyFrame(fresh, mfn);
    rmap.remove(mfn, dom, gfn);
    frames.addRef(mfn, -1);
    table.set(gfn, fresh, P2mType.ram_rw);
    this.copiedCount++;
    return CowOutcome.copied;
  }

  /**
   * Drops `dom`'s mapping of shared frame `mfn` at `gfn` (the caller clears the p2m entry). The
   * last reference frees the frame, unless it is the zero frame; a frame left with one sharer
   * stays shared until that sharer writes it.
   */
  release(dom: DomId, gfn: Gfn, mfn: Mfn): void {
    if ((this.frames.flags(mfn) & FrameFlags.shared) === 0) {
      throw new InvariantError(`cow_release: d${dom} gfn ${gfn}: mfn ${mfn} is not shared`);
    }
    this.p2m.rmap.remove(mfn, dom, gfn);
    const refs = this.frames.addRef(mfn, -1);
    if (refs === 0 && mfn !== this.zeroMfn) {
      this.dedup.remove(mfn);
      this.frames.freeFrame(mfn);
    }
  }

  private allocFor(dom: DomId, gfn: Gfn): Mfn {
    const mfn = this.frames.allocFrame(dom, gfn);
    if (mfn === INVALID_MFN) {
      throw new HypervisorError('ENOMEM', 'cow_fault', `no free frame to unshare d${dom} gfn ${gfn}`);
    }
    return mfn;
  }
}
