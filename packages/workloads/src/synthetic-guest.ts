import { GuestShim, type GuestShimHypercalls } from '@pagevisor/hypercall-abi';
import {
  HypervisorError,
  invariant,
  mibToPages,
  NS_PER_MS,
  NS_PER_S,
  mixSeed,
  PAGE_SIZE,
  Prng,
  type DomId,
  type Gfn,
  type GuestMemoryAccess,
  type HypercallPort,
} from '@pagevisor/types';
import { openGuestImage, type GuestImage } from './images/guest-image.js';
import { ImageError } from './images/image-error.js';
import type { ImageReader } from './images/image-reader.js';
import { ExpectedContent, type ContentFingerprints } from './expected-content.js';
import { fillImagePage, fillPrivatePageFromSeeds, imageSeed, PAGE_WORDS } from './page-content.js';
import type { GuestSpec } from './scenario.js';

/** The hypercalls a synthetic guest makes, all through its {@link GuestShim}. */
export type GuestHypercalls = GuestShimHypercalls;

/** How a guest reaches the hypervisor: loads/stores that may fault, and hypercalls. */
export interface GuestPorts {
  /** Guest loads and stores. */
  readonly memory: GuestMemoryAccess;
  /** Memory hypercalls, issued as this guest (its shim issues them). */
  readonly hypercalls: GuestHypercalls;
  /** The toolstack's port, for its shim to fork through (without it, a fork is EPERM). */
  readonly control?: HypercallPort;
  /**
   * Where the guest's scratch page (each page it writes is built there) comes from: the machine's
   * `pageBuffer`, so that the hypervisor hashes the page in place. Default: a plain buffer.
   */
  readonly pageBuffer?: (pages: number) => Uint8Array;
}

/** What a guest needs of its spec (a {@link GuestSpec} has all of it). */
export type SyntheticGuestSpec = Pick<
  GuestSpec,
  'memoryMiB' | 'image' | 'zeroFraction' | 'writeRatePagesPerS' | 'writeBytes' | 'wholePageWriteFraction' | 'bootPagesPerS'
> &
  Partial<Pick<GuestSpec, 'readRatePagesPerS' | 'workingSet'>>;

/** Timing options of a {@link SyntheticGuest}. */
export interface SyntheticGuestOptions {
  /** Simulated time the guest starts booting, in ns (default 0). */
  readonly startNs?: number;
  /** Simulated ns of steady state after boot (default 0: the guest is done once booted). */
  readonly durationNs?: number;
  /** Pages per boot step, mapped by one mmap (one populate_physmap hypercall) (default 512). */
  readonly batchPages?: number;
  /** Simulated ns of steady-state writes done by one step (default 10 ms). */
  readonly writeQuantumNs?: number;
  /** Simulated ns a paused guest waits before it retries (default 1 ms). */
  readonly retryNs?: number;
  /** Consecutive pauses (failed retries) after which the guest fails (default 16). */
  readonly maxConsecutivePauses?: number;
  /**
   * Keep an {@link ExpectedContent} of what every page should hold (`content`), updated after
   * each store succeeds, so the pages can be read back and compared (default false: `content`
   * is null and nothing is recorded). It draws nothing from the guest's streams: the guest does
   * exactly the same with or without it.
   */
  readonly trackContent?: boolean;
  /**
   * The machine's frames hold fingerprints, computed with these functions (`Fingerprinter` of
   * `@pagevisor/machine`): with `trackContent`, {@link content} predicts what the guest reads
   * back there (see {@link ExpectedContent}). Default null: frames hold bytes. The guest itself
   * does exactly the same either way.
   */
  readonly contentFingerprints?: ContentFingerprints | null;
}

/** Defaults of {@link SyntheticGuestOptions}. */
export const DEFAULT_SYNTHETIC_GUEST_OPTIONS: Required<SyntheticGuestOptions> = Object.freeze({
  startNs: 0,
  durationNs: 0,
  batchPages: 512,
  writeQuantumNs: 10 * NS_PER_MS,
  retryNs: NS_PER_MS,
  maxConsecutivePauses: 16,
  trackContent: false,
  contentFingerprints: null,
});

/**
 * Errnos that pause a guest instead of failing it: EIO (a swap-in failed; the hypervisor paused
 * the domain, the page is still in swap) and EAGAIN (an access to a paused domain).
 */
export const PAUSING_ERRNOS: ReadonlySet<string> = new Set(['EIO', 'EAGAIN']);

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

/** Why a guest paused: an operation refused with EIO or EAGAIN; it retries after `retryNs`. */
export type GuestPause = GuestFailure;

const NO_ACCESS = 0;
const PARTIAL_WRITE = 1;
const WHOLE_WRITE = 2;
const READ = 3;
/** Bytes read by one steady-state read. */
const READ_BYTES = 64;

/** What kind of content a guest page holds after boot. */
export const PageKind = { image: 0, zero: 1, private: 2 } as const;
/** A value of {@link PageKind}. */
export type PageKind = (typeof PageKind)[keyof typeof PageKind];

/**
 * A guest with synthetic memory content, driven by an event loop.
 *
 * Layout: gfns `[0, imagePages)` hold pages `0..` of its OS image (identical in every guest with
 * the same image id), the next `zeroPages` stay zero, the rest hold private random data from the
 * guest's own seeded {@link Prng}. With a file image (`image: { path, format }`) the constructor
 * opens and validates the file (an {@link ImageError} if it is malformed, a RangeError if it
 * spans more pages than the guest has), `imagePages` is its gfn span, and boot writes the
 * file's pages at their gfns, read a chunk at a time; its holes stay zero as populated. A file
 * that changes or vanishes during boot fails the guest (op `read_image`, errno `EIO`).
 *
 * Boot maps the guest's RAM through its {@link GuestShim} (`shim`), one mmap with MAP_POPULATE
 * (one populate_physmap hypercall) a batch, from gfn 0 up, and writes the image and private pages
 * whole, at `bootPagesPerS`. Loads and stores go straight to `ports.memory`. Then, for `durationNs`, it writes `writeRatePagesPerS`
 * pages: each write picks a gfn at random and either changes `writeBytes` random bytes at a random
 * offset (a partial write: a shared page takes a copy-on-write fault) or, with probability
 * `wholePageWriteFraction`, replaces the whole page with new private data; it also reads
 * `readRatePagesPerS` pages (64 bytes each; writes go first at equal times). With a `workingSet`
 * those gfns are drawn from a window of `fraction` of the pages (wrapping at the end) whose start
 * moves to a seeded position every `moveEveryS`; without one, from every page.
 *
 * An EIO or EAGAIN {@link HypervisorError} (a failed swap-in, a paused domain) pauses the guest:
 * {@link paused} is true, {@link lastPause} says why, and its next event, `retryNs` later, retries
 * the same operation (the same gfn and bytes); after `maxConsecutivePauses` pauses in a row it
 * fails. Any other HypervisorError (e.g. ENOMEM when the host runs out of frames and swap) marks
 * the guest `failed` and stops it. Nothing is allocated per page.
 *
 * With `trackContent`, {@link content} records what each page should hold after every store that
 * succeeded (image pages by gfn, private pages by their two seeds, partial writes as records), so
 * that a simulator can read every page back and compare (`pagevisor run --verify`).
 */
export class SyntheticGuest {
  /** The guest's domain. */
  readonly domId: DomId;
  /** Guest pages. */
  readonly pages: number;
  /** Pages holding the OS image (gfns `0 .. imagePages - 1`). */
  readonly imagePages: number;
  /** The file image booted at gfns `[0, imagePages)`, or null for a synthetic image. */
  readonly image: GuestImage | null;
  /** Pages left zero (the gfns after the image). */
  readonly zeroPages: number;
  /** Pages of private data (the rest). */
  readonly privatePages: number;
  /** Simulated time boot ends, in ns. */
  readonly bootEndNs: number;
  /** Simulated time the guest is done, in ns (unless it fails first). */
  readonly endNs: number;
  /**
   * The guest kernel's memory shim over gfns `[0, pages)`: boot maps the RAM with it; whatever
   * else changes the guest's reservation (a scenario's steps) goes through it too, so that its
   * regions stay the guest's.
   */
  readonly shim: GuestShim;
  /**
   * What every page should hold, when the guest was made with `trackContent` (null otherwise):
   * the guest records its own stores; whoever else writes its memory (a scenario's steps) records
   * theirs.
   */
  readonly content: ExpectedContent | null;

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
  private readonly readNsPerRead: number;
  private readonly readsTotal: number;
  private readonly wsPages: number;
  private readonly wsMoveNs: number;
  private readonly wsSeed: number;
  private readonly retryNs: number;
  private readonly maxConsecutivePauses: number;
  private readonly batchPages: number;
  /** Reads the file image while boot is in it; null before and after (its chunk is freed). */
  private imageReader: ImageReader | null = null;
  private readonly readBuf = new Uint8Array(READ_BYTES);
  private readonly scratch32: Uint32Array;
  private readonly scratch8: Uint8Array;

  private stateValue: GuestState = 'booting';
  private failureValue: GuestFailure | null = null;
  private bootCursor = 0;
  private writesDoneValue = 0;
  private wholePageWritesValue = 0;
  private readsDoneValue = 0;
  /** End of the boot batch whose gfns are populated (fills may still be due). */
  private batchEnd = 0;
  /** Gfn whose private content is in the scratch page, not yet written (-1: none). */
  private filledGfn = -1;
  /** Seeds of the private page in the scratch page (boot, or a pending whole-page write). */
  private seed0 = 0;
  private seed1 = 0;
  /** The access drawn and not yet done (retried after a pause). */
  private pendingKind = NO_ACCESS;
  private pendingGfn = 0;
  private pendingOffset = 0;
  private pendingLength = 0;
  private wsWindow = -1;
  private wsStart = 0;
  private pausedValue = false;
  private resumeNs = 0;
  private consecutivePauses = 0;
  private pausesValue = 0;
  private lastPauseValue: GuestPause | null = null;

  constructor(spec: SyntheticGuestSpec, domId: DomId, seed: number, ports: GuestPorts, options: SyntheticGuestOptions = {}) {
    const o = { ...DEFAULT_SYNTHETIC_GUEST_OPTIONS, ...options };
    if (!(Number.isInteger(o.batchPages) && o.batchPages >= 1)) {
      throw new RangeError(`SyntheticGuest: batchPages must be a positive integer, got ${o.batchPages}`);
    }
    if (!(o.durationNs >= 0 && o.startNs >= 0 && o.writeQuantumNs > 0 && o.retryNs > 0)) {
      throw new RangeError('SyntheticGuest: startNs and durationNs must be >= 0, writeQuantumNs and retryNs > 0');
    }
    if (!(Number.isInteger(o.maxConsecutivePauses) && o.maxConsecutivePauses >= 0)) {
      throw new RangeError(`SyntheticGuest: maxConsecutivePauses must be an integer >= 0, got ${o.maxConsecutivePauses}`);
    }
    if (!(spec.bootPagesPerS > 0)) throw new RangeError('SyntheticGuest: bootPagesPerS must be > 0');
    this.domId = domId;
    this.ports = ports;
    this.scratch8 = ports.pageBuffer?.(1) ?? new Uint8Array(PAGE_SIZE);
    if (this.scratch8.length !== PAGE_SIZE || this.scratch8.byteOffset % 4 !== 0) {
      throw new RangeError(`SyntheticGuest: pageBuffer(1) must give ${PAGE_SIZE} bytes at a 4-byte aligned offset`);
    }
    this.scratch32 = new Uint32Array(this.scratch8.buffer, this.scratch8.byteOffset, PAGE_WORDS);
    this.prng = new Prng(seed);
    this.pages = mibToPages(spec.memoryMiB);
    this.image = fileImageOf(spec, this.pages);
    this.imagePages = this.image === null ? Math.floor(spec.image.fraction * this.pages) : this.image.pages;
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
    const readRate = spec.readRatePagesPerS ?? 0;
    this.readNsPerRead = readRate > 0 ? NS_PER_S / readRate : Infinity;
    this.readsTotal = readRate > 0 ? Math.floor((o.durationNs * readRate) / NS_PER_S) : 0;
    const ws = spec.workingSet;
    this.wsPages = ws === undefined ? this.pages : Math.max(1, Math.min(this.pages, Math.round(ws.fraction * this.pages)));
    this.wsMoveNs = ws === undefined ? Infinity : Math.max(1, Math.round(ws.moveEveryS * NS_PER_S));
    // Its own seed, so the window's moves draw nothing from the guest's stream.
    this.wsSeed = mixSeed(seed, 0x5753);
    this.retryNs = o.retryNs;
    this.maxConsecutivePauses = o.maxConsecutivePauses;
    this.batchPages = o.batchPages;
    this.shim = new GuestShim(ports.hypercalls, domId, { gfnCount: this.pages, batchPages: o.batchPages, ...(ports.control === undefined ? {} : { control: ports.control }) });
    this.content = o.trackContent ? new ExpectedContent(this.pages, { imageSeed: this.imageSeedValue, image: this.image, fingerprints: o.contentFingerprints }) : null;
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

  /** Steady-state reads done so far. */
  get readsDone(): number {
    return this.readsDoneValue;
  }

  /** Steady-state reads the guest will do if it does not fail. */
  get readsPlanned(): number {
    return this.readsTotal;
  }

  /** Pages in the working-set window (every page without a working set). */
  get workingSetPages(): number {
    return this.wsPages;
  }

  /** True while the guest waits to retry an operation refused with EIO or EAGAIN. */
  get paused(): boolean {
    return this.pausedValue;
  }

  /** Times the guest paused so far. */
  get pauses(): number {
    return this.pausesValue;
  }

  /** Why the guest last paused, or null. */
  get lastPause(): GuestPause | null {
    return this.lastPauseValue;
  }

  /** Steady-state writes the guest will do if it does not fail. */
  get writesPlanned(): number {
    return this.writesTotal;
  }

  /** Page operations done so far (pages booted + writes), for progress reports. */
  get opsDone(): number {
    return this.bootCursor + this.writesDoneValue + this.readsDoneValue;
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
        if (this.pausedValue) return this.resumeNs;
        return this.startNs + Math.floor(this.bootCursor * this.bootNsPerPage);
      case 'running': {
        if (this.pausedValue) return this.resumeNs;
        const t = Math.min(this.nextWriteNs(), this.nextReadNs());
        return t === Infinity ? this.endNs : t;
      }
      default:
        return Infinity;
    }
  }

  private nextWriteNs(): number {
    return this.writesDoneValue < this.writesTotal ? this.bootEndNs + Math.floor(this.writesDoneValue * this.writeNsPerWrite) : Infinity;
  }

  private nextReadNs(): number {
    return this.readsDoneValue < this.readsTotal ? this.bootEndNs + Math.floor(this.readsDoneValue * this.readNsPerRead) : Infinity;
  }

  /**
   * Does the batch due at `nowNs` (the value {@link nextEventNs} returned): one populate batch
   * of boot, the writes of one write quantum, or the final step that marks the guest done.
   */
  step(nowNs: number): void {
    this.pausedValue = false;
    try {
      if (this.stateValue === 'booting') this.bootBatch();
      else if (this.stateValue === 'running') this.writeQuantum(nowNs);
    } catch (e) {
      if (e instanceof ImageError) {
        this.imageReader = null;
        this.stateValue = 'failed';
        this.failureValue = { op: 'read_image', errno: 'EIO', message: e.message, atNs: nowNs };
        return;
      }
      if (!(e instanceof HypervisorError)) throw e;
      const record = { op: e.op, errno: e.errnoName, message: e.message, atNs: nowNs };
      if (PAUSING_ERRNOS.has(e.errnoName) && this.consecutivePauses < this.maxConsecutivePauses) {
        this.consecutivePauses++;
        this.pausesValue++;
        this.pausedValue = true;
        this.resumeNs = nowNs + this.retryNs;
        this.lastPauseValue = record;
        return;
      }
      this.stateValue = 'failed';
      this.failureValue = record;
    }
  }

  private bootBatch(): void {
    const first = this.bootCursor;
    // A retry after a pause resumes the batch it was in; its gfns are mapped already.
    if (first >= this.batchEnd) {
      const n = Math.min(this.batchPages, this.pages - first);
      // A refused mmap maps nothing, so a retry maps the same batch again.
      const at = this.shim.mmap(n, { populate: true });
      invariant(at === first, `SyntheticGuest: dom ${this.domId} boot batch mapped at gfn ${at}, not ${first}`);
      this.batchEnd = first + n;
      this.content?.populate(first, n);
    }
    const end = this.batchEnd;
    const zeroStart = this.imagePages;
    const zeroEnd = this.imagePages + this.zeroPages;
    for (let gfn = first; gfn < end; gfn++) {
      if (gfn < zeroStart) {
        if (this.image === null) fillImagePage(this.scratch32, this.imageSeedValue, gfn);
        else {
          this.imageReader ??= this.image.reader();
          // A hole in the image reads zeros, as the page already does.
          if (!this.imageReader.readPage(gfn, this.scratch8, 0)) continue;
        }
      } else if (gfn >= zeroEnd) {
        // A retried page keeps the content drawn for it: the stream is drawn once a page.
        if (this.filledGfn !== gfn) this.drawPrivatePage();
        this.filledGfn = gfn;
      } else continue; // zero pages stay as populated
      this.ports.memory.writePage(this.domId, gfn as Gfn, 0, this.scratch8, 0, PAGE_SIZE);
      const content = this.content;
      if (content !== null) {
        if (gfn >= zeroEnd) content.setPrivatePage(gfn, this.seed0, this.seed1);
        else if (this.image === null) content.setImagePage(gfn);
        else content.setFilePage(gfn);
      }
      this.filledGfn = -1;
      this.consecutivePauses = 0;
      // Count each page once it is in place, so a failure mid-batch reports how far boot got.
      this.bootCursor = gfn + 1;
    }
    this.bootCursor = end;
    if (end >= zeroStart) this.imageReader = null;
    if (this.bootCursor === this.pages) this.stateValue = this.writesTotal > 0 || this.endNs > this.bootEndNs ? 'running' : 'done';
  }

  private writeQuantum(nowNs: number): void {
    const until = nowNs + this.writeQuantumNs;
    const prng = this.prng;
    if (this.pendingKind !== NO_ACCESS) this.doPending();
    for (;;) {
      const tw = this.nextWriteNs();
      const tr = this.nextReadNs();
      const t = tw <= tr ? tw : tr;
      if (t === Infinity || t >= until) break;
      const gfn = this.pickGfn(t);
      this.pendingGfn = gfn;
      if (tw <= tr) {
        if (prng.nextFloat() < this.wholePageWriteFraction) {
          this.drawPrivatePage();
          this.pendingKind = WHOLE_WRITE;
        } else {
          const len = this.writeBytes;
          this.pendingOffset = prng.nextInt(PAGE_SIZE - len + 1);
          this.pendingLength = len;
          prng.fillU32(this.scratch32, 0, (len + 3) >>> 2);
          this.pendingKind = PARTIAL_WRITE;
        }
      } else {
        this.pendingKind = READ;
      }
      this.doPending();
    }
    // All accesses done: the last step, at endNs, only marks the guest done.
    if (nowNs >= this.endNs && this.nextWriteNs() === Infinity && this.nextReadNs() === Infinity) this.stateValue = 'done';
  }

  /**
   * Draws a private page into the scratch page from the next two words of the guest's stream, as
   * `fillPrivatePage` does, keeping the two seeds for {@link content}.
   */
  private drawPrivatePage(): void {
    this.seed0 = this.prng.nextU32();
    this.seed1 = this.prng.nextU32();
    fillPrivatePageFromSeeds(this.scratch32, this.seed0, this.seed1);
  }

  /** Gfn of the access due at `t`: anywhere, or inside the working-set window of `t`. */
  private pickGfn(t: number): number {
    if (this.wsMoveNs === Infinity) return this.prng.nextInt(this.pages);
    const window = Math.floor((t - this.bootEndNs) / this.wsMoveNs);
    if (window !== this.wsWindow) {
      this.wsWindow = window;
      this.wsStart = mixSeed(this.wsSeed, window) % this.pages;
    }
    const g = this.wsStart + this.prng.nextInt(this.wsPages);
    return g >= this.pages ? g - this.pages : g;
  }

  /** Does the access drawn (kept so a pause retries exactly it) and counts it. */
  private doPending(): void {
    const memory = this.ports.memory;
    const gfn = this.pendingGfn as Gfn;
    switch (this.pendingKind) {
      case WHOLE_WRITE:
        memory.writePage(this.domId, gfn, 0, this.scratch8, 0, PAGE_SIZE);
        this.content?.setPrivatePage(gfn, this.seed0, this.seed1);
        this.wholePageWritesValue++;
        this.writesDoneValue++;
        break;
      case PARTIAL_WRITE:
        memory.writePage(this.domId, gfn, this.pendingOffset, this.scratch8, 0, this.pendingLength);
        this.content?.write(gfn, this.pendingOffset, this.scratch8, 0, this.pendingLength);
        this.writesDoneValue++;
        break;
      case READ:
        memory.readPage(this.domId, gfn, 0, this.readBuf, 0, READ_BYTES);
        this.readsDoneValue++;
        break;
    }
    this.pendingKind = NO_ACCESS;
    this.consecutivePauses = 0;
  }
}

/** Opens the spec's file image, if it has one, and checks that it fits in `pages`. */
function fileImageOf(spec: SyntheticGuestSpec, pages: number): GuestImage | null {
  const { path, format } = spec.image;
  if (path === undefined) return null;
  if (format === undefined) throw new RangeError(`SyntheticGuest: image ${path} has no format; give "raw", "elf" or "proc"`);
  const image = openGuestImage(path, format);
  if (image.pages > pages) {
    throw new RangeError(
      `SyntheticGuest: ${format} image ${path} spans ${image.pages} pages (gfns 0 .. ${image.pages - 1}), more than the guest's ${pages} pages (${spec.memoryMiB} MiB); the guest needs at least ${Math.ceil(image.pages / mibToPages(1))} MiB`,
    );
  }
  return image;
}
