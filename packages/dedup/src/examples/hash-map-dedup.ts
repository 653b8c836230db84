import {
  asMfn,
  FrameFlags,
  INVALID_MFN,
  InvariantError,
  type DedupHost,
  type DedupIndex,
  type InsertReason,
  type Mfn,
} from '@pagevisor/types';

/**
 * An inline de-duplication strategy written for reading, not for speed: a `Map` from content
 * hash to the frames holding that content. Copy it to try an idea, then pass an instance as the
 * hypervisor's `dedup` option. It depends on `@pagevisor/types` alone.
 */
export class HashMapDedup implements DedupIndex {
  readonly name = 'hash-map';
  /** Whole-page writes come to `lookup`, and frames are offered to `insert`. */
  readonly inline = true;
  /** Populated pages map the shared zero frame. */
  readonly populateZero = true;

  private host: DedupHost | undefined;
  /** Frames by the hash of their content. Different contents may share a hash. */
  private readonly byHash = new Map<number, Mfn[]>();
  /** The hash each indexed frame was entered under, for `remove` and `contains`. */
  private readonly hashOf = new Map<Mfn, number>();
  private readonly counters = { lookups: 0, hits: 0, collisions: 0, inserts: 0, insertsShared: 0, removes: 0 };

  /** Frames indexed, the zero frame included. */
  get size(): number {
    return this.hashOf.size;
  }

  attach(host: DedupHost): void {
    if (this.host !== undefined) throw new InvariantError('hash-map dedup: attach called twice');
    this.host = host;
    // So that a whole-page write of zeros finds the zero frame (a shared frame) and maps it.
    this.insert(host.zeroMfn, host.memory.hashFrame(host.zeroMfn), 'shared');
  }

  lookup(page: Uint8Array, hash: number): Mfn {
    const memory = this.attached().memory;
    this.counters.lookups++;
    for (const mfn of this.byHash.get(hash) ?? []) {
      // Never trust a hash alone: 32 bits collide. Confirm with a full compare.
      if (memory.frameEquals(mfn, page)) {
        this.counters.hits++;
        return mfn;
      }
      this.counters.collisions++;
    }
    return INVALID_MFN;
  }

  /**
   * An offer, never an order: the host asks nothing but `lookup` later, compares what it gets, and
   * calls `remove` whenever a frame's content may change, indexed or not. `reason` says why:
   * `'miss'`, a whole-page write found no frame of its content and landed in `mfn`; `'shared'`,
   * `mfn` has just become shared (a sharing op, a fork, a merge), so its content is known to
   * repeat. This strategy takes every offer. A selective one declines what it likes (index
   * zero pages only; or `if (reason === 'miss') return;` to index only contents seen twice; or a
   * sample) and may drop entries later (a size-bounded index evicts), shared frames included.
   */
  insert(mfn: Mfn, hash: number, reason: InsertReason): void {
    this.attached();
    if (this.hashOf.has(mfn)) throw new InvariantError(`hash-map dedup: mfn ${mfn} is indexed already`);
    this.hashOf.set(mfn, hash);
    const frames = this.byHash.get(hash);
    if (frames === undefined) this.byHash.set(hash, [mfn]);
    else frames.push(mfn);
    this.counters.inserts++;
    if (reason === 'shared') this.counters.insertsShared++;
  }

  /** Also called for frames never indexed: after it, `mfn` must not be held. */
  remove(mfn: Mfn): void {
    // The zero frame is never written nor freed: it stays indexed.
    if (mfn === this.host?.zeroMfn) return;
    const hash = this.hashOf.get(mfn);
    if (hash === undefined) return; // not indexed: nothing to forget
    this.hashOf.delete(mfn);
    const rest = this.byHash.get(hash)!.filter((m) => m !== mfn);
    if (rest.length === 0) this.byHash.delete(hash);
    else this.byHash.set(hash, rest);
    this.counters.removes++;
  }

  contains(mfn: Mfn): boolean {
    return this.hashOf.has(mfn);
  }

  /** A rough estimate: a JavaScript Map entry and an array slot cost some 64 bytes a frame. */
  metadataBytes(): number {
    return this.hashOf.size * 64;
  }

  stats(): Readonly<Record<string, number>> {
    const { lookups, hits } = this.counters;
    return { ...this.counters, misses: lookups - hits, size: this.size };
  }

  audit(): string[] {
    const host = this.host;
    if (host === undefined) return ['hash-map dedup: not attached'];
    const problems: string[] = [];
    for (const [mfn, hash] of this.hashOf) {
      if (host.frames.isFree(mfn)) problems.push(`mfn ${mfn} is indexed but free`);
      else if (host.memory.hashFrame(mfn) !== hash) problems.push(`mfn ${mfn} changed while indexed`);
      if (!(this.byHash.get(hash) ?? []).includes(mfn)) problems.push(`mfn ${mfn} is missing from its hash bucket`);
    }
    let inBuckets = 0;
    for (const frames of this.byHash.values()) inBuckets += frames.length;
    if (inBuckets !== this.hashOf.size) problems.push(`${inBuckets} frames in buckets but ${this.hashOf.size} indexed`);
    if (!this.hashOf.has(host.zeroMfn)) problems.push(`the zero frame mfn ${host.zeroMfn} is not indexed`);
    // This strategy takes every offer, so every shared frame mapped by a domain its host shows
    // (under PartitionedDedup, its group's) must be indexed. A selective strategy leaves this out:
    // the hypervisor's own audit requires no frame to be indexed.
    for (let m = 0; m < host.frames.totalFrames; m++) {
      const mfn = asMfn(m);
      if (this.hashOf.has(mfn) || host.frames.isFree(mfn) || (host.frames.flags(mfn) & FrameFlags.shared) === 0) continue;
      let mine = false;
      host.p2m.rmap.forEach(mfn, (dom) => {
        if (host.p2m.table(dom) !== undefined) mine = true;
      });
      if (mine) problems.push(`shared mfn ${mfn} is not indexed, but every frame offered is`);
    }
    return problems;
  }

  private attached(): DedupHost {
    if (this.host === undefined) throw new InvariantError('hash-map dedup: used before attach');
    return this.host;
  }
}
