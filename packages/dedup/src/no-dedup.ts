import { INVALID_MFN, InvariantError, type DedupHost, type DedupIndex, type InsertReason, type Mfn } from '@pagevisor/types';

/**
 * No de-duplication: every populated page gets a frame of its own, whole-page writes are not
 * looked up, and nothing is ever indexed. The baseline the other strategies are measured against.
 */
export class NoDedup implements DedupIndex {
  /** Name of the strategy. */
  readonly name = 'none';
  /** Whole-page writes are not looked up. */
  readonly inline = false;
  /** Populated pages get frames of their own. */
  readonly populateZero = false;

  private attached = false;
  private lookups = 0;

  /** Nothing is ever indexed. */
  get size(): number {
    return 0;
  }

  /** Remembers only that it was attached. */
  attach(_host: DedupHost): void {
    if (this.attached) throw new InvariantError('no dedup: attach called twice');
    this.attached = true;
  }

  /** Always INVALID_MFN: nothing is indexed. */
  lookup(_page: Uint8Array, _hash: number): Mfn {
    this.lookups++;
    return INVALID_MFN;
  }

  /** Always an InvariantError: a caller that offers NoDedup a frame ignored its `inline` flag. */
  insert(mfn: Mfn, _hash: number, _reason: InsertReason): void {
    throw new InvariantError(`no dedup: insert of mfn ${mfn}, but this strategy indexes nothing`);
  }

  /** Nothing to drop. */
  remove(_mfn: Mfn): void {}

  /** Always false. */
  contains(_mfn: Mfn): boolean {
    return false;
  }

  /** Always 0. */
  metadataBytes(): number {
    return 0;
  }

  /** `lookups` (all misses) and `size`. */
  stats(): Readonly<Record<string, number>> {
    return { lookups: this.lookups, size: this.size };
  }

  /** Empty when attached and holding nothing. */
  audit(): string[] {
    const problems: string[] = [];
    if (!this.attached) problems.push('no dedup: not attached');
    if (this.size !== 0) problems.push(`no dedup: holds ${this.size} frames`);
    return problems;
  }
}
