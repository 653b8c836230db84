import { HypervisorError, type DedupHost, type FrameTable, type Mfn } from '@pagevisor/types';

/**
 * The frames an unmerge of many pages will allocate, counted before any page is unmerged so that
 * a refusal changes nothing. A page mapping the zero frame needs a frame of its own; a page
 * mapping a shared frame needs one too, except that when every mapping of that frame is
 * unmerged the last one keeps the frame (copy-on-write's "kept"). Shared frames are collected in
 * one typed array, sorted, and counted run by run: no allocation per page.
 */
export class UnmergeCount {
  private readonly mfns: Int32Array;
  private n = 0;
  private zero = 0;

  /** @param capacity most pages that will be added (the pages of the range to unmerge) */
  constructor(capacity: number) {
    this.mfns = new Int32Array(capacity);
  }

  /** A page to unmerge that maps shared frame `mfn`. */
  addShared(mfn: number): void {
    this.mfns[this.n++] = mfn;
  }

  /** A page to unmerge that maps the zero frame. */
  addZero(): void {
    this.zero++;
  }

  /** Frames the unmerge will allocate: a frame's mappings unmerged, less one when they are all of them. */
  frames(table: FrameTable): number {
    const sorted = this.mfns.subarray(0, this.n).sort();
    let needed = this.zero;
    for (let i = 0; i < sorted.length; ) {
      const m = sorted[i]!;
      let j = i + 1;
      while (j < sorted.length && sorted[j] === m) j++;
      const unmerged = j - i;
      needed += unmerged === table.refcount(m as Mfn) ? unmerged - 1 : unmerged;
      i = j;
    }
    return needed;
  }

  /**
   * Makes room for the unmerge on `host` (paging out when it has swap), or throws ENOMEM (named
   * `op`) having changed nothing when it cannot.
   */
  check(op: string, host: Pick<DedupHost, 'frames' | 'ensureFree'>): void {
    const needed = this.frames(host.frames);
    const free = host.frames.freeFrames;
    if (needed > free && !(host.ensureFree?.(needed) ?? false)) {
      throw new HypervisorError('ENOMEM', op, `${needed} frames needed to unmerge, ${free} free${host.ensureFree === undefined ? '' : ' and no more could be paged out'}`);
    }
  }
}
