import { definePlugin, INVALID_MFN, type DedupHost, type DedupIndex, type InsertReason, type Mfn } from '@pagevisor/types';

/**
 * An inline strategy that indexes only contents known to repeat (frames offered as `'shared'`)
 * and the zero frame, at most `capacity` frames; every hit confirmed by a full compare.
 */
class TwiceDedup implements DedupIndex {
  readonly name = 'twice';
  readonly inline = true;
  readonly populateZero = true;
  private host: DedupHost | undefined;
  private readonly byHash = new Map<number, Set<Mfn>>();
  private readonly hashOf = new Map<Mfn, number>();
  private hits = 0;

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.hashOf.size;
  }

  attach(host: DedupHost): void {
    this.host = host;
    this.add(host.zeroMfn, host.memory.hashFrame(host.zeroMfn));
  }

  lookup(page: Uint8Array, hash: number): Mfn {
    for (const mfn of this.byHash.get(hash) ?? []) {
      if (this.host!.memory.frameEquals(mfn, page)) {
        this.hits++;
        return mfn;
      }
    }
    return INVALID_MFN;
  }

  insert(mfn: Mfn, hash: number, reason: InsertReason): void {
    // An offer: take only frames that became shared, while there is room.
    if (reason === 'shared' && this.hashOf.size < this.capacity) this.add(mfn, hash);
  }

  remove(mfn: Mfn): void {
    const hash = this.hashOf.get(mfn);
    if (hash === undefined || mfn === this.host!.zeroMfn) return;
    this.hashOf.delete(mfn);
    const frames = this.byHash.get(hash)!;
    frames.delete(mfn);
    if (frames.size === 0) this.byHash.delete(hash);
  }

  contains(mfn: Mfn): boolean {
    return this.hashOf.has(mfn);
  }

  metadataBytes(): number {
    return this.hashOf.size * 64;
  }

  stats(): Readonly<Record<string, number>> {
    return { hits: this.hits, size: this.size };
  }

  audit(): string[] {
    const problems: string[] = [];
    for (const [mfn, hash] of this.hashOf) {
      if (this.host!.frames.isFree(mfn)) problems.push(`mfn ${mfn} is held but free`);
      else if (this.host!.memory.hashFrame(mfn) !== hash) problems.push(`mfn ${mfn} changed while held`);
    }
    return problems;
  }

  private add(mfn: Mfn, hash: number): void {
    this.hashOf.set(mfn, hash);
    const frames = this.byHash.get(hash);
    if (frames === undefined) this.byHash.set(hash, new Set([mfn]));
    else frames.add(mfn);
  }
}

export default definePlugin({
  kind: 'dedup',
  name: 'twice',
  options: (o) => {
    const capacity = o['capacity'] ?? 1024;
    if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 1) throw new Error(`capacity must be a positive integer, got ${JSON.stringify(capacity)}`);
    return { capacity };
  },
  create: ({ capacity }) => new TwiceDedup(capacity),
});
