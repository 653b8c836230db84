import { PAGE_SIZE } from '@pagevisor/types';
import type { GuestImage } from './images/guest-image.js';
import type { ImageReader } from './images/image-reader.js';
import { fillImagePage, fillPrivatePageFromSeeds, fillSeededPage, PAGE_WORDS } from './page-content.js';

/** What a page of an {@link ExpectedContent} holds, before the partial writes recorded on top of it. */
export const ExpectedKind = {
  /** Not populated: a guest load is refused (EINVAL). */
  unpopulated: 0,
  /** Populated and never written: zeros. */
  zero: 1,
  /** Page `gfn` of the guest's synthetic OS image. */
  image: 2,
  /** Page `gfn` of the guest's image file (zeros where the file has none). */
  file: 3,
  /** A private page of two recorded seeds (`fillPrivatePageFromSeeds`). */
  private: 4,
  /** Page `index` of seeded step content `seed` (`fillSeededPage`). */
  seeded: 5,
  /** Every byte one recorded value (a `fill` step's pattern). */
  pattern: 6,
  /** An exact copy of the bytes, kept because partial writes outgrew a page of records. */
  exact: 7,
  /**
   * Known by its fingerprint alone (two recorded words, its halves), on a machine whose frames
   * hold fingerprints: a whole-page store of other content, or partial writes that outgrew a page
   * of records, folded in.
   */
  fingerprint: 8,
} as const;
/** A value of {@link ExpectedKind}. */
export type ExpectedKind = (typeof ExpectedKind)[keyof typeof ExpectedKind];

/** Flag on a page's kind: partial writes are recorded on top of its base content. */
const OVERLAID = 0x80;
const KIND_MASK = 0x7f;
/** Bytes of a partial write's record header: offset and length, 16 bits each. */
const RECORD_HEADER = 4;

/** The partial writes on one page since its base content, in order: `[offset u16][length u16][bytes]` records. */
interface Overlay {
  bytes: Uint8Array;
  used: number;
}

/**
 * The content functions of a machine whose frames hold 64-bit fingerprints: `Fingerprinter` of
 * `@pagevisor/machine` (this package does not depend on it: give one). `ofPage` and `afterWrite`
 * leave their result in `lo` and `hi`; `bytes` generates the page a frame of a fingerprint
 * reads as.
 */
export interface ContentFingerprints {
  /** Low half (unsigned) of the last result. */
  readonly lo: number;
  /** High half (unsigned) of the last result. */
  readonly hi: number;
  /** H: the fingerprint of the PAGE_SIZE bytes of `page` from `offset`. */
  ofPage(page: Uint8Array, offset?: number): void;
  /** The fingerprint of a frame of fingerprint (lo, hi) after a store of `length` bytes of `src` from `srcOffset` at `offset`. */
  afterWrite(lo: number, hi: number, offset: number, src: Uint8Array, srcOffset: number, length: number): void;
  /** Bytes `[offset, offset + length)` of the page a frame of fingerprint (lo, hi) reads as, into `dst` at `dstOffset`. */
  bytes(lo: number, hi: number, offset: number, dst: Uint8Array, dstOffset: number, length: number): void;
}

/** Where an {@link ExpectedContent}'s image pages come from, and what the machine's frames hold. */
export interface ExpectedContentOptions {
  /** Seed of the guest's synthetic image (`imageSeed(id)`): an image page at gfn g is page g of it (default 0). */
  readonly imageSeed?: number;
  /** The guest's image file: a file page at gfn g is the file's page at g (default none). */
  readonly image?: GuestImage | null;
  /**
   * The machine's frames hold fingerprints (`machine.contents: "fingerprints"`), computed with
   * these functions (default none: frames hold bytes). The model then predicts what a guest
   * reads back there: see {@link ExpectedContent}.
   */
  readonly fingerprints?: ContentFingerprints | null;
}

/** How much an {@link ExpectedContent} holds beyond its per-page record. */
export interface ExpectedContentStats {
  /** Pages with partial writes recorded on top of a regenerated base. */
  readonly overlaidPages: number;
  /** Pages kept as exact 4 KiB copies. */
  readonly exactPages: number;
  /** Bytes of the model: {@link ExpectedContent.metadataBytes}. */
  readonly bytes: number;
}

/**
 * What each page of one guest should hold, kept compactly so that a run can read every page back
 * and compare (`pagevisor run --verify`). A page is a record, not a copy: 1 byte of kind and, for
 * seeded kinds only, two 32-bit words (private pages' two seeds, a fill step's seed and index, a
 * pattern byte), from which {@link expectedPage} regenerates the 4 KiB exactly as the guest wrote
 * them. Image pages regenerate from the gfn (synthetic image) or are read back from the image file.
 * Partial writes since the base content are kept as records (4 bytes + the bytes written);
 * when one page's records would pass 4 KiB, the page becomes an exact copy. The seed words are
 * allocated with the first seeded page, so a guest of image and zero pages costs 1 byte a page.
 *
 * The model is told of every store after it succeeded (the hypervisor changes nothing when it
 * refuses one): by the guest for its boot and steady-state writes, by whoever else writes its
 * memory (a scenario's steps) for theirs.
 *
 * On a machine whose frames hold fingerprints (`fingerprints` given), a guest reads back bytes(F)
 * of its frame's fingerprint F, not the bytes it stored, and so {@link expectedPage} returns
 * bytes(F) of the fingerprint the frame should hold, exactly: H of the base content regenerated
 * as above, then each partial write recorded since, in order, through `afterWrite` (the frame
 * took the same stores in the same order). A whole-page store of other content keeps its
 * fingerprint (8 bytes), not a copy, and partial writes that outgrow a page of records are
 * folded into one: no page costs 4 KiB.
 */
export class ExpectedContent {
  /** Guest pages (gfns `[0, pages)`). */
  readonly pages: number;

  private readonly kinds: Uint8Array;
  private wordA: Uint32Array | null = null;
  private wordB: Uint32Array | null = null;
  private readonly overlays = new Map<number, Overlay>();
  private readonly exact = new Map<number, Uint8Array>();
  private overlayBytes = 0;
  private readonly imageSeedValue: number;
  private readonly image: GuestImage | null;
  private reader: ImageReader | null = null;
  private readonly scratch32 = new Uint32Array(PAGE_WORDS);
  private readonly scratch8 = new Uint8Array(this.scratch32.buffer);
  private readonly fp: ContentFingerprints | null;
  /** Result of {@link fingerprintOf}. */
  private fLo = 0;
  private fHi = 0;
  /** The zero page's fingerprint, once needed (-1: not yet). */
  private zLo = -1;
  private zHi = 0;

  constructor(pages: number, options: ExpectedContentOptions = {}) {
    if (!(Number.isSafeInteger(pages) && pages >= 0)) throw new RangeError(`ExpectedContent: pages must be a non-negative integer, got ${pages}`);
    this.pages = pages;
    this.kinds = new Uint8Array(pages);
    this.imageSeedValue = (options.imageSeed ?? 0) >>> 0;
    this.image = options.image ?? null;
    this.fp = options.fingerprints ?? null;
  }

  /** What the machine's frames hold, as this model predicts them. */
  get contents(): 'bytes' | 'fingerprints' {
    return this.fp === null ? 'bytes' : 'fingerprints';
  }

  /** A copy of this model, for a fork of the guest: the two change apart from then on. */
  fork(): ExpectedContent {
    const c = new ExpectedContent(this.pages, {
      imageSeed: this.imageSeedValue,
      ...(this.image === null ? {} : { image: this.image }),
      ...(this.fp === null ? {} : { fingerprints: this.fp }),
    });
    c.kinds.set(this.kinds);
    c.wordA = this.wordA?.slice() ?? null;
    c.wordB = this.wordB?.slice() ?? null;
    for (const [gfn, o] of this.overlays) c.overlays.set(gfn, { bytes: o.bytes.slice(), used: o.used });
    for (const [gfn, page] of this.exact) c.exact.set(gfn, page.slice());
    c.overlayBytes = this.overlayBytes;
    return c;
  }

  /** The base kind of page `gfn` (partial writes on top of it aside). */
  kindOf(gfn: number): ExpectedKind {
    return (this.kinds[this.check(gfn)]! & KIND_MASK) as ExpectedKind;
  }

  /** True when page `gfn` has partial writes recorded on top of its base. */
  isOverlaid(gfn: number): boolean {
    return (this.kinds[this.check(gfn)]! & OVERLAID) !== 0;
  }

  /** True unless page `gfn` is unpopulated. */
  isPopulated(gfn: number): boolean {
    return this.kinds[this.check(gfn)] !== ExpectedKind.unpopulated;
  }

  /** `count` pages from `gfn` are populated: they read zeros. */
  populate(gfn: number, count: number): void {
    this.range(gfn, count);
    for (let g = gfn; g < gfn + count; g++) this.setKind(g, ExpectedKind.zero);
  }

  /** `count` pages from `gfn` are no longer populated. */
  unpopulate(gfn: number, count: number): void {
    this.range(gfn, count);
    for (let g = gfn; g < gfn + count; g++) this.setKind(g, ExpectedKind.unpopulated);
  }

  /** Page `gfn` was written whole with page `gfn` of the synthetic image. */
  setImagePage(gfn: number): void {
    this.setKind(this.check(gfn), ExpectedKind.image);
  }

  /** Page `gfn` was written whole with the image file's page at `gfn`. */
  setFilePage(gfn: number): void {
    if (this.image === null) throw new RangeError('ExpectedContent: a file page, but the model has no image file');
    this.setKind(this.check(gfn), ExpectedKind.file);
  }

  /** Page `gfn` was written whole with the private page of seeds (`s0`, `s1`). */
  setPrivatePage(gfn: number, s0: number, s1: number): void {
    this.setWords(this.check(gfn), ExpectedKind.private, s0, s1);
  }

  /** Page `gfn` was written whole with page `index` of seeded content `seed` (`fillSeededPage`). */
  setSeededPage(gfn: number, seed: number, index: number): void {
    this.setWords(this.check(gfn), ExpectedKind.seeded, seed, index);
  }

  /** Page `gfn` was written whole with `pattern` in every byte. */
  setPatternPage(gfn: number, pattern: number): void {
    this.setWords(this.check(gfn), ExpectedKind.pattern, pattern & 0xff, 0);
  }

  /**
   * `length` bytes of `src` from `srcOffset` were stored at byte `offset` of page `gfn`. A
   * whole-page store keeps an exact copy (with fingerprints, the page's fingerprint); a partial
   * one is recorded on top of the page's content. A store to a page the model holds unpopulated
   * takes zeros as its base.
   */
  write(gfn: number, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    this.check(gfn);
    if (!(Number.isInteger(offset) && Number.isInteger(length) && offset >= 0 && length >= 0 && offset + length <= PAGE_SIZE)) {
      throw new RangeError(`ExpectedContent: bytes [${offset}, ${offset + length}) are not within a page`);
    }
    if (length === 0) return;
    const fp = this.fp;
    if (length === PAGE_SIZE && fp !== null) {
      fp.ofPage(src, srcOffset);
      this.setWords(gfn, ExpectedKind.fingerprint, fp.lo, fp.hi);
      return;
    }
    if (length === PAGE_SIZE) {
      this.setKind(gfn, ExpectedKind.exact);
      this.exact.set(gfn, src.slice(srcOffset, srcOffset + PAGE_SIZE));
      return;
    }
    const k = this.kinds[gfn]!;
    if (k === ExpectedKind.unpopulated) this.kinds[gfn] = ExpectedKind.zero;
    if ((k & KIND_MASK) === ExpectedKind.exact) {
      this.exact.get(gfn)!.set(src.subarray(srcOffset, srcOffset + length), offset);
      return;
    }
    const overlay = this.overlays.get(gfn);
    const used = overlay?.used ?? 0;
    const need = used + RECORD_HEADER + length;
    if (need > PAGE_SIZE && fp !== null) {
      // The records would outgrow the page they describe: fold them, and this store, into its fingerprint.
      this.fingerprintOf(gfn);
      fp.afterWrite(this.fLo, this.fHi, offset, src, srcOffset, length);
      this.setWords(gfn, ExpectedKind.fingerprint, fp.lo, fp.hi);
      return;
    }
    if (need > PAGE_SIZE) {
      // The records would outgrow the page they describe: keep the page instead.
      const copy = this.expectedPage(gfn)!.slice();
      copy.set(src.subarray(srcOffset, srcOffset + length), offset);
      this.setKind(gfn, ExpectedKind.exact);
      this.exact.set(gfn, copy);
      return;
    }
    let o = overlay;
    if (o === undefined || need > o.bytes.length) {
      // The first record exactly (most pages take one write), then doubling.
      const cap = o === undefined ? need : Math.max(need, 2 * o.bytes.length);
      const bytes = new Uint8Array(Math.min(cap, PAGE_SIZE));
      if (o !== undefined) bytes.set(o.bytes.subarray(0, o.used));
      this.overlayBytes += bytes.length - (o?.bytes.length ?? 0);
      o = { bytes, used };
      this.overlays.set(gfn, o);
      this.kinds[gfn]! |= OVERLAID;
    }
    const b = o.bytes;
    b[used] = offset & 0xff;
    b[used + 1] = offset >>> 8;
    b[used + 2] = length & 0xff;
    b[used + 3] = length >>> 8;
    b.set(src.subarray(srcOffset, srcOffset + length), used + RECORD_HEADER);
    o.used = need;
  }

  /**
   * The bytes a guest load of page `gfn` should return (valid until the next call: the buffer is
   * reused), or null when it should be unpopulated: the bytes the guest wrote, regenerated from
   * the page's record; with fingerprints, bytes(F) of the fingerprint F its frame should hold.
   * Allocates nothing (a file page reads the file a chunk at a time, fastest in increasing gfn
   * order).
   * @throws ImageError if the image file changed since it was validated.
   */
  expectedPage(gfn: number): Uint8Array | null {
    const fp = this.fp;
    if (fp === null) return this.writtenPage(gfn);
    if (!this.fingerprintOf(gfn)) return null;
    fp.bytes(this.fLo, this.fHi, 0, this.scratch8, 0, PAGE_SIZE);
    return this.scratch8;
  }

  /**
   * With fingerprints, the fingerprint frame `gfn` should hold, as unsigned halves (null when the
   * page should be unpopulated); null too without fingerprints.
   * @throws ImageError if the image file changed since it was validated.
   */
  expectedFingerprint(gfn: number): { readonly lo: number; readonly hi: number } | null {
    if (this.fp === null || !this.fingerprintOf(gfn)) return null;
    return { lo: this.fLo, hi: this.fHi };
  }

  /**
   * Sets {@link fLo} and {@link fHi} to the fingerprint of page `gfn`: H of its base content (or
   * its recorded fingerprint), then every partial write recorded on it, in order, through
   * afterWrite. False when the page should be unpopulated.
   */
  private fingerprintOf(gfn: number): boolean {
    const fp = this.fp!;
    const k = this.kinds[this.check(gfn)]!;
    const base = k & KIND_MASK;
    if (base === ExpectedKind.unpopulated) return false;
    if (base === ExpectedKind.fingerprint) {
      this.fLo = this.wordA![gfn]!;
      this.fHi = this.wordB![gfn]!;
    } else if (base === ExpectedKind.zero) {
      if (this.zLo < 0) {
        fp.ofPage(this.basePage(gfn, base), 0);
        this.zLo = fp.lo;
        this.zHi = fp.hi;
      }
      this.fLo = this.zLo;
      this.fHi = this.zHi;
    } else {
      // The base regenerated without its records (never an exact copy with fingerprints), hashed.
      fp.ofPage(this.basePage(gfn, base), 0);
      this.fLo = fp.lo;
      this.fHi = fp.hi;
    }
    if ((k & OVERLAID) !== 0) {
      this.forEachRecord(gfn, (offset, bytes, at, length) => {
        fp.afterWrite(this.fLo, this.fHi, offset, bytes, at, length);
        this.fLo = fp.lo;
        this.fHi = fp.hi;
      });
    }
    return true;
  }

  /** The bytes the guest wrote to page `gfn` (bytes mode), or null when it should be unpopulated. */
  private writtenPage(gfn: number): Uint8Array | null {
    const k = this.kinds[this.check(gfn)]!;
    const base = k & KIND_MASK;
    if (base === ExpectedKind.unpopulated) return null;
    const out = this.basePage(gfn, base);
    if ((k & OVERLAID) !== 0) this.forEachRecord(gfn, (offset, bytes, at, length) => out.set(bytes.subarray(at, at + length), offset));
    return out;
  }

  /** Calls `apply` with each partial write recorded for `gfn`, in order: its page offset and its `length` bytes at `at` of `bytes`. */
  private forEachRecord(gfn: number, apply: (offset: number, bytes: Uint8Array, at: number, length: number) => void): void {
    const { bytes, used } = this.overlays.get(gfn)!;
    for (let at = 0; at < used; ) {
      const offset = bytes[at]! | (bytes[at + 1]! << 8);
      const length = bytes[at + 2]! | (bytes[at + 3]! << 8);
      apply(offset, bytes, at + RECORD_HEADER, length);
      at += RECORD_HEADER + length;
    }
  }

  /** The base content of page `gfn` (of populated kind `base`, not a fingerprint) regenerated into the scratch page. */
  private basePage(gfn: number, base: number): Uint8Array {
    const out = this.scratch8;
    switch (base) {
      case ExpectedKind.zero:
        out.fill(0);
        break;
      case ExpectedKind.image:
        fillImagePage(this.scratch32, this.imageSeedValue, gfn);
        break;
      case ExpectedKind.file:
        this.reader ??= this.image!.reader();
        if (!this.reader.readPage(gfn, out, 0)) out.fill(0);
        break;
      case ExpectedKind.private:
        fillPrivatePageFromSeeds(this.scratch32, this.wordA![gfn]!, this.wordB![gfn]!);
        break;
      case ExpectedKind.seeded:
        fillSeededPage(this.scratch32, this.wordA![gfn]!, this.wordB![gfn]!);
        break;
      case ExpectedKind.pattern:
        out.fill(this.wordA![gfn]!);
        break;
      default:
        out.set(this.exact.get(gfn)!);
    }
    return out;
  }

  /**
   * Bytes the model holds: the kind array, the seed words (once allocated), the partial-write
   * records' buffers and the exact copies (the Maps' own entries not counted).
   */
  metadataBytes(): number {
    return this.kinds.byteLength + (this.wordA?.byteLength ?? 0) + (this.wordB?.byteLength ?? 0) + this.overlayBytes + this.exact.size * PAGE_SIZE;
  }

  /** Overlaid and exact pages, and {@link metadataBytes}. */
  stats(): ExpectedContentStats {
    return { overlaidPages: this.overlays.size, exactPages: this.exact.size, bytes: this.metadataBytes() };
  }

  /** Sets page `gfn`'s base kind, dropping its records and copy. */
  private setKind(gfn: number, kind: ExpectedKind): void {
    const k = this.kinds[gfn]!;
    if ((k & OVERLAID) !== 0) {
      this.overlayBytes -= this.overlays.get(gfn)!.bytes.length;
      this.overlays.delete(gfn);
    }
    if ((k & KIND_MASK) === ExpectedKind.exact) this.exact.delete(gfn);
    this.kinds[gfn] = kind;
  }

  private setWords(gfn: number, kind: ExpectedKind, a: number, b: number): void {
    this.setKind(gfn, kind);
    if (this.wordA === null) {
      this.wordA = new Uint32Array(this.pages);
      this.wordB = new Uint32Array(this.pages);
    }
    this.wordA[gfn] = a >>> 0;
    this.wordB![gfn] = b >>> 0;
  }

  private check(gfn: number): number {
    if (!(Number.isInteger(gfn) && gfn >= 0 && gfn < this.pages)) throw new RangeError(`ExpectedContent: gfn ${gfn} is outside [0, ${this.pages})`);
    return gfn;
  }

  private range(gfn: number, count: number): void {
    if (!(Number.isInteger(gfn) && Number.isInteger(count) && gfn >= 0 && count >= 0 && gfn + count <= this.pages)) {
      throw new RangeError(`ExpectedContent: pages [${gfn}, ${gfn + count}) are outside [0, ${this.pages})`);
    }
  }
}
