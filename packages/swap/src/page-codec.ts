/// <reference path="./lz4js.d.ts" />
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import lz4 from 'lz4js';
import { PAGE_SIZE } from '@pagevisor/types';

/** Compression choices of the swap area. */
export type Compression = 'none' | 'deflate' | 'lz4';

/**
 * Compresses one page into a buffer of at least {@link CODEC_BOUND} bytes and back. A codec
 * reports a length of PAGE_SIZE or more when compressing does not pay; the caller then stores the
 * page raw.
 */
export interface PageCodec {
  /** Name of the compression. */
  readonly name: Compression;
  /** Compresses `page` (PAGE_SIZE bytes) into `dst`; returns the compressed length. */
  compress(page: Uint8Array, dst: Uint8Array): number;
  /** Decompresses `src[0..length)` into `page`; returns the bytes produced. */
  decompress(src: Uint8Array, length: number, page: Uint8Array): number;
}

/** Size of a buffer that holds any compressed page. */
export const CODEC_BOUND = lz4.compressBound(PAGE_SIZE) + 64;

const LZ4_HASH_ENTRIES = 1 << 16;

/** LZ4 blocks (lz4js, pure JS). */
class Lz4Codec implements PageCodec {
  readonly name = 'lz4' as const;
  private readonly hashTable = new Uint32Array(LZ4_HASH_ENTRIES);

  compress(page: Uint8Array, dst: Uint8Array): number {
    // lz4js trusts its table: a stale entry from the previous page could yield a zero-offset match.
    this.hashTable.fill(0);
    const n = lz4.compressBlock(page, dst, 0, PAGE_SIZE, this.hashTable);
    // lz4js returns 0 when it found no match at all: the page does not compress.
    return n === 0 ? PAGE_SIZE : n;
  }

  decompress(src: Uint8Array, length: number, page: Uint8Array): number {
    return lz4.decompressBlock(src, page, 0, length, 0);
  }
}

/** Raw deflate (node:zlib, level 1: swap-out speed matters more than the last percent). */
class DeflateCodec implements PageCodec {
  readonly name = 'deflate' as const;

  compress(page: Uint8Array, dst: Uint8Array): number {
    const out = deflateRawSync(page, { level: 1 });
    if (out.length >= PAGE_SIZE) return PAGE_SIZE;
    dst.set(out);
    return out.length;
  }

  decompress(src: Uint8Array, length: number, page: Uint8Array): number {
    const out = inflateRawSync(src.subarray(0, length), { maxOutputLength: PAGE_SIZE });
    page.set(out.subarray(0, Math.min(out.length, page.length)));
    return out.length;
  }
}

/** The codec of `compression`, or undefined for 'none'. */
export function createPageCodec(compression: Compression): PageCodec | undefined {
  switch (compression) {
    case 'none':
      return undefined;
    case 'deflate':
      return new DeflateCodec();
    case 'lz4':
      return new Lz4Codec();
  }
}
