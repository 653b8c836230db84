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

/** Where an {@link ExpectedContent}'s image pages come from. */
export interface ExpectedContentOptions {
  /** Seed of the guest's synthetic image (`imageSeed(id)`): an image page at gfn g is page g of it (default 0). */
  readonly imageSeed?: number;
  /** The guest's image file: a file page at gfn g is the file's page at g (default none). */
  readonly image?: GuestImage | null;
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

  constructor(pages: number, options: ExpectedContentOptions = {}) {
    if (!(Number.isSafeInteger(pages) && pages >= 0)) throw new RangeError(`ExpectedContent: pages must be a non-negative integer, got ${pages}`);
    this.pages = pages;
    this.kinds = new Uint8Array(pages);
    this.imageSeedValue = (options.imageSeed ?? 0) >>> 0;
    this.image = options.image ?? null;
  }

  /** A copy of this model, for a fork of the guest: the two change apart from then on. */
  fork(): ExpectedContent {
    const c = new ExpectedContent(this.pages, { imageSeed: this.imageSeedValue, ...(this.image === null ? {} : { image: this.image }) });
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
   * whole-page store keeps an exact copy; a partial one is recorded on top of the page's content.
   * A store to a page the model holds unpopulated takes zeros as its base.
   */
  write(gfn: number, offset: number, src: Uint8Array, srcOffset: number, length: number): void {
    this.check(gfn);
    if (!(Number.isInteger(offset) && Number.isInteger(length) && offset >= 0 && length >= 0 && offset + length <= PAGE_SIZE)) {
      throw new RangeError(`ExpectedContent: bytes [${offset}, ${offset + length}) are not within a page`);
    }
    if (length === 0) return;
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
   * The bytes page `gfn` should hold, regenerated from its record (valid until the next call:
   * the buffer is reused), or null when it should be unpopulated. Allocates nothing (a file page
   * reads the file a chunk at a time, fastest in increasing gfn order).
   * @throws ImageError if the image file changed since it was validated.
   */
  expectedPage(gfn: number): Uint8Array | null {
    const k = this.kinds[this.check(gfn)]!;
    const base = k & KIND_MASK;
    const out = this.scratch8;
    switch (base) {
      case ExpectedKind.unpopulated:
        return null;
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
    if ((k & OVERLAID) !== 0) {
      const { bytes, used } = this.overlays.get(gfn)!;
      for (let at = 0; at < used; ) {
        const offset = bytes[at]! | (bytes[at + 1]! << 8);
        const length = bytes[at + 2]! | (bytes[at + 3]! << 8);
        at += RECORD_HEADER;
        out.set(bytes.subarray(at, at + length), offset);
        at += length;
      }
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
