import { asGfn, type DomId, type Gfn, type P2mTable, type Prng } from '@pagevisor/types';
import { NO_SLOT } from './esx-table.js';

/** `pos` value of a gfn that is not mergeable. */
const NOT_LISTED = -1;

/**
 * What {@link EsxDedup} keeps about one domain whose pages it may scan: which gfns are mergeable
 * (a dense list, so that a random candidate is one draw), the table slot of each page's hint, the
 * scan credit of its rate limit, and its counters. 12 bytes a guest frame, in typed arrays made
 * when the domain is first marked mergeable.
 */
export class EsxDomain {
  /** The domain's p2m table. */
  readonly table: P2mTable;
  /** Guest frames of the domain. */
  readonly size: number;
  /** Marked mergeable as a whole (PR_SET_MEMORY_MERGE). */
  whole = false;
  /** Scan credit in pages: whole pages may be scanned at this wake-up, the fraction carries over. */
  credit = 0;
  /** Pages drawn at the current wake-up, under the rate limit. */
  quota = 0;
  /** Pages scanned (drawn and backed by a frame). */
  pagesScanned = 0;
  /** Pages of this domain merged onto a shared frame other than the zero frame. */
  merged = 0;
  /** Pages of this domain merged onto the zero frame. */
  zeroMerges = 0;
  /** Table slot of each page's hint, or NO_SLOT. */
  readonly hintSlot: Int32Array;

  /** Mergeable gfns, in `list[0 .. count)`. */
  private readonly list: Int32Array;
  /** Index of each gfn in `list`, or NOT_LISTED. */
  private readonly pos: Int32Array;
  private listed = 0;
  private hintCount = 0;

  /** @param dom the domain @param table its p2m table */
  constructor(
    readonly dom: DomId,
    table: P2mTable,
  ) {
    this.table = table;
    this.size = table.size;
    this.list = new Int32Array(this.size);
    this.pos = new Int32Array(this.size).fill(NOT_LISTED);
    this.hintSlot = new Int32Array(this.size).fill(NO_SLOT);
  }

  /** Mergeable pages. */
  get count(): number {
    return this.listed;
  }

  /** Pages that have a hint. */
  get hints(): number {
    return this.hintCount;
  }

  /** Bytes of the typed arrays. */
  bytes(): number {
    return this.list.byteLength + this.pos.byteLength + this.hintSlot.byteLength;
  }

  /** True when `gfn` is mergeable. */
  isMergeable(gfn: Gfn): boolean {
    return this.pos[gfn] !== NOT_LISTED;
  }

  /** Marks `gfn` mergeable (no-op when it is). */
  mark(gfn: Gfn): void {
    if (this.pos[gfn] !== NOT_LISTED) return;
    this.list[this.listed] = gfn;
    this.pos[gfn] = this.listed++;
  }

  /** Marks `gfn` not mergeable (no-op when it is not): the last listed gfn takes its place. */
  unmark(gfn: Gfn): void {
    const i = this.pos[gfn]!;
    if (i === NOT_LISTED) return;
    const last = this.list[--this.listed]!;
    this.list[i] = last;
    this.pos[last] = i;
    this.pos[gfn] = NOT_LISTED;
  }

  /** A mergeable gfn drawn uniformly at random; the domain must have one. */
  pick(prng: Prng): Gfn {
    return asGfn(this.list[prng.nextInt(this.listed)]!);
  }

  /** Records that `gfn`'s hint sits in `slot` (NO_SLOT: it has none any more). */
  setHint(gfn: Gfn, slot: number): void {
    const had = this.hintSlot[gfn] !== NO_SLOT;
    const has = slot !== NO_SLOT;
    this.hintSlot[gfn] = slot;
    this.hintCount += (has ? 1 : 0) - (had ? 1 : 0);
  }

  /** Broken invariants of the mergeable list, in words. */
  audit(): string[] {
    const problems: string[] = [];
    let listed = 0;
    for (let g = 0; g < this.size; g++) {
      const i = this.pos[g]!;
      if (i === NOT_LISTED) continue;
      listed++;
      if (i < 0 || i >= this.listed || this.list[i] !== g) problems.push(`dom ${this.dom}: gfn ${g} listed at ${i}, which does not hold it`);
    }
    if (listed !== this.listed) problems.push(`dom ${this.dom}: ${listed} gfns mergeable but the list holds ${this.listed}`);
    let hints = 0;
    for (let g = 0; g < this.size; g++) if (this.hintSlot[g] !== NO_SLOT) hints++;
    if (hints !== this.hintCount) problems.push(`dom ${this.dom}: ${hints} pages have a hint but the count says ${this.hintCount}`);
    return problems;
  }
}
