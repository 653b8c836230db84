import type { HypercallClient } from '@pagevisor/hypercall-abi';
import {
  HypervisorError,
  mibToPages,
  NS_PER_MS,
  NS_PER_S,
  PAGE_SIZE,
  Prng,
  type DomId,
  type Gfn,
  type GuestMemoryAccess,
} from '@pagevisor/types';
import { fillImagePage, fillPrivatePage, imageSeed, PAGE_WORDS } from './page-content.js';
import type { GuestSpec } from './scenario.js';

/** The hypercalls a synthetic guest makes: only populate_physmap so far. */
export type GuestHypercalls = Pick<HypercallClient, 'populatePhysmap'>;

/** How a guest reaches the hypervisor: loads/stores that may fault, and hypercalls. */
export interface GuestPorts {
  /** Guest loads and stores. */
  readonly memory: GuestMemoryAccess;
  /** Memory hypercalls, issued as this guest. */
  readonly hypercalls: GuestHypercalls;
}

/** What a guest needs of its spec (a {@link GuestSpec} has all of it). */
export type SyntheticGuestSpec = Pick<
  GuestSpec,
  'memoryMiB' | 'image' | 'zeroFraction' | 'writeRatePagesPerS' | 'writeBytes' | 'wholePageWriteFraction' | 'bootPagesPerS'
>;

/** Timing options of a {@link SyntheticGuest}. */
export interface SyntheticGuestOptions {
  /** Simulated time the guest starts booting, in ns (default 0). */
  readonly startNs?: number;
  /** Simulated ns of steady state after boot (default 0: the guest is done once booted). */
  readonly durationNs?: number;
  /** Gfns per populate_physmap hypercall and pages per boot step (default 512). */
  readonly batchPages?: number;
  /** Simulated ns of steady-state writes done by one step (default 10 ms). */
  readonly writeQuantumNs?: number;
}

/** Defaults of {@link SyntheticGuestOptions}. */
export const DEFAULT_SYNTHETIC_GUEST_OPTIONS: Required<SyntheticGuestOptions> = Object.freeze({
  startNs: 0,
  durationNs: 0,
  batchPages: 512,
  writeQuantumNs: 10 * NS_PER_MS,
});

/** Where a guest is in its life. */
export type GuestState = 'booting' | 'running' | 'done' | 'failed';

/** Why a guest stopped: the hypervisor refused one of its operations. */
export interface GuestFailure {
  /** The refused operation, e.g. `"populate_physmap"` or `"write"`. */
  readonly op: string;
  /** Errno name, e.g. `"ENOMEM"`. */
  readonly errno: string;
  /** The error's message. */
  readonly message: string;
  /** Simulated time of the failure, in ns. */
  readonly atNs: number;
}

/** What kind of content a guest page holds after boot. */
export const PageKind = { image: 0, zero: 1, private: 2 } as const;
/** A value of {@link PageKind}. */
export type PageKind = (typeof PageKind)[keyof typeof PageKind];

/**
 * A guest with synthetic memory content, driven by an event loop.
 *
 * Layout: gfns `[0, imagePages)` hold pages `0..` of its OS image (identical in every guest with
 * the same image id), the next `zeroPages` stay zero, the rest hold private random data from the
 * guest's own seeded {@link Prng}.
 *
 * Boot populates every gfn with populate_physmap hypercalls in batches and writes the image and
 * private pages whole, at `bootPagesPerS`. Then, for `durationNs`, it writes `writeRatePagesPerS`
 * pages: each write picks a gfn at random and either changes `writeBytes` random bytes at a random
 * offset (a partial write: a shared page takes a copy-on-write fault) or, with probability
 * `wholePageWriteFraction`, replaces the whole page with new private data.
 *
 * A {@link HypervisorError} from any operation (e.g. ENOMEM when the host runs out of frames)
 * marks the guest `failed` and stops it. Nothing is allocated per page.
 */
export class SyntheticGuest {
  /** The guest's domain. */
  readonly domId: DomId;
  /** Guest pages. */
  readonly pages: number;
  /** Pages holding the OS image (gfns `0 .. imagePages - 1`). */
  readonly imagePages: number;
  /** Pages left zero (the gfns after the image). */
  readonly zeroPages: number;
  /** Pages of private data (the rest). */
  readonly privatePages: number;
  /** Simulated time boot ends, in ns. */
  readonly bootEndNs: number;
  /** Simulated time the guest is done, in ns (unless it fails first). */
  readonly endNs: number;

  private readonly ports: GuestPorts;
  private readonly prng: Prng;
  private readonly imageSeedValue: number;
  private readonly startNs: number;
  private readonly bootNsPerPage: number;
  private readonly writeNsPerWrite: number;
  private readonly writesTotal: number;
  private readonly writeBytes: number;
  private readonly wholePageWriteFraction: number;
  private readonly writeQuantumNs: number;
  private readonly batch: number[];
  private readonly scratch32 = new Uint32Array(PAGE_WORDS);
  private readonly scratch8 = new Uint8Array(this.scratch32.buffer);

  private stateValue: GuestState = 'booting';
  private failureValue: GuestFailure | null = null;
  private bootCursor = 0;
  private writesDoneValue = 0;
  private wholePageWritesValue = 0;

  constructor(spec: SyntheticGuestSpec, domId: DomId, seed: number, ports: GuestPorts, options: SyntheticGuestOptions = {}) {
    const o = { ...DEFAULT_SYNTHETIC_GUEST_OPTIONS, ...options };
    if (!(Number.isInteger(o.batchPages) && o.batchPages >= 1)) {
      throw new RangeError(`SyntheticGuest: batchPages must be a positive integer, got ${o.batchPages}`);
    }
    if (!(o.durationNs >= 0 && o.startNs >= 0 && o.writeQuantumNs > 0)) {
      throw new RangeError('SyntheticGuest: startNs and durationNs must be >= 0 and writeQuantumNs > 0');
    }
    if (!(spec.bootPagesPerS > 0)) throw new RangeError('SyntheticGuest: bootPagesPerS must be > 0');
    this.domId = domId;
    this.ports = ports;
    this.prng = new Prng(seed);
    this.pages = mibToPages(spec.memoryMiB);
    this.imagePages = Math.floor(spec.image.fraction * this.pages);
    this.zeroPages = Math.min(Math.floor(spec.zeroFraction * this.pages), this.pages - this.imagePages);
    this.privatePages = this.pages - this.imagePages - this.zeroPages;
    this.imageSeedValue = imageSeed(spec.image.id);
    this.startNs = o.startNs;
    this.bootNsPerPage = NS_PER_S / spec.bootPagesPerS;
    this.bootEndNs = o.startNs + Math.round(this.pages * this.bootNsPerPage);
    this.endNs = this.bootEndNs + o.durationNs;
    this.writeNsPerWrite = spec.writeRatePagesPerS > 0 ? NS_PER_S / spec.writeRatePagesPerS : Infinity;
    this.writesTotal = spec.writeRatePagesPerS > 0 ? Math.floor((o.durationNs * spec.writeRatePagesPerS) / NS_PER_S) : 0;
    this.writeBytes = spec.writeBytes;
    this.wholePageWriteFraction = spec.wholePageWriteFraction;
    this.writeQuantumNs = o.writeQuantumNs;
    this.batch = new Array<number>(Math.min(o.batchPages, Math.max(this.pages, 1))).fill(0);
  }

  /** Where the guest is in its life. */
  get state(): GuestState {
    return this.stateValue;
  }

  /** Why the guest failed, or null. */
  get failure(): GuestFailure | null {
    return this.failureValue;
  }

  /** Pages populated and filled so far. */
  get pagesBooted(): number {
    return this.bootCursor;
  }

  /** Steady-state writes done so far. */
  get writesDone(): number {
    return this.writesDoneValue;
  }

  /** Of those, writes that replaced a whole page. */
  get wholePageWrites(): number {
    return this.wholePageWritesValue;
  }

  /** Steady-state writes the guest will do if it does not fail. */
  get writesPlanned(): number {
    return this.writesTotal;
  }

  /** Page operations done so far (pages booted + writes), for progress reports. */
  get opsDone(): number {
    return this.bootCursor + this.writesDoneValue;
  }

  /** What page `gfn` holds after boot. */
  kindOf(gfn: number): PageKind {
    if (gfn < this.imagePages) return PageKind.image;
    if (gfn < this.imagePages + this.zeroPages) return PageKind.zero;
    return PageKind.private;
  }

  /** Simulated time of the guest's next step in ns; Infinity once done or failed. */
  nextEventNs(): number {
    switch (this.stateValue) {
      case 'booting':
        return this.startNs + Math.floor(this.bootCursor * this.bootNsPerPage);
      case 'running':
        return this.writesDoneValue < this.writesTotal
          ? this.bootEndNs + Math.floor(this.writesDoneValue * this.writeNsPerWrite)
          : this.endNs;
      default:
        return Infinity;
    }
  }

  /**
   * Does the batch due at `nowNs` (the value {@link nextEventNs} returned): one populate batch
   * of boot, the writes of one write quantum, or the final step that marks the guest done.
   */
  step(nowNs: number): void {
    try {
      if (this.stateValue === 'booting') this.bootBatch();
      else if (this.stateValue === 'running') this.writeQuantum(nowNs);
    } catch (e) {
      if (!(e instanceof HypervisorError)) throw e;
      this.stateValue = 'failed';
      this.failureValue = { op: e.op, errno: e.errnoName, message: e.message, atNs: nowNs };
    }
  }

  private bootBatch(): void {
    const first = this.bootCursor;
    const n = Math.min(this.batch.length, this.pages - first);
    const gfns = this.batch;
    // Only the last batch is shorter; shrinking the reused array once is not per-page allocation.
    if (gfns.length !== n) gfns.length = n;
    for (let i = 0; i < n; i++) gfns[i] = first + i;
    const done = this.ports.hypercalls.populatePhysmap(this.domId, gfns);
    if (done !== n) {
      throw new HypervisorError('ENOMEM', 'populate_physmap', `populated ${done} of ${n} pages from gfn ${first}`);
    }
    const zeroStart = this.imagePages;
    const zeroEnd = this.imagePages + this.zeroPages;
    for (let gfn = first; gfn < first + n; gfn++) {
      if (gfn < zeroStart) fillImagePage(this.scratch32, this.imageSeedValue, gfn);
      else if (gfn >= zeroEnd) fillPrivatePage(this.scratch32, this.prng);
      else continue; // zero pages stay as populated
      this.ports.memory.writePage(this.domId, gfn as Gfn, 0, this.scratch8, 0, PAGE_SIZE);
      // Count each page once it is in place, so a failure mid-batch reports how far boot got.
      this.bootCursor = gfn + 1;
    }
    this.bootCursor = first + n;
    if (this.bootCursor === this.pages) this.stateValue = this.writesTotal > 0 || this.endNs > this.bootEndNs ? 'running' : 'done';
  }

  private writeQuantum(nowNs: number): void {
    const until = nowNs + this.writeQuantumNs;
    const prng = this.prng;
    const memory = this.ports.memory;
    while (this.writesDoneValue < this.writesTotal) {
      const t = this.bootEndNs + Math.floor(this.writesDoneValue * this.writeNsPerWrite);
      if (t >= until) return;
      const gfn = prng.nextInt(this.pages) as Gfn;
      if (prng.nextFloat() < this.wholePageWriteFraction) {
        fillPrivatePage(this.scratch32, prng);
        memory.writePage(this.domId, gfn, 0, this.scratch8, 0, PAGE_SIZE);
        this.wholePageWritesValue++;
      } else {
        const len = this.writeBytes;
        const offset = prng.nextInt(PAGE_SIZE - len + 1);
        prng.fillU32(this.scratch32, 0, (len + 3) >>> 2);
        memory.writePage(this.domId, gfn, offset, this.scratch8, 0, len);
      }
      this.writesDoneValue++;
    }
    // All writes done: the last step, at endNs, only marks the guest done.
    if (nowNs >= this.endNs) this.stateValue = 'done';
  }
}
