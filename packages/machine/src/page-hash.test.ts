import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PAGE_SIZE } from '@pagevisor/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import xxhash from 'xxhash-wasm';
import { hashedMemory, pageBuffer, PageHasher } from './page-hash.js';

/** XXH64's low 32 bits, as xxhash-wasm (an independent implementation) computes it. */
async function reference(): Promise<(page: Uint8Array) => number> {
  const { h64Raw } = await xxhash();
  return (page) => Number(BigInt.asUintN(32, h64Raw(page)));
}

/**
 * The page checksum as it was first written, in JavaScript over a page's 32-bit words: the
 * WebAssembly one must give the same values (KSM's scans, and so its figures, depend on them).
 */
function wordChecksum(words: Int32Array): number {
  let [a, b, c, d] = [0x9e3779b9 | 0, 0x85ebca6b | 0, 0xc2b2ae35 | 0, 0x27d4eb2f | 0];
  for (let i = 0; i < 1024; i += 4) {
    a = Math.imul(a ^ words[i]!, 0x85ebca6b);
    b = Math.imul(b ^ words[i + 1]!, 0xc2b2ae35);
    c = Math.imul(c ^ words[i + 2]!, 0x27d4eb2f);
    d = Math.imul(d ^ words[i + 3]!, 0x165667b1);
  }
  const h = a ^ Math.imul(b ^ (b >>> 15), 31) ^ Math.imul(c ^ (c >>> 13), 17) ^ (d ^ (d >>> 16));
  return Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
}

describe('the page checksum', () => {
  it('is the four-lane multiply-xor over the words, read in place', () => {
    const { buffer, checksum } = hashedMemory(4 * PAGE_SIZE);
    const bytes = new Uint8Array(buffer, 0, 4 * PAGE_SIZE);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: PAGE_SIZE, maxLength: PAGE_SIZE }), fc.integer({ min: 0, max: 3 }), (page, f) => {
        bytes.set(page, f * PAGE_SIZE);
        expect(checksum(f * PAGE_SIZE) >>> 0).toBe(wordChecksum(new Int32Array(page.buffer, page.byteOffset, 1024)));
      }),
      { numRuns: 200 },
    );
    bytes.fill(0);
    expect(checksum(0) >>> 0).toBe(wordChecksum(new Int32Array(1024)));
  });
});

describe('the page hash', () => {
  it('is XXH64 (seed 0) folded to its low 32 bits: equal to xxhash-wasm on random pages', async () => {
    const xxh64 = await reference();
    const hasher = new PageHasher();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: PAGE_SIZE, maxLength: PAGE_SIZE }), (page) => {
        expect(hasher.hash(page)).toBe(xxh64(page));
      }),
      { numRuns: 200 },
    );
    // Pages with a single bit set, every 64-bit word and every lane reached.
    for (let bit = 0; bit < PAGE_SIZE * 8; bit += 61) {
      const page = new Uint8Array(PAGE_SIZE);
      page[bit >>> 3] = 1 << (bit & 7);
      expect(hasher.hash(page)).toBe(xxh64(page));
    }
    expect(hasher.hash(new Uint8Array(PAGE_SIZE))).toBe(xxh64(new Uint8Array(PAGE_SIZE)));
  });

  it('gives the whole 64 bits with hash64: the low half returned, the high one in high', async () => {
    const { h64Raw } = await xxhash();
    const hasher = new PageHasher();
    const buf = pageBuffer(1);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: PAGE_SIZE, maxLength: PAGE_SIZE }), fc.boolean(), (page, inPlace) => {
        const h = h64Raw(page);
        if (inPlace) buf.set(page);
        expect(hasher.hash64(inPlace ? buf : page)).toBe(Number(BigInt.asUintN(32, h)));
        expect(hasher.high).toBe(Number(h >> 32n));
      }),
      { numRuns: 100 },
    );
  });

  it('reads a page in place at any page offset of its memory, and a page at an offset of a larger buffer', async () => {
    const xxh64 = await reference();
    const { buffer, hash } = hashedMemory(8 * PAGE_SIZE);
    const bytes = new Uint8Array(buffer);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + (i >>> 12)) & 255;
    for (let f = 0; f < 8; f++) expect(hash(f * PAGE_SIZE) >>> 0).toBe(xxh64(bytes.subarray(f * PAGE_SIZE, (f + 1) * PAGE_SIZE)));
    const big = new Uint8Array(3 * PAGE_SIZE).map((_, i) => i % 251);
    expect(new PageHasher().hash(big, PAGE_SIZE + 7)).toBe(xxh64(big.subarray(PAGE_SIZE + 7, 2 * PAGE_SIZE + 7)));
  });

  it('hashes the pages of a pageBuffer where they lie, as it hashes any page', async () => {
    const xxh64 = await reference();
    const hasher = new PageHasher();
    const buf = pageBuffer(3);
    expect(buf.length).toBe(3 * PAGE_SIZE);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 7) & 255;
    const second = buf.subarray(PAGE_SIZE, 2 * PAGE_SIZE);
    expect(hasher.hash(second)).toBe(xxh64(second.slice()));
    expect(hasher.hash(buf, 2 * PAGE_SIZE)).toBe(xxh64(buf.slice(2 * PAGE_SIZE)));
    second[100] ^= 1;
    expect(hasher.hash(second)).toBe(xxh64(second.slice()));
    expect(() => pageBuffer(0)).toThrow(/pages must be an integer in 1\.\.65536, got 0/);
    expect(() => pageBuffer(1.5)).toThrow(RangeError);
  });

  it('rounds memory up to WebAssembly pages and zero-fills it', () => {
    const { buffer } = hashedMemory(PAGE_SIZE);
    expect(buffer.byteLength).toBe(65536);
    expect(new Uint8Array(buffer).every((b) => b === 0)).toBe(true);
  });

  it('runs the module the WAT assembles to (src/xxh64-page-wasm.ts is up to date)', () => {
    // Exits 1, failing the test, when the committed bytes differ from the WAT's.
    const script = fileURLToPath(new URL('../scripts/assemble-wasm.mjs', import.meta.url));
    expect(execFileSync(process.execPath, [script, '--check'], { encoding: 'utf8' })).toBe('');
  });
});
