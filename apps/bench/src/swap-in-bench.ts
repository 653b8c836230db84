import { createDedup } from '@pagevisor/dedup';
import { Hypervisor } from '@pagevisor/hypervisor';
import { MemorySwapDevice, SharedSwap } from '@pagevisor/swap';
import { asGfn, INVALID_MFN, PAGE_SIZE, type DomId, type EvictionPolicy, type Mfn } from '@pagevisor/types';
import { throwProblems } from './suite-context.js';
import { Contents } from './page-contents.js';

/**
 * The ways a guest's fault of a paged-out page is served, as measured by {@link benchSwapIn}:
 * `plain`: a new frame, the slot read into it (no other frame holds the content);
 * `deduped`: the slot read, its content found resident in another domain's frame by the inline
 * index (`swapStats().swapInsDeduped`), that frame mapped shared, no new frame;
 * `cached`: the frame caching the slot (another mapper faulted it in first) mapped shared, no
 * read (`swapStats().swapInsCached`).
 */
export const SWAP_IN_CASES = ['plain', 'deduped', 'cached'] as const;
/** One of {@link SWAP_IN_CASES}. */
export type SwapInCase = (typeof SWAP_IN_CASES)[number];

/** The swap-in figures of one run. */
export interface SwapInBench {
  /** Pages faulted in per round (each case). */
  readonly pages: number;
  /** Samples of each rate. */
  readonly repeats: number;
  /** Faults served per second of wall time, one sample per repeat, per case. */
  readonly faultsPerS: Readonly<Record<SwapInCase, readonly number[]>>;
  /** Per repeat, `deduped` over `plain` and `cached` over `plain` (the samples of one repeat are taken side by side). */
  readonly ratios: { readonly deduped: readonly number[]; readonly cached: readonly number[] };
  /** Rounds (a fault pass over every page of every case) timed per sample. */
  readonly rounds: number;
  /** Pages read back and compared in full with what was written (every page of every round, warm-up included). */
  readonly pagesVerified: number;
  /** `Hypervisor.duplicateFrames()` at the end: 0 when RAM holds each content once. */
  readonly duplicateFrames: number;
}

/**
 * An eviction policy the benchmark steers: its victim is `next` while `next` is tracked, else
 * none, so the pager never evicts a page of its own choosing (nor in the background).
 */
export class SteeredPolicy implements EvictionPolicy {
  readonly name = 'steered';
  next: Mfn = INVALID_MFN;
  private readonly frames = new Set<Mfn>();
  get size(): number {
    return this.frames.size;
  }
  insert(mfn: Mfn): void {
    this.frames.add(mfn);
  }
  remove(mfn: Mfn): void {
    this.frames.delete(mfn);
  }
  touch(): void {}
  victim(): Mfn {
    return this.frames.has(this.next) ? this.next : INVALID_MFN;
  }
  reset(): void {
    this.frames.clear();
  }
}


/** Pages faulted per turn of a case (the cases take turns chunk by chunk). */
const CHUNK = 64;

/** Options of {@link benchSwapIn}. */
export interface SwapInOptions {
  /** Samples shorter than this are lengthened with more rounds, each prepared untimed (default 50 ms). */
  readonly minSampleMs?: number;
  /** Most rounds a sample takes (default unbounded): keeps a quick run short. */
  readonly maxRounds?: number;
}

/**
 * Swap-in cost, side by side: one hypervisor (inline dedup, one shared swap area on a memory
 * device, no compression, a {@link SteeredPolicy}) with a reader and a holder domain per case,
 * `pages` pages each. A round first prepares every case, untimed:
 * - `plain` and `deduped`: the reader writes `pages` pages of a new family and pages them out
 *   (`pagingNominate` + `pagingEvict`); the holder then writes the same family (`deduped`: the
 *   index cannot see the paged-out copies, so the holder's pages get frames of their own) or
 *   another new family (`plain`);
 * - `cached`: reader and holder write one new family (the holder's pages share the reader's
 *   frames), every shared frame is evicted (one slot, both domains paged), and the holder reads
 *   its pages back (plain swap-ins, each frame caching its slot).
 * Then each reader reads each of its pages whole (`readPage`), a fault each, timed: the cases
 * take turns every {@link CHUNK} pages (which goes first rotates from round to round), so that
 * whatever else runs on the machine slows them alike. The machine has frames enough that no
 * round evicts anything but what it pages out itself. A sample is as many rounds as make
 * `minSampleMs` of the slowest case's faults (from an untimed warm-up; at most `maxRounds`).
 * Each round checks the path taken (`swapIns`, `swapInsDeduped`, `swapInsCached` grew by what
 * the case says, `swapOuts` by what it paged out, no swap-in or eviction failed), the first
 * two words of each page as it is read, then reads every page of both domains of every case
 * again in full and compares it with what was written (no fault: they are resident). The
 * hypervisor is audited after the warm-up and after each sample, and its duplicate frames
 * counted at the end (it throws unless 0).
 */
export async function benchSwapIn(pages: number, repeats = 1, opts: SwapInOptions = {}): Promise<SwapInBench> {
  if (!(Number.isInteger(pages) && pages > 0)) throw new RangeError(`benchSwapIn: pages must be a positive integer, got ${pages}`);
  if (!(Number.isInteger(repeats) && repeats > 0)) throw new RangeError(`benchSwapIn: repeats must be a positive integer, got ${repeats}`);
  const policy = new SteeredPolicy();
  let hv: Hypervisor | undefined;
  const area = new SharedSwap({ device: new MemorySwapDevice({ slots: 3 * pages + 16 }), hashPage: (p) => hv!.memory.hashPage(p) });
  // Peak use: each case's two domains hold 2 x pages frames while a round is prepared.
  hv = await Hypervisor.create({ frames: 6 * pages + 64, dedup: createDedup('inline'), swap: { backend: area, policy, lowWatermark: 2, highWatermark: 4 } });
  const host = hv;
  const contents = new Contents(5);
  const dst = new Uint8Array(PAGE_SIZE);
  const dstBytes = Buffer.from(dst.buffer, dst.byteOffset, dst.byteLength);
  const dstWords = new Uint32Array(dst.buffer);
  const gfns = Array.from({ length: pages }, (_, i) => i);
  let nextFamily = 1;
  let pagesVerified = 0;

  const domain = (name: string): DomId => {
    const dom = host.createDomain({ name, maxPages: pages });
    host.populatePhysmap(dom, gfns);
    return dom;
  };
  interface CaseState {
    readonly reader: DomId;
    readonly holder: DomId;
    /** Families the reader and the holder hold after the current round's preparation. */
    readerFamily: number;
    holderFamily: number;
  }
  const state = new Map<SwapInCase, CaseState>(SWAP_IN_CASES.map((c) => [c, { reader: domain(`${c}-reader`), holder: domain(`${c}-holder`), readerFamily: 0, holderFamily: 0 }]));

  const writeAll = (dom: DomId, family: number): void => {
    for (let i = 0; i < pages; i++) host.writePage(dom, asGfn(i), 0, contents.at(i, family), 0, PAGE_SIZE);
  };
  const stats = () => host.swapStats()!;
  const expectDelta = (c: SwapInCase, what: string, delta: number, want: number): void => {
    if (delta !== want) throw new Error(`swap-in bench, ${c}: ${what} grew by ${delta}, expected ${want}`);
  };

  /** Untimed: puts case `c` where its reader's next pass faults every page in the case's way. */
  const prepare = (c: SwapInCase): void => {
    const s = state.get(c)!;
    const family = nextFamily++;
    const before = stats();
    writeAll(s.reader, family);
    if (c === 'cached') {
      writeAll(s.holder, family);
      const paged0 = host.totals().pagedPages;
      const table = host.p2m.table(s.reader)!;
      for (let i = 0; i < pages; i++) {
        if (host.debugGfn(s.reader, asGfn(i)) !== 2) throw new Error(`swap-in bench, cached: reader gfn ${i} is not shared by the two domains`);
        policy.next = table.mfn(asGfn(i));
        if (!host.pager!.evictOne()) throw new Error(`swap-in bench, cached: the pager did not evict reader gfn ${i}'s frame`);
      }
      policy.next = INVALID_MFN;
      expectDelta(c, 'paged pages', host.totals().pagedPages - paged0, 2 * pages);
      for (let i = 0; i < pages; i++) host.readPage(s.holder, asGfn(i), 0, dst, 0, PAGE_SIZE);
      expectDelta(c, 'swapIns (the holder faulting first)', stats().swapIns - before.swapIns, pages);
      s.holderFamily = family;
    } else {
      for (let i = 0; i < pages; i++) {
        host.pagingNominate(s.reader, asGfn(i));
        host.pagingEvict(s.reader, asGfn(i));
      }
      s.holderFamily = c === 'deduped' ? family : nextFamily++;
      writeAll(s.holder, s.holderFamily);
    }
    s.readerFamily = family;
    expectDelta(c, 'swapOuts', stats().swapOuts - before.swapOuts, pages);
  };

  /** Untimed: every page of the case's two domains, read whole, equals what was written; nothing faults. */
  const verify = (c: SwapInCase): void => {
    const s = state.get(c)!;
    const ins0 = stats().swapIns + stats().swapInsCached + stats().swapInsDeduped;
    for (const [dom, family] of [[s.reader, s.readerFamily], [s.holder, s.holderFamily]] as const) {
      for (let i = 0; i < pages; i++) {
        host.readPage(dom, asGfn(i), 0, dst, 0, PAGE_SIZE);
        const want = contents.at(i, family);
        if (!dstBytes.equals(want)) {
          const k = want.findIndex((b, j) => b !== dst[j]);
          throw new Error(`swap-in bench, ${c}: dom ${dom} gfn ${i} reads byte ${dst[k]} at offset ${k}, ${want[k]} was written`);
        }
        pagesVerified++;
      }
    }
    const s1 = stats();
    expectDelta(c, 'swap-ins while verifying', s1.swapIns + s1.swapInsCached + s1.swapInsDeduped - ins0, 0);
  };

  /**
   * One round: every case prepared (untimed), then their faults timed in chunks of `CHUNK` pages,
   * the cases taking turns chunk by chunk (a few hundred microseconds each), so that whatever
   * else runs on the machine slows each case alike; then every case verified. Returns each
   * case's milliseconds of faults.
   */
  const round = (): Record<SwapInCase, number> => {
    for (const c of SWAP_IN_CASES) prepare(c);
    const ms = { plain: 0, deduped: 0, cached: 0 };
    const before = stats();
    const counts = { plain: { swapIns: 0, swapInsDeduped: 0, swapInsCached: 0 }, deduped: { swapIns: 0, swapInsDeduped: 0, swapInsCached: 0 }, cached: { swapIns: 0, swapInsDeduped: 0, swapInsCached: 0 } };
    let wrong = 0;
    for (let first = 0; first < pages; first += CHUNK) {
      const last = Math.min(pages, first + CHUNK);
      for (const c of order) {
        const { reader, readerFamily } = state.get(c)!;
        const s0 = stats();
        const t0 = performance.now();
        for (let i = first; i < last; i++) {
          host.readPage(reader, asGfn(i), 0, dst, 0, PAGE_SIZE);
          if (dstWords[0] !== i || dstWords[1] !== readerFamily) wrong++;
        }
        ms[c] += performance.now() - t0;
        const s1 = stats();
        counts[c].swapIns += s1.swapIns - s0.swapIns;
        counts[c].swapInsDeduped += s1.swapInsDeduped - s0.swapInsDeduped;
        counts[c].swapInsCached += s1.swapInsCached - s0.swapInsCached;
      }
    }
    if (wrong > 0) throw new Error(`swap-in bench: ${wrong} pages read back with the wrong content`);
    const end = stats();
    for (const c of SWAP_IN_CASES) {
      expectDelta(c, 'swapIns (slot reads)', counts[c].swapIns, c === 'cached' ? 0 : pages);
      expectDelta(c, 'swapInsDeduped', counts[c].swapInsDeduped, c === 'deduped' ? pages : 0);
      expectDelta(c, 'swapInsCached', counts[c].swapInsCached, c === 'cached' ? pages : 0);
      verify(c);
    }
    for (const k of ['swapInFailures', 'evictionFailures', 'swapOuts'] as const) {
      if (end[k] !== before[k]) throw new Error(`swap-in bench: ${k} grew by ${end[k] - before[k]} while the readers faulted`);
    }
    return ms;
  };

  // Warm-up: two rounds, untimed but checked; the second's time sets the rounds per sample.
  let order: readonly SwapInCase[] = SWAP_IN_CASES;
  round();
  const warm = round();
  const slowest = Math.max(...SWAP_IN_CASES.map((c) => warm[c]));
  const rounds = Math.min(opts.maxRounds ?? Infinity, Math.max(1, Math.ceil((opts.minSampleMs ?? 50) / Math.max(slowest, 1e-3))));
  throwProblems('audit after the swap-in warm-up', host.audit());
  const faultsPerS = { plain: [] as number[], deduped: [] as number[], cached: [] as number[] };
  for (let r = 0; r < repeats; r++) {
    const ms = { plain: 0, deduped: 0, cached: 0 };
    for (let n = 0; n < rounds; n++) {
      // Which case goes first in each chunk rotates from round to round.
      order = SWAP_IN_CASES.map((_, k) => SWAP_IN_CASES[(k + r * rounds + n) % SWAP_IN_CASES.length]!);
      const t = round();
      for (const c of SWAP_IN_CASES) ms[c] += t[c];
    }
    for (const c of SWAP_IN_CASES) faultsPerS[c].push((pages * rounds) / (ms[c] / 1000));
    throwProblems(`audit after swap-in repeat ${r + 1}`, host.audit());
  }
  const duplicateFrames = host.duplicateFrames();
  if (duplicateFrames !== 0) throw new Error(`swap-in bench: ${duplicateFrames} duplicate frames at the end (RAM should hold each content once)`);
  const ratio = (a: readonly number[]): number[] => a.map((x, i) => x / faultsPerS.plain[i]!);
  return { pages, repeats, faultsPerS, ratios: { deduped: ratio(faultsPerS.deduped), cached: ratio(faultsPerS.cached) }, rounds, pagesVerified, duplicateFrames };
}
