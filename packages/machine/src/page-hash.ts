import { PAGE_SIZE } from '@pagevisor/types';
import { PAGE_HASH_WASM } from './page-hash-wasm.js';

/**
 * Hashes (or checksums) the page at a byte offset of one WebAssembly memory, in place: XXH64's
 * low 32 bits, or the page checksum (see {@link hashedMemory}). The result is a signed int32.
 */
export type PageHash = (offset: number) => number;

/**
 * The part of the WebAssembly JavaScript API used here: the package compiles without the DOM
 * library (whose declarations carry it) and runs on Node's global WebAssembly.
 */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (descriptor: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer };
  Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> };
};

let compiled: object | undefined;
/** A memory's in-place hashes: the low 32 bits of XXH64, and the whole of it (high half in `hi`). */
interface InPlace {
  readonly hash: PageHash;
  readonly hash64: PageHash;
  readonly hi: { readonly value: number };
}

/** The in-place hashes of every memory made here, by its buffer (PageHasher looks pages up in it). */
const inPlace = new WeakMap<ArrayBuffer, InPlace>();

/**
 * Memory of `bytes` bytes (rounded up to WebAssembly's 64 KiB pages), the XXH64 of a page read in
 * place from it, and its checksum: four 32-bit multiply-xor lanes over the page's words, folded
 * (equal pages give equal checksums and a change very likely another; no hash for an index, but
 * what a scanner needs to tell that a page changed between two visits, at about 1.5x the hash's
 * rate). The memory is zero-filled and never grows, so views of its buffer stay valid.
 */
export function hashedMemory(bytes: number): { buffer: ArrayBuffer; hash: PageHash; checksum: PageHash } {
  compiled ??= new WebAssembly.Module(Buffer.from(PAGE_HASH_WASM, 'base64'));
  const pages = Math.ceil(bytes / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const instance = new WebAssembly.Instance(compiled, { env: { memory } });
  const hash = instance.exports['page'] as PageHash;
  inPlace.set(memory.buffer, { hash, hash64: instance.exports['page64'] as PageHash, hi: instance.exports['hi'] as { value: number } });
  return { buffer: memory.buffer, hash, checksum: instance.exports['checksum'] as PageHash };
}

/**
 * A zero-filled buffer of `pages` pages that {@link PageHasher} hashes in place: a page to be
 * written to the machine, built in one, is hashed without a copy.
 */
export function pageBuffer(pages: number): Uint8Array {
  if (!Number.isInteger(pages) || pages < 1 || pages > 65536) throw new RangeError(`pageBuffer: pages must be an integer in 1..65536, got ${pages}`);
  return new Uint8Array(hashedMemory(pages * PAGE_SIZE).buffer, 0, pages * PAGE_SIZE);
}

/**
 * Hashes pages anywhere: a page in a buffer from {@link pageBuffer} (or a machine's chunk) in
 * place, any other first copied into a page of WebAssembly memory.
 */
export class PageHasher {
  readonly #staging: Buffer;
  readonly #own: InPlace;
  /** The high 32 bits (unsigned) of the last {@link hash64}. */
  high = 0;

  constructor() {
    const { buffer } = hashedMemory(PAGE_SIZE);
    this.#staging = Buffer.from(buffer, 0, PAGE_SIZE);
    this.#own = inPlace.get(buffer)!;
  }

  /** XXH64's low 32 bits of the PAGE_SIZE bytes of `page` at `offset`. */
  hash(page: Uint8Array, offset = 0): number {
    const where = inPlace.get(page.buffer as ArrayBuffer);
    if (where !== undefined) return where.hash(page.byteOffset + offset) >>> 0;
    Buffer.prototype.copy.call(page, this.#staging, 0, offset, offset + PAGE_SIZE);
    return this.#own.hash(0) >>> 0;
  }

  /** XXH64 of the PAGE_SIZE bytes of `page` at `offset`: its low 32 bits, the high ones in {@link high}. */
  hash64(page: Uint8Array, offset = 0): number {
    let where = inPlace.get(page.buffer as ArrayBuffer);
    let at = page.byteOffset + offset;
    if (where === undefined) {
      Buffer.prototype.copy.call(page, this.#staging, 0, offset, offset + PAGE_SIZE);
      where = this.#own;
      at = 0;
    }
    const lo = where.hash64(at) >>> 0;
    this.high = where.hi.value >>> 0;
    return lo;
  }
}
