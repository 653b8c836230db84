import { describe, expect, it } from 'vitest';
import { HashMapDedup, InlineDedup } from '@pagevisor/dedup';
import { Hypervisor } from '@pagevisor/hypervisor';
import {
  asGfn,
  definePlugin,
  FrameFlags,
  INVALID_MFN,
  InvariantError,
  PAGE_SIZE,
  Prng,
  type DedupHost,
  type DedupIndex,
  type InsertReason,
  type Mfn,
} from '@pagevisor/types';
import { checkDedupStrategy, HOST_CONFIGURATIONS } from './index.js';

// Selective inline strategies, as a user would write them: against @pagevisor/types alone, as
// plugins. Every insert is an offer they may decline, and they may drop what they hold at any
// time; the host never relies on a frame being indexed. They must pass the kit (the
// reference-model check in every host configuration, with a clean audit).

/** Decides whether an offered frame is indexed. */
type Keep = (host: DedupHost, mfn: Mfn, hash: number, reason: InsertReason) => boolean;

/**
 * An inline strategy that indexes what `keep` accepts, and holds at most `capacity` frames: a
 * full index evicts its oldest entry (shared frames and the zero frame included) to take a new
 * one. A `Map` from content hash to frames, every hit confirmed by a full compare.
 */
class SelectiveDedup implements DedupIndex {
  readonly inline = true;
  readonly populateZero = true;

  private host: DedupHost | undefined;
  /** Indexed frames and their keys, oldest first (a Map keeps insertion order). */
  private readonly hashOf = new Map<Mfn, number>();
  private readonly byHash = new Map<number, Set<Mfn>>();
  readonly counters = {
    lookups: 0,
    hits: 0,
    offeredMiss: 0,
    offeredShared: 0,
    declinedMiss: 0,
    declinedShared: 0,
    evicted: 0,
    evictedShared: 0,
  };

  constructor(
    readonly name: string,
    private readonly keep: Keep,
    private readonly capacity = Infinity,
    /** A property every frame this strategy holds must have (checked by its audit). */
    private readonly holds?: (host: DedupHost, mfn: Mfn) => string | undefined,
  ) {}

  get size(): number {
    return this.hashOf.size;
  }

  attach(host: DedupHost): void {
    if (this.host !== undefined) throw new InvariantError(`${this.name}: attach called twice`);
    this.host = host;
    // Not required: without it a whole-page write of zeros takes a frame of its own.
    const zero = host.zeroMfn;
    if (this.keep(host, zero, host.memory.hashFrame(zero), 'shared')) this.add(zero, host.memory.hashFrame(zero));
  }

  lookup(page: Uint8Array, hash: number): Mfn {
    const memory = this.attached().memory;
    this.counters.lookups++;
    for (const mfn of this.byHash.get(hash) ?? []) {
      if (memory.frameEquals(mfn, page)) {
        this.counters.hits++;
        return mfn;
      }
    }
    return INVALID_MFN;
  }

  insert(mfn: Mfn, hash: number, reason: InsertReason): void {
    const host = this.attached();
    if (reason === 'miss') this.counters.offeredMiss++;
    else if (reason === 'shared') this.counters.offeredShared++;
    else throw new InvariantError(`${this.name}: insert of mfn ${mfn} with reason ${String(reason)}`);
    if (this.hashOf.has(mfn)) throw new InvariantError(`${this.name}: mfn ${mfn} offered but indexed already`);
    if (!this.keep(host, mfn, hash, reason)) {
      if (reason === 'miss') this.counters.declinedMiss++;
      else this.counters.declinedShared++;
      return;
    }
    this.add(mfn, hash);
  }

  remove(mfn: Mfn): void {
    // Called for frames never indexed, or evicted since, too: nothing to forget then.
    const hash = this.hashOf.get(mfn);
    if (hash === undefined) return;
    this.drop(mfn, hash);
  }

  contains(mfn: Mfn): boolean {
    return this.hashOf.has(mfn);
  }

  metadataBytes(): number {
    return this.hashOf.size * 64;
  }

  stats(): Readonly<Record<string, number>> {
    return { ...this.counters, size: this.size };
  }

  audit(): string[] {
    const host = this.host;
    if (host === undefined) return [`${this.name}: not attached`];
    const problems: string[] = [];
    if (this.hashOf.size > this.capacity) problems.push(`${this.hashOf.size} frames held, at most ${this.capacity} allowed`);
    let inBuckets = 0;
    for (const frames of this.byHash.values()) inBuckets += frames.size;
    if (inBuckets !== this.hashOf.size) problems.push(`${inBuckets} frames in buckets but ${this.hashOf.size} indexed`);
    for (const [mfn, hash] of this.hashOf) {
      if (host.frames.isFree(mfn)) problems.push(`mfn ${mfn} is indexed but free`);
      else if (host.memory.hashFrame(mfn) !== hash) problems.push(`mfn ${mfn} changed while indexed`);
      if (this.byHash.get(hash)?.has(mfn) !== true) problems.push(`mfn ${mfn} is missing from its bucket`);
      const wrong = this.holds?.(host, mfn);
      if (wrong !== undefined) problems.push(`mfn ${mfn}: ${wrong}`);
    }
    return problems;
  }

  private add(mfn: Mfn, hash: number): void {
    for (const [oldest, key] of this.hashOf) {
      if (this.hashOf.size < this.capacity) break;
      this.counters.evicted++;
      if ((this.attached().frames.flags(oldest) & FrameFlags.shared) !== 0) this.counters.evictedShared++;
      this.drop(oldest, key);
    }
    this.hashOf.set(mfn, hash);
    const frames = this.byHash.get(hash);
    if (frames === undefined) this.byHash.set(hash, new Set([mfn]));
    else frames.add(mfn);
  }

  private drop(mfn: Mfn, hash: number): void {
    this.hashOf.delete(mfn);
    const frames = this.byHash.get(hash)!;
    frames.delete(mfn);
    if (frames.size === 0) this.byHash.delete(hash);
  }

  private attached(): DedupHost {
    if (this.host === undefined) throw new InvariantError(`${this.name}: used before attach`);
    return this.host;
  }
}

/** Indexes an offered frame only when it holds zeros, whatever the reason. */
const zeroOnly = (): SelectiveDedup =>
  new SelectiveDedup('zero-only', (host, mfn) => host.memory.isZeroFrame(mfn), Infinity, (host, mfn) =>
    host.memory.isZeroFrame(mfn) ? undefined : 'holds other bytes than zeros',
  );
/** Indexes each offer with probability one half, whatever the reason. */
const sampled = (seed = 1): SelectiveDedup => {
  const prng = new Prng(seed);
  return new SelectiveDedup('sampled', () => prng.nextInt(2) === 0);
};
/** Indexes every offer but keeps at most `n` frames: the oldest goes first, shared or not. */
const sizeBounded = (n = 3): SelectiveDedup => new SelectiveDedup(`size-bounded-${n}`, () => true, n);
/** Indexes only frames that became shared (content known to repeat), never a write's miss. */
const sharedOnly = (): SelectiveDedup => new SelectiveDedup('shared-only', (_host, _mfn, _hash, reason) => reason === 'shared');

/** A strategy of this file as a plugin, built fresh for every host (and every trust group). */
const plugin = (name: string, make: (seed: number) => DedupIndex) => definePlugin({ kind: 'dedup', name, create: (_options, context) => make(context.seed) });

// Runs per configuration: few, as each strategy runs in every configuration of the kit; the
// environment's MODEL_CHECK_RUNS raises it.
const RUNS = Number(process.env['MODEL_CHECK_RUNS'] ?? 10);
const SEED = Number(process.env['MODEL_CHECK_SEED'] ?? 20261127);
const SHRINK = process.env['MODEL_CHECK_SHRINK'] !== '0';

/** Host configurations with so few frames that pages go out and come back whatever the strategy shares. */
const SMALL_SWAP = HOST_CONFIGURATIONS.filter((c) => c.swap !== undefined && c.frames <= 6).map((c) => c.name);

describe.each([
  // Zero-only: also what the kit's "index per group" configuration partitions by trust group.
  { label: 'zero-only', plugin: plugin('zero-only', () => zeroOnly()), exercised: ['hits', 'declinedShared', 'declinedMiss'] },
  { label: 'sampled', plugin: plugin('sampled', (seed) => sampled(seed)), exercised: ['hits', 'declinedShared', 'declinedMiss'] },
  { label: 'size-bounded', plugin: plugin('size-bounded-2', () => sizeBounded(2)), exercised: ['hits', 'evicted', 'evictedShared'] },
  { label: 'shared-only', plugin: plugin('shared-only', () => sharedOnly()), exercised: ['hits', 'declinedMiss'] },
  // The example users copy, which indexes every offer: the same check, as a baseline.
  { label: 'HashMapDedup', plugin: plugin('hash-map', () => new HashMapDedup()), exercised: ['hits'] },
])('selective inline strategy $label as a plugin', ({ plugin: p, exercised }) => {
  it(`passes the kit in all ${HOST_CONFIGURATIONS.length} configurations`, async () => {
    const report = await checkDedupStrategy(p, { runs: RUNS, seed: SEED, shrink: SHRINK });
    const applied: Record<string, number> = {};
    const moved: Record<string, number> = {};
    for (const c of report.configurations) {
      for (const [kind, n] of Object.entries(c.applied)) applied[kind] = (applied[kind] ?? 0) + n;
      for (const [name, n] of Object.entries(c.counters)) moved[name] = (moved[name] ?? 0) + n;
      // With few frames, pages went out and came back.
      if (SMALL_SWAP.includes(c.name)) expect(c.runsSwappedIn, `${c.name}: sequences with swap-ins`).toBeGreaterThan(RUNS / 5);
    }
    // The sharing ops, whose frames become shared and are offered with reason 'shared'.
    for (const kind of ['writePage', 'share', 'rangeShare', 'fork', 'forkReset', 'addPhysmap']) expect(applied[kind] ?? 0, kind).toBeGreaterThan(0);
    // And the strategy's selectivity itself: declined offers, evictions of shared frames, hits.
    for (const name of exercised) expect(moved[name] ?? 0, name).toBeGreaterThan(0);
    // Every one merges pages somewhere (the kit reports it; a strategy need not).
    expect(report.configurations.some((c) => c.useful)).toBe(true);
  }, Math.max(60_000, RUNS * HOST_CONFIGURATIONS.length * 400));
});

describe('the insert reason', () => {
  const A = new Uint8Array(PAGE_SIZE).fill(7);

  it("is 'miss' for a whole-page write that found nothing and 'shared' for nominate, share, range_share, add_physmap and fork", async () => {
    const offers: Array<[number, InsertReason]> = [];
    const probe = new SelectiveDedup('probe', (_host, mfn, _hash, reason) => {
      offers.push([mfn, reason]);
      return false; // index nothing: every later offer is one too
    });
    const hv = await Hypervisor.create({ frames: 64, dedup: probe });
    const a = hv.createDomain({ maxPages: 8 });
    const b = hv.createDomain({ maxPages: 8 });
    hv.populatePhysmap(a, [0, 1, 2, 3]);
    hv.populatePhysmap(b, [0, 1, 2, 3]);
    offers.length = 0; // the zero frame, at attach
    const write = (dom: typeof a, gfn: number) => hv.writePage(dom, asGfn(gfn), 0, A, 0, PAGE_SIZE);
    write(a, 0);
    write(b, 0);
    const ma = hv.p2m.table(a)!.mfn(asGfn(0));
    expect(offers.map(([, r]) => r)).toEqual(['miss', 'miss']);
    offers.length = 0;

    const ha = hv.nominateGfn(a, asGfn(0));
    expect(offers).toEqual([[ma, 'shared']]);
    const hb = hv.nominateGfn(b, asGfn(0));
    offers.length = 0;
    hv.share(a, asGfn(0), ha, b, asGfn(0), hb);
    expect(offers).toEqual([[ma, 'shared']]); // the source frame gained the client's mappings
    offers.length = 0;

    write(a, 1);
    write(b, 1);
    offers.length = 0;
    expect(hv.rangeShare(a, b, asGfn(1), asGfn(1))).toBe(1);
    expect(offers.map(([, r]) => r)).toEqual(['shared']);
    offers.length = 0;

    hv.addPhysmap(a, asGfn(0), ha, b, asGfn(5));
    expect(offers).toEqual([]); // already shared: nothing new to offer
    write(a, 2);
    offers.length = 0;
    const c = hv.createDomain({ maxPages: 8 });
    hv.fork(c, a);
    expect(offers.map(([, r]) => r)).toEqual(['shared']); // gfn 2's private frame; the rest were shared
    expect(hv.audit()).toEqual([]);
  });

  it('a strategy that indexes nothing it is offered keeps every guest reading what it wrote', async () => {
    const hv = await Hypervisor.create({ frames: 64, dedup: new SelectiveDedup('nothing', () => false) });
    const a = hv.createDomain({ maxPages: 8 });
    const b = hv.createDomain({ maxPages: 8 });
    hv.populatePhysmap(a, [0]);
    hv.populatePhysmap(b, [0]);
    hv.writePage(a, asGfn(0), 0, A, 0, PAGE_SIZE);
    hv.writePage(b, asGfn(0), 0, A, 0, PAGE_SIZE);
    const h = [hv.nominateGfn(a, asGfn(0)), hv.nominateGfn(b, asGfn(0))] as const;
    hv.share(a, asGfn(0), h[0], b, asGfn(0), h[1]);
    expect(hv.totals().pagesSharing).toBe(1);
    expect(hv.dedup.size).toBe(0);
    expect(hv.audit()).toEqual([]);
    const out = new Uint8Array(PAGE_SIZE);
    hv.readPage(b, asGfn(0), 0, out, 0, PAGE_SIZE);
    expect(out).toEqual(A);
  });
});

describe("InlineDedup's own audit: it indexes every frame offered", () => {
  it('reports a shared frame missing from its index, which the hypervisor audit no longer requires of every strategy', async () => {
    const dedup = new InlineDedup();
    const hv = await Hypervisor.create({ frames: 64, dedup });
    const a = hv.createDomain({ maxPages: 8 });
    hv.populatePhysmap(a, [0]);
    hv.writePage(a, asGfn(0), 0, new Uint8Array(PAGE_SIZE).fill(3), 0, PAGE_SIZE);
    hv.nominateGfn(a, asGfn(0));
    const mfn = hv.p2m.table(a)!.mfn(asGfn(0));
    expect(dedup.contains(mfn)).toBe(true);
    expect(hv.audit()).toEqual([]);
    dedup.remove(mfn); // behind the hypervisor's back
    expect(hv.audit()).toEqual([`inline: inline dedup: shared mfn ${mfn} is not indexed, but every frame offered is`]);
  });
});
